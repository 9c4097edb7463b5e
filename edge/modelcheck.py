"""A best-effort check of a .tflite file's structure and its contract, in Python, before the TFLite runtime sees it.

The runtimes trust the flatbuffer, and tflite-runtime 2.14 and ai-edge-litert crash the whole process
on some damaged files (a crash in C++ cannot be caught). This check refuses, with one ModelError, the
damage fuzz/mutate_models.py has found to crash them, and every offset it follows, with
edge._flatbuffer's bounded reads (schema: tensorflow/compiler/mlir/lite/schema/schema.fbs). Exactly:

- the file: the TFL3 identifier; every table, vector and string read below lies inside the file;
  the model's description, the metadata names and every buffer's data (inline, or by offset and
  size) too; metadata and metadata_buffer name existing buffers;
- operator codes: their custom names lie in the file; the builtin code is read (max of the two fields);
- tensors, in every subgraph: a type TFLite knows; no negative dimension; at most MAX_TENSOR_BYTES;
  an existing buffer; a tensor without data (computed) has a type some catdog export computes; a
  tensor with data has exactly shape x type-size bytes of it (unless sparse or of no fixed size);
  quantization has as many zero points as scales, and per-channel scales match their dimension;
- operators: an existing operator code; input, output and intermediate tensors exist (-1, "none",
  only for inputs after the required ones); the first input is present, and the first two for
  ADD, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MUL, PAD, MEAN, SUB and DIV; custom options
  and the options table lie in the file; the options' fields are read for four operators only:
  CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D and MAX_POOL_2D (strides, dilations, filter sizes and
  depth multiplier 1..4096, padding SAME or VALID); input and weight shapes agree for CONV_2D,
  DEPTHWISE_CONV_2D and FULLY_CONNECTED, and when quantized their requantization scale (input scale
  x largest weight scale / output scale) is finite and below MAX_REQUANTIZATION_SCALE; the two
  inputs of ADD, MUL, SUB and DIV broadcast to the output;
- subgraphs: their input and output tensors exist; the first has one input and as many outputs as
  its contract describes, and its input and first output have the contract's type, shape and
  quantization;
- signatures: key and names lie in the file; they name an existing subgraph and its tensors.

Everything else is not checked: other operators' options and shapes, what any operator computes,
control flow between subgraphs, custom operators, the weights' values. So passing this check does not
prove the runtime survives the file: that is edge.modelprobe's job (every model that is not bundled is
loaded and run once in a child process first; a crash there is one line and exit 2).
"""

from __future__ import annotations

import math

from ._flatbuffer import Reader, open_model
from .contract import ModelContract
from .errors import ModelError

# Field numbers of the tables read here (schema.fbs).
_MODEL_OPCODES, _MODEL_SUBGRAPHS, _MODEL_DESCRIPTION, _MODEL_BUFFERS = 1, 2, 3, 4
_MODEL_METADATA_BUFFER, _MODEL_METADATA, _MODEL_SIGNATURES = 5, 6, 7
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_OPCODE_DEPRECATED_BUILTIN, _OPCODE_CUSTOM, _OPCODE_BUILTIN = 0, 1, 3
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS, _SUBGRAPH_OPERATORS, _SUBGRAPH_NAME = 0, 1, 2, 3, 4
_TENSOR_SHAPE, _TENSOR_TYPE, _TENSOR_BUFFER, _TENSOR_NAME, _TENSOR_QUANTIZATION, _TENSOR_SPARSITY = 0, 1, 2, 3, 4, 6
_QUANT_SCALE, _QUANT_ZERO_POINT, _QUANT_DIMENSION = 2, 3, 6
_OP_OPCODE, _OP_INPUTS, _OP_OUTPUTS, _OP_OPTIONS, _OP_CUSTOM, _OP_INTERMEDIATES = 0, 1, 2, 4, 5, 8
_OP_LARGE_CUSTOM_OFFSET, _OP_LARGE_CUSTOM_SIZE = 9, 10
_SIGNATURE_INPUTS, _SIGNATURE_OUTPUTS, _SIGNATURE_KEY, _SIGNATURE_SUBGRAPH = 0, 1, 2, 4
_TENSORMAP_NAME, _TENSORMAP_TENSOR = 0, 1
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2

