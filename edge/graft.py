"""A new int8 head grafted onto a TFLite model's features output, without TensorFlow: the model catdog-edge learn writes.

The base model (catdog-train export of a pretrained model) computes its pooled backbone features as an
int8 tensor, which a QUANTIZE turns into its uint8 "features" output. The graft appends, on that int8
tensor (schema: tensorflow/compiler/mlir/lite/schema/schema.fbs):

- the class scores: FULLY_CONNECTED (int8 weights, symmetric per tensor; int32 bias at input scale x
  weight scale) -> SOFTMAX (int8, scale 1/256, zero point -128) -> QUANTIZE to the base's uint8 output;
- optionally a presence score (familiarity): L2_NORMALIZATION (int8, scale 1/128) -> FULLY_CONNECTED on
  the unit centroids (each row's rescaling folded into its weights and bias) -> REDUCE_MAX -> QUANTIZE;

all builtins every TFLite runtime has. A new root Model table (edge._flatbuffer_write) lists the old
operator codes, buffers and tensors plus the new ones, a new first subgraph whose operators are the old
ones the features need (the old head and presence ops are dropped) followed by the new ones, its outputs
[scores, presence, features], and a new signature naming them. The old tables stay in the file unused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._flatbuffer import Reader, open_model
from ._flatbuffer_write import Old, Refs, Scalars, String, Table, insert
from .errors import ModelError
from .quantization import Quantization
from .signature import output_names

# Field numbers (schema.fbs).
_M_VERSION, _M_OPCODES, _M_SUBGRAPHS, _M_DESCRIPTION, _M_BUFFERS, _M_METADATA_BUFFER, _M_METADATA, _M_SIGNATURES = range(8)
_SG_TENSORS, _SG_INPUTS, _SG_OUTPUTS, _SG_OPERATORS, _SG_NAME = range(5)
_T_SHAPE, _T_TYPE, _T_BUFFER, _T_NAME, _T_QUANT = range(5)
_Q_SCALE, _Q_ZERO_POINT = 2, 3
_OP_OPCODE, _OP_INPUTS, _OP_OUTPUTS, _OP_OPTIONS_TYPE, _OP_OPTIONS = range(5)
_SIG_INPUTS, _SIG_OUTPUTS, _SIG_KEY, _SIG_SUBGRAPH = 0, 1, 2, 4
# BuiltinOperator, the operator version used for int8, and BuiltinOptions.
_FULLY_CONNECTED, _L2_NORMALIZATION, _SOFTMAX, _REDUCE_MAX, _QUANTIZE = 9, 11, 25, 82, 114
_VERSIONS = {_FULLY_CONNECTED: 4, _L2_NORMALIZATION: 2, _SOFTMAX: 2, _REDUCE_MAX: 2, _QUANTIZE: 2}
_FC_OPTIONS, _SOFTMAX_OPTIONS, _L2_OPTIONS, _REDUCER_OPTIONS = 8, 9, 12, 27
_INT8, _UINT8, _INT32 = 9, 3, 2
#: Softmax's int8 output quantization (the runtime requires it), and L2_NORMALIZATION's.
SOFTMAX_Q = Quantization(1 / 256, -128)
UNIT_Q = Quantization(1 / 128, 0)


@dataclass(frozen=True)
class Dense:
    """A dense layer to quantize: out = x @ kernel + bias, and the range of its outputs on the training features."""

    kernel: np.ndarray
    """float (D, units)."""
    bias: np.ndarray
    """float (units,)."""
    low: float
    """Smallest output expected (the training outputs' minimum, with a margin)."""
    high: float
    """Largest output expected."""


@dataclass(frozen=True)
class Tensor:
    """What the graft reads of an old tensor."""

    index: int
    type: int
    quantization: Quantization | None


def output_quantization(low: float, high: float) -> Quantization:
    """int8 quantization covering [low, high] (and 0)."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max(high - low, 1e-6) / 255.0
    return Quantization(float(scale), int(np.clip(round(-128 - low / scale), -128, 127)))


def quantize_dense(dense: Dense, input_q: Quantization) -> tuple[np.ndarray, float, np.ndarray, Quantization]:
    """int8 weights (units, D) symmetric per tensor, their scale, int32 bias (scale input x weights), output quantization."""
    kernel = np.asarray(dense.kernel, np.float64).T
    w_scale = max(float(np.abs(kernel).max()), 1e-12) / 127.0
    weights = np.clip(np.round(kernel / w_scale), -127, 127).astype(np.int8)
    bias = np.round(np.asarray(dense.bias, np.float64) / (input_q.scale * w_scale)).astype(np.int64)
    bias = np.clip(bias, -(2**31), 2**31 - 1).astype(np.int32)
    return weights, w_scale, bias, output_quantization(dense.low, dense.high)


def graft(base: bytes, head: Dense, presence: Dense | None, features: str, source: str = "model") -> bytes:
    """The base model with a new class-score head (and presence score) on its features output.

    Args:
        base: the base .tflite file's bytes (no appended archive).
        head: the class scores' logits: softmax is applied after it.
        presence: the presence score's dense layer on unit features (its max is the score), or None.
        features: the signature name of the base's features output.
        source: names the base in errors.

    Returns:
        The new .tflite bytes (no contract embedded; outputs "scores", ["presence",] "features").

    Raises:
        ModelError: the base has no features output, or its features are not int8 with uint8 outputs.
    """
    reader, root = open_model(base, source)
    subgraph = reader.table(reader.vector(root, _M_SUBGRAPHS)[0])
    tensor_slots = list(reader.vector(subgraph, _SG_TENSORS))
    named = output_names(base, source)
    if features not in named:
        raise ModelError(f"{source}: the model has no {features!r} output; re-export it with catdog-train export")
    ops = [_op(reader, reader.table(slot)) for slot in reader.vector(subgraph, _SG_OPERATORS)]
    codes = [_code(reader, reader.table(slot)) for slot in reader.vector(root, _M_OPCODES)]
    features_out = named[features]
    producer = next((op for op in ops if features_out in op[2]), None)
    inner = features_out
    if producer is not None and codes[producer[0]] == _QUANTIZE:
        inner = producer[1][0]
    feat = _tensor(reader, reader.table(tensor_slots[inner]), inner)
    out = _tensor(reader, reader.table(tensor_slots[features_out]), features_out)
    if feat.type != _INT8 or feat.quantization is None or out.type != _UINT8:
        raise ModelError(f"{source}: learning needs an int8 model (features int8 inside, uint8 outputs); "
                         "export the base with catdog-train export --quantize")

    builder = _Builder(reader, root, codes, len(tensor_slots), len(list(reader.vector(root, _M_BUFFERS))))
    weights, w_scale, bias, logits_q = quantize_dense(head, feat.quantization)
    units = weights.shape[0]
    w = builder.constant(weights, _INT8, Quantization(w_scale, 0), "learn/head/weights")
    b = builder.constant(bias, _INT32, Quantization(feat.quantization.scale * w_scale, 0), "learn/head/bias")
    logits = builder.tensor((1, units), _INT8, logits_q, "learn/head/logits")
    builder.op(_FULLY_CONNECTED, [feat.index, w, b], [logits], _FC_OPTIONS, Table({0: ("b", 0), 1: ("b", 0)}))
    probs = builder.tensor((1, units), _INT8, SOFTMAX_Q, "learn/head/softmax")
    builder.op(_SOFTMAX, [logits], [probs], _SOFTMAX_OPTIONS, Table({0: ("f", 1.0)}))
    scores = builder.tensor((1, units), _UINT8, Quantization(SOFTMAX_Q.scale, 0), "learn/scores")
    builder.op(_QUANTIZE, [probs], [scores])
    outputs = [("scores", scores)]
    if presence is not None:
        size = int(np.asarray(presence.kernel).shape[0])
        unit = builder.tensor((1, size), _INT8, UNIT_Q, "learn/presence/unit")
        builder.op(_L2_NORMALIZATION, [feat.index], [unit], _L2_OPTIONS, Table({0: ("b", 0)}))
        pw, pw_scale, pb, sims_q = quantize_dense(presence, UNIT_Q)
        wp = builder.constant(pw, _INT8, Quantization(pw_scale, 0), "learn/presence/weights")
        bp = builder.constant(pb, _INT32, Quantization(UNIT_Q.scale * pw_scale, 0), "learn/presence/bias")
        sims = builder.tensor((1, pw.shape[0]), _INT8, sims_q, "learn/presence/parts")
        builder.op(_FULLY_CONNECTED, [unit, wp, bp], [sims], _FC_OPTIONS, Table({0: ("b", 0), 1: ("b", 0)}))
        axis = builder.constant(np.array([1], np.int32), _INT32, None, "learn/presence/axis")
        top = builder.tensor((1, 1), _INT8, sims_q, "learn/presence/max")
        builder.op(_REDUCE_MAX, [sims, axis], [top], _REDUCER_OPTIONS, Table({0: ("B", 1)}))
        score = builder.tensor((1, 1), _UINT8, Quantization(sims_q.scale, sims_q.zero_point + 128), "learn/presence")
        builder.op(_QUANTIZE, [top], [score])
        outputs.append(("presence", score))
    outputs.append((features, features_out))

    needed = {features_out, inner}  # the old operators the features need, in their order
    kept = []
    for number in range(len(ops) - 1, -1, -1):
        if needed & set(ops[number][2]):
            kept.append(number)
            needed.update(i for i in ops[number][1] if i >= 0)
    operator_slots = list(reader.vector(subgraph, _SG_OPERATORS))
    new_subgraph = Table({
        _SG_TENSORS: Refs([Old(reader.deref(slot)) for slot in tensor_slots] + builder.tensors),
        _SG_INPUTS: Old(reader.deref(reader.field_pos(subgraph, _SG_INPUTS))),
        _SG_OUTPUTS: Scalars(np.array([index for _, index in outputs], np.int32)),
        _SG_OPERATORS: Refs([Old(reader.deref(operator_slots[n])) for n in sorted(kept)] + builder.operators),
    })
    if reader.field_pos(subgraph, _SG_NAME) is not None:
        new_subgraph.fields[_SG_NAME] = Old(reader.deref(reader.field_pos(subgraph, _SG_NAME)))
    signature = _signature(reader, root, outputs)
    model = Table({_M_VERSION: ("I", reader.u32(reader.field_pos(root, _M_VERSION)) if reader.field_pos(root, _M_VERSION) else 3)})
    model.fields[_M_OPCODES] = Refs([Old(reader.deref(s)) for s in reader.vector(root, _M_OPCODES)] + builder.opcodes)
    model.fields[_M_SUBGRAPHS] = Refs([new_subgraph] + [Old(reader.deref(s)) for s in reader.vector(root, _M_SUBGRAPHS)[1:]])
    model.fields[_M_BUFFERS] = Refs([Old(reader.deref(s)) for s in reader.vector(root, _M_BUFFERS)] + builder.buffers)
    for number in (_M_DESCRIPTION, _M_METADATA_BUFFER, _M_METADATA):
        if reader.field_pos(root, number) is not None:
            model.fields[number] = Old(reader.deref(reader.field_pos(root, number)))
    model.fields[_M_SIGNATURES] = Refs([signature])
    return insert(base, model)


class _Builder:
    """The new tensors, buffers, operator codes and operators, numbered after the old ones."""

    def __init__(self, reader: Reader, root: int, codes: list[int], n_tensors: int, n_buffers: int):
        self.reader, self.root, self.codes = reader, root, list(codes)
        self.n_tensors, self.n_buffers = n_tensors, n_buffers
        self.tensors: list[Table] = []
        self.buffers: list[Table] = []
        self.opcodes: list[Table] = []
        self.operators: list[Table] = []

    def tensor(self, shape: tuple[int, ...], dtype: int, quant: Quantization | None, name: str, buffer: int = 0) -> int:
        fields = {_T_SHAPE: Scalars(np.array(shape, np.int32)), _T_TYPE: ("b", dtype), _T_BUFFER: ("I", buffer),
                  _T_NAME: String(name.encode())}
        if quant is not None:
            fields[_T_QUANT] = Table({_Q_SCALE: Scalars(np.array([quant.scale], np.float32)),
                                      _Q_ZERO_POINT: Scalars(np.array([quant.zero_point], np.int64))})
        self.tensors.append(Table(fields))
        return self.n_tensors + len(self.tensors) - 1

    def constant(self, values: np.ndarray, dtype: int, quant: Quantization | None, name: str) -> int:
        self.buffers.append(Table({0: Scalars(np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8), align=16)}))
        return self.tensor(values.shape, dtype, quant, name, buffer=self.n_buffers + len(self.buffers) - 1)

    def op(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0, options: Table | None = None) -> None:
        if code not in self.codes:
            self.codes.append(code)
            self.opcodes.append(Table({0: ("b", min(code, 127)), 2: ("i", _VERSIONS[code]), 3: ("i", code)}))
        fields = {_OP_OPCODE: ("I", self.codes.index(code)), _OP_INPUTS: Scalars(np.array(inputs, np.int32)),
                  _OP_OUTPUTS: Scalars(np.array(outputs, np.int32))}
        if options is not None:
            fields[_OP_OPTIONS_TYPE], fields[_OP_OPTIONS] = ("B", options_type), options
        self.operators.append(Table(fields))


def _signature(reader: Reader, root: int, outputs: list[tuple[str, int]]) -> Table:
    """The base's first signature with the new outputs (its inputs and key kept)."""
    old = reader.table(reader.vector(root, _M_SIGNATURES)[0])
    maps = [Table({0: String(name.encode()), 1: ("I", index)}) for name, index in outputs]
    table = Table({_SIG_OUTPUTS: Refs(maps), _SIG_SUBGRAPH: ("I", 0)})
    for number in (_SIG_INPUTS, _SIG_KEY):
        if reader.field_pos(old, number) is not None:
            table.fields[number] = Old(reader.deref(reader.field_pos(old, number)))
    return table


def _op(reader: Reader, op: int) -> tuple[int, list[int], list[int]]:
    opcode = reader.u32(reader.field_pos(op, _OP_OPCODE)) if reader.field_pos(op, _OP_OPCODE) is not None else 0
    return opcode, [reader.i32(p) for p in reader.vector(op, _OP_INPUTS)], [reader.i32(p) for p in reader.vector(op, _OP_OUTPUTS)]


def _code(reader: Reader, opcode: int) -> int:
    deprecated, builtin = reader.field_pos(opcode, 0), reader.field_pos(opcode, 3)
    return max(reader.u8(deprecated) if deprecated is not None else 0, reader.i32(builtin) if builtin is not None else 0)


def _tensor(reader: Reader, table: int, index: int) -> Tensor:
    type_pos, quant_pos = reader.field_pos(table, _T_TYPE), reader.field_pos(table, _T_QUANT)
    quant = None
    if quant_pos is not None:
        q = reader.table(quant_pos)
        scales, points = reader.vector(q, _Q_SCALE), reader.vector(q, _Q_ZERO_POINT, 8)
        if len(scales) == 1 and len(points) == 1:
            quant = Quantization(float(reader.f32(scales[0])), int(reader.i64(points[0])))
    return Tensor(index, reader.u8(type_pos) if type_pos is not None else 0, quant)