#: TensorType -> bytes per element; None: no fixed size (string, resource, variant, packed int4).
_TYPE_BYTES = {
    0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: None, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 13: None, 14: None,
    15: 4, 16: 2, 17: None, 18: 2,
}
_DTYPES = {"float32": 0, "uint8": 3, "int8": 9}
#: Types of the tensors a graph computes (no constant data) in every model catdog exports (int8,
#: float16, dynamic, float32): float32, int32, uint8, int64, bool, int16, int8. ai-edge-litert
#: crashes when, say, a LOGISTIC kernel's int8 output is relabelled float16; any other type there is
#: refused.
_COMPUTED_TYPES = {0, 2, 3, 4, 6, 7, 9}
#: Largest tensor accepted, in bytes: far above any model catdog runs, below sizes whose arithmetic
#: overflows in the runtime.
MAX_TENSOR_BYTES = 1 << 31
#: Inputs an operator cannot do without, per BuiltinOperator (schema.fbs), where more than the first:
#: ai-edge-litert crashes on a CONV_2D whose weights are -1 ("no tensor"). Every operator needs its
#: first input; later ones (a bias, say) may be -1.
_REQUIRED_INPUTS = {0: 2, 3: 2, 4: 2, 9: 2, 18: 2, 34: 2, 40: 2, 41: 2, 42: 2}


def check_model(content: bytes, contract: ModelContract, source: str) -> None:
    """Check a TFLite file's structure, and its input and output tensors against its contract.

    Args:
        content: the .tflite file's bytes.
        contract: the model's contract (edge.contract.contract_for_model).
        source: the name errors give the file.

    Raises:
        ModelError: an offset, index or size points outside the file or the model, or the first
            subgraph's input or output tensor is not what the contract says.
    """
    reader, root = open_model(content, source)
    buffers = [_buffer_size(reader, reader.table(slot)) for slot in reader.vector(root, _MODEL_BUFFERS)]
    builtins = [_builtin_code(reader, reader.table(slot)) for slot in reader.vector(root, _MODEL_OPCODES)]
    _optional_string(reader, root, _MODEL_DESCRIPTION)
    for pos in reader.vector(root, _MODEL_METADATA_BUFFER):
        if not 0 <= reader.i32(pos) < len(buffers):
            raise reader.fail(f"metadata_buffer names buffer {reader.i32(pos)} of {len(buffers)}")
    for slot in reader.vector(root, _MODEL_METADATA):
        entry = reader.table(slot)
        _optional_string(reader, entry, _METADATA_NAME)
        pos = reader.field_pos(entry, _METADATA_BUFFER)
        if pos is not None and reader.u32(pos) >= len(buffers):
            raise reader.fail(f"metadata names buffer {reader.u32(pos)} of {len(buffers)}")
    subgraphs = reader.vector(root, _MODEL_SUBGRAPHS)
    if not subgraphs:
        return  # both runtimes refuse a model without a graph themselves, with their own reason
    n_tensors = []
    first_tensors: list[tuple[int, tuple[int, ...], tuple[float, int] | None]] = []
    for number, slot in enumerate(subgraphs):
        subgraph = reader.table(slot)
        _optional_string(reader, subgraph, _SUBGRAPH_NAME)
        tables = [reader.table(t) for t in reader.vector(subgraph, _SUBGRAPH_TENSORS)]
        tensors = [_tensor(reader, table, buffers) for table in tables]
        n_tensors.append(len(tensors))
        for op_slot in reader.vector(subgraph, _SUBGRAPH_OPERATORS):
            op = reader.table(op_slot)
            options = reader.table(reader.field_pos(op, _OP_OPTIONS)) if reader.field_pos(op, _OP_OPTIONS) is not None else None
            _optional_string(reader, op, _OP_CUSTOM)
            offset_pos, size_pos = reader.field_pos(op, _OP_LARGE_CUSTOM_OFFSET), reader.field_pos(op, _OP_LARGE_CUSTOM_SIZE)
            if offset_pos is not None and size_pos is not None:
                if reader.u64(offset_pos) + reader.u64(size_pos) > len(reader.data):
                    raise reader.fail("an operator's custom options run past the end of the file")
            opcode = reader.u32(reader.field_pos(op, _OP_OPCODE)) if reader.field_pos(op, _OP_OPCODE) is not None else 0
            if opcode >= len(builtins):
                raise reader.fail(f"an operator uses operator code {opcode} of {len(builtins)}")
            op_inputs = _indices(reader, op, _OP_INPUTS, len(tensors), optional=True)
            required = _REQUIRED_INPUTS.get(builtins[opcode], 1)
            if len(op_inputs) < required or -1 in op_inputs[:required]:
                raise reader.fail(f"operator {builtins[opcode]} lacks one of its first {required} input(s)")
            _check_weights(reader, builtins[opcode], [tensors[i][1] for i in op_inputs[:2]])
            op_outputs = _indices(reader, op, _OP_OUTPUTS, len(tensors))
            if builtins[opcode] in (3, 4, 9) and op_outputs:
                _check_requantization(reader, builtins[opcode], [tensors[i][2] for i in (op_inputs[0], op_outputs[0])],
                                      tables[op_inputs[1]])
            if options is not None:
                _check_window(reader, builtins[opcode], options)
            if builtins[opcode] in _ELEMENTWISE and len(op_inputs) == 2 and op_outputs:
                _check_broadcast(reader, [tensors[i][1] for i in (*op_inputs, op_outputs[0])])
            _indices(reader, op, _OP_INTERMEDIATES, len(tensors), optional=True)
        inputs = _indices(reader, subgraph, _SUBGRAPH_INPUTS, len(tensors))
        outputs = _indices(reader, subgraph, _SUBGRAPH_OUTPUTS, len(tensors))
        if number == 0:
            # the class scores (first), the presence score, the features
            expected = 1 + (contract.presence is not None) + (contract.features is not None)
            if len(inputs) != 1 or len(outputs) != expected:
                raise ModelError(
                    f"{source}: the model has {len(inputs)} input(s) and {len(outputs)} output(s); its contract "
                    f"describes 1 input and {expected} output(s), re-export the model"
                )
            scores = outputs[0]  # the class scores: output 0, or the output the contract names
            if contract.output_name is not None:
                from .signature import output_names

                scores = output_names(content, source).get(contract.output_name, -1)
                if scores not in outputs:
                    raise ModelError(f"{source}: the contract names the output {contract.output_name!r}, which the "
                                     "model does not have; re-export the model")
            first_tensors = [tensors[inputs[0]], tensors[scores]]
    for slot in reader.vector(root, _MODEL_SIGNATURES):
        _signature(reader, reader.table(slot), n_tensors)
    _check_against_contract(contract, *first_tensors, source)


#: Options fields that must be >= 1 (strides, dilations, depth multiplier, pool size), and the
#: padding field, per BuiltinOperator: CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D.
#: tflite-runtime 2.14 segfaults on a CONV_2D whose options table was moved onto other bytes.
_WINDOW_FIELDS = {3: ((1, 2, 4, 5), 0), 4: ((1, 2, 3, 5, 6), 0), 1: ((1, 2, 3, 4), 0), 17: ((1, 2, 3, 4), 0)}
#: ADD, MUL, SUB, DIV: two inputs that broadcast to the output's shape.
_ELEMENTWISE = {0, 18, 41, 42}


def _check_window(reader: Reader, builtin: int, options: int) -> None:
    """Check a convolution's or pool's options: positive strides, dilations and sizes, a known padding."""
    if builtin not in _WINDOW_FIELDS:
        return
    positive, padding = _WINDOW_FIELDS[builtin]
    for field in positive:
        pos = reader.field_pos(options, field)
        if pos is not None and not 1 <= reader.i32(pos) <= 4096:
            raise reader.fail(f"operator {builtin} has option {field} = {reader.i32(pos)}")
    pos = reader.field_pos(options, padding)
    if pos is not None and reader.u8(pos) > 1:
        raise reader.fail(f"operator {builtin} has padding {reader.u8(pos)}")


def _check_broadcast(reader: Reader, shapes: list[tuple[int, ...]]) -> None:
    """Check that an elementwise operator's two input shapes broadcast to its output's shape, as the file
    states them: an ADD fed a constant of another shape crashed both runtimes."""
    first, second, out = shapes
    rank = max(len(first), len(second))
    first, second = (1,) * (rank - len(first)) + first, (1,) * (rank - len(second)) + second
    if any(a != b and 1 not in (a, b) for a, b in zip(first, second)) or tuple(max(a, b) for a, b in zip(first, second)) != out:
        raise reader.fail(f"an elementwise operator takes shapes {shapes[0][:8]} and {shapes[1][:8]} into {out[:8]}")


def _check_weights(reader: Reader, builtin: int, shapes: list[tuple[int, ...]]) -> None:
    """Check that a convolution's or fully connected layer's input fits its weights, as the file states
    their shapes: tflite-runtime 2.14 reads past the end of an input with fewer channels than its
    CONV_2D's filter (a segfault) instead of refusing the model."""
    if builtin not in (3, 4, 9):  # CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
        return
    data, weights = shapes
    if builtin == 9:
        fits = len(weights) == 2 and weights[1] > 0 and math.prod(data) % weights[1] == 0
    else:  # filters are (out, height, width, in) for CONV_2D, (1, height, width, in * multiplier) for depthwise
        fits = len(data) == 4 and len(weights) == 4 and data[3] > 0 and (
            weights[3] == data[3] if builtin == 3 else weights[3] % data[3] == 0
        )
    if not fits:
        raise reader.fail(f"operator {builtin} takes an input of shape {data[:8]} with weights of shape {weights[:8]}")


#: XNNPACK (ai-edge-litert's default kernels) takes a quantized convolution's or fully connected layer's
#: requantization scale, input scale x weight scale / output scale, only below this; at or above it
#: ai-edge-litert 2.x aborts the process ("double free or corruption (!prev)"): one flipped exponent bit
#: of a weight's scale in the default model (issue 28).
MAX_REQUANTIZATION_SCALE = 256.0


def _check_requantization(reader: Reader, builtin: int, quant: list[tuple[float, int] | None], weights: int) -> None:
    """Check that a quantized CONV_2D's, DEPTHWISE_CONV_2D's or FULLY_CONNECTED's requantization scale is
    finite and below MAX_REQUANTIZATION_SCALE for every channel of its weights."""
    (data, output), table = quant, reader.field_pos(weights, _TENSOR_QUANTIZATION)
    if data is None or output is None or table is None:
        return  # not quantized (a float model, or float activations with int8 weights)
    scales = reader.vector(reader.table(table), _QUANT_SCALE)
    if not scales:
        return
    import numpy as np  # already loaded by edge.classify; one vectorised max over thousands of channels

    largest = float(np.frombuffer(reader.data, "<f4", count=len(scales), offset=scales.start).max())
    requantization = data[0] * largest / output[0] if output[0] else math.inf
    if not requantization < MAX_REQUANTIZATION_SCALE:  # also refuses NaN
        raise reader.fail(f"operator {builtin} has a requantization scale of {requantization:.3g} "
                          f"(input scale x weight scale / output scale), at least {MAX_REQUANTIZATION_SCALE:g}")


def _builtin_code(reader: Reader, opcode: int) -> int:
    """The BuiltinOperator of an OperatorCode table (the larger of its two fields, as the runtime reads it)."""
    _optional_string(reader, opcode, _OPCODE_CUSTOM)
    deprecated = reader.field_pos(opcode, _OPCODE_DEPRECATED_BUILTIN)
    builtin = reader.field_pos(opcode, _OPCODE_BUILTIN)
    return max(reader.u8(deprecated) if deprecated is not None else 0, reader.i32(builtin) if builtin is not None else 0)


def _optional_string(reader: Reader, table: int, field: int) -> None:
    """Check that a string (or ubyte vector) field, when present, lies inside the file."""
    pos = reader.field_pos(table, field)
    if pos is not None:
        reader.span(pos)


def _signature(reader: Reader, signature: int, n_tensors: list[int]) -> None:
    """Check a SignatureDef: its key and names lie in the file, its indices name a subgraph's tensors."""
    _optional_string(reader, signature, _SIGNATURE_KEY)
    pos = reader.field_pos(signature, _SIGNATURE_SUBGRAPH)
    subgraph = reader.u32(pos) if pos is not None else 0
    if subgraph >= len(n_tensors):
        raise reader.fail(f"a signature names subgraph {subgraph} of {len(n_tensors)}")
    for field in (_SIGNATURE_INPUTS, _SIGNATURE_OUTPUTS):
        for slot in reader.vector(signature, field):
            entry = reader.table(slot)
            _optional_string(reader, entry, _TENSORMAP_NAME)
            pos = reader.field_pos(entry, _TENSORMAP_TENSOR)
            tensor = reader.u32(pos) if pos is not None else 0
            if tensor >= n_tensors[subgraph]:
                raise reader.fail(f"a signature names tensor {tensor} of {n_tensors[subgraph]}")


def _buffer_size(reader: Reader, buffer: int) -> int:
    """Bytes of a Buffer table's data, after checking that they lie inside the file."""
    data_pos = reader.field_pos(buffer, _BUFFER_DATA)
    if data_pos is not None:
        return reader.span(data_pos)[1]
    offset_pos, size_pos = reader.field_pos(buffer, _BUFFER_OFFSET), reader.field_pos(buffer, _BUFFER_SIZE)
    offset = reader.u64(offset_pos) if offset_pos is not None else 0
    size = reader.u64(size_pos) if size_pos is not None else 0
    if offset > 1 and offset + size > len(reader.data):  # offset 0 or 1: no data (the converter's placeholders)
        raise reader.fail("a buffer runs past the end of the file")
    return size if offset > 1 else 0


def _tensor(reader: Reader, tensor: int, buffers: list[int]) -> tuple[int, tuple[int, ...], tuple[float, int] | None]:
    """(type, shape, first (scale, zero_point) or None) of a Tensor table, after checking its sizes."""
    type_pos = reader.field_pos(tensor, _TENSOR_TYPE)
    dtype = reader.u8(type_pos) if type_pos is not None else 0
    if dtype not in _TYPE_BYTES:
        raise reader.fail(f"a tensor has type {dtype}, unknown to TFLite")
    shape = tuple(reader.i32(pos) for pos in reader.vector(tensor, _TENSOR_SHAPE))
    if any(d < 0 for d in shape):
        raise reader.fail(f"a tensor has shape {shape[:8]}")
    count = 1
    for d in shape:  # capped as it goes: a long shape of large dimensions stays a small number
        count = min(count * d, MAX_TENSOR_BYTES + 1)
    item = _TYPE_BYTES[dtype]
    if count * (item or 1) > MAX_TENSOR_BYTES:
        raise reader.fail(f"a tensor of shape {shape[:8]} is over {MAX_TENSOR_BYTES} bytes")
    buffer_pos = reader.field_pos(tensor, _TENSOR_BUFFER)
    buffer = reader.u32(buffer_pos) if buffer_pos is not None else 0
    if buffer >= len(buffers):
        raise reader.fail(f"a tensor uses buffer {buffer} of {len(buffers)}")
    sparse = reader.field_pos(tensor, _TENSOR_SPARSITY) is not None
    if not buffers[buffer] and dtype not in _COMPUTED_TYPES:
        raise reader.fail(f"a computed tensor has TFLite type {dtype}, which no catdog export makes")
    if buffers[buffer] and item is not None and not sparse and buffers[buffer] != count * item:
        raise reader.fail(f"a constant tensor of shape {shape[:8]} has {buffers[buffer]} bytes of data")
    _optional_string(reader, tensor, _TENSOR_NAME)
    quant = None
    quant_pos = reader.field_pos(tensor, _TENSOR_QUANTIZATION)
    if quant_pos is not None:
        table = reader.table(quant_pos)
        # Only the counts and the first values matter here (per-channel weights have thousands).
        scales = reader.vector(table, _QUANT_SCALE)
        zero_points = reader.vector(table, _QUANT_ZERO_POINT, width=8)
        dim_pos = reader.field_pos(table, _QUANT_DIMENSION)
        dim = reader.i32(dim_pos) if dim_pos is not None else 0
        if zero_points and len(zero_points) != len(scales):
            raise reader.fail(f"a tensor has {len(scales)} quantization scale(s) but {len(zero_points)} zero point(s)")
        if len(scales) > 1 and not (0 <= dim < len(shape) and shape[dim] == len(scales)):
            raise reader.fail(f"a tensor of shape {shape[:8]} has {len(scales)} scales along dimension {dim}")
        if scales:
            quant = (reader.f32(scales[0]), reader.i64(zero_points[0]) if zero_points else 0)
    return dtype, shape, quant


def _indices(reader: Reader, table: int, field: int, n_tensors: int, optional: bool = False) -> list[int]:
    """A vector of tensor indices, each checked to be < n_tensors (-1, "no tensor", allowed if optional)."""
    indices = [reader.i32(pos) for pos in reader.vector(table, field)]
    lowest = -1 if optional else 0
    bad = [i for i in indices if not lowest <= i < n_tensors]
    if bad:
        raise reader.fail(f"an operator or subgraph uses tensor {bad[0]} of {n_tensors}")
    return indices


def _check_against_contract(
    contract: ModelContract,
    input_tensor: tuple[int, tuple[int, ...], tuple[float, int] | None],
    output_tensor: tuple[int, tuple[int, ...], tuple[float, int] | None],
    source: str,
) -> None:
    """The same rules as ModelContract.check_tensors, on the tensors as the file states them."""
    def detail(tensor):
        dtype, shape, quant = tensor
        names = {v: k for k, v in _DTYPES.items()}
        return {"shape": shape, "dtype": names.get(dtype, "unsupported"), "quantization": quant or (0.0, 0)}

    for name, (dtype, _, _) in (("input", input_tensor), ("output", output_tensor)):
        if dtype not in _DTYPES.values():
            raise ModelError(f"{source}: the model's {name} tensor has TFLite type {dtype}; catdog takes "
                             f"{', '.join(_DTYPES)}, re-export the model")
    contract.check_tensors(detail(input_tensor), detail(output_tensor), source)
