"""The structural check before the runtime: damaged files are refused in Python, the bundled models pass."""

from __future__ import annotations

import struct

import pytest
from hypothesis import example, given, settings, strategies as st

from catdog.edge._flatbuffer import open_model
from catdog.edge.contract import contract_for_model
from catdog.edge.errors import ModelError
from catdog.edge.modelcheck import check_model
from catdog.edge.modelprobe import probe
from catdog.edge.runtime import find_runtime
from tests.conftest import ROOT

COMPACT_PATH = ROOT / "models" / "catdog-compact.tflite"
COMPACT = COMPACT_PATH.read_bytes()
CONTRACT = contract_for_model(COMPACT_PATH)


def _fields() -> dict[str, list[int]]:
    """Positions in the compact model of the fields the tests below edit."""
    r, root = open_model(COMPACT, "compact")
    found: dict[str, list[int]] = {"shape": [], "buffer": [], "data_len": [], "op_input": [], "opcode": [], "io": []}
    for b in r.vector(root, 4):
        pos = r.field_pos(r.deref(b), 0)
        if pos is not None:
            found["data_len"].append(r.deref(pos))
    subgraph = r.deref(r.vector(root, 2)[0])
    for t in r.vector(subgraph, 0):
        tensor = r.deref(t)
        found["shape"] += list(r.vector(tensor, 0))
        found["buffer"].append(r.field_pos(tensor, 2))
    found["io"] += list(r.vector(subgraph, 1)) + list(r.vector(subgraph, 2))
    for o in r.vector(subgraph, 3):
        op = r.deref(o)
        found["opcode"].append(r.field_pos(op, 0))
        found["op_input"] += list(r.vector(op, 1))
    return {k: [p for p in v if p is not None] for k, v in found.items()}


FIELDS = _fields()


def _edit(pos: int, value: int, fmt: str = "<I") -> bytes:
    out = bytearray(COMPACT)
    struct.pack_into(fmt, out, pos, value)
    return bytes(out)


def test_the_bundled_models_pass():
    check_model(COMPACT, CONTRACT, "compact")
    big = ROOT / "models" / "catdog.tflite"
    check_model(big.read_bytes(), contract_for_model(big), str(big))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("shape", 0x7FFFFFFF, "over 2147483648 bytes"),
        ("shape", 0xFFFFFFFF, "shape"),  # -1
        ("buffer", 0xFFFF, "uses buffer"),
        ("data_len", 0x7FFFFFFF, "past the end"),
        ("op_input", 9999, "uses tensor 9999"),
        ("opcode", 200, "operator code 200"),
        ("io", 9999, "uses tensor 9999"),
    ],
)
def test_damaged_fields_are_refused_before_the_runtime(field, value, message):
    for pos in FIELDS[field][:3]:
        with pytest.raises(ModelError, match=message):
            check_model(_edit(pos, value), CONTRACT, "m.tflite")


def test_the_input_tensor_must_be_the_contracts():
    # Edit the input tensor's stored shape (1, 96, 96, 3) -> (1, 64, 96, 3): no data to disagree with.
    r, root = open_model(COMPACT, "compact")
    subgraph = r.deref(r.vector(root, 2)[0])
    tensors = r.vector(subgraph, 0)
    first_input = r.i32(r.vector(subgraph, 1)[0])
    shape = r.vector(r.deref(tensors[first_input]), 0)
    with pytest.raises(ModelError, match=r"input shape=\(1, 64, 96, 3\)"):
        check_model(_edit(shape[1], 64), CONTRACT, "m.tflite")


def _signature_name_offset() -> int:
    """Position of the uoffset to the first signature input's name in the compact model."""
    r, root = open_model(COMPACT, "compact")
    signature = r.deref(r.vector(root, 7)[0])
    tensor_map = r.deref(r.vector(signature, 0)[0])
    return r.field_pos(tensor_map, 0)


def test_a_signature_name_past_the_end_is_refused(tmp_path):
    """Regression (fuzz/mutate_models.py, mutant 144 of seed 19): one flipped byte sent a signature's
    tensor name 256 MB past the end of the file; tflite-runtime 2.14 segfaulted on it, and the
    contract check alone accepted it."""
    damaged = _edit(_signature_name_offset(), 0x10000004)
    with pytest.raises(ModelError, match="outside the"):
        check_model(damaged, CONTRACT, "m.tflite")
    path = tmp_path / "m.tflite"
    path.write_bytes(damaged)
    from catdog.edge.classify import Classifier

    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        Classifier.load(path)  # refused in Python: the runtime never sees it


def test_a_computed_tensor_of_an_exotic_type_is_refused():
    """Regression (fuzz/mutate_models.py, mutant 202 of seed 19): the LOGISTIC output's type byte
    changed from int8 to float16 crashed ai-edge-litert (SIGSEGV) and passed every other check."""
    damaged = _edit(_tensor_field(b"_1:01", 1), 1, "<B")  # the LOGISTIC operator's int8 output
    with pytest.raises(ModelError, match="computed tensor has TFLite type 1"):
        check_model(damaged, CONTRACT, "m.tflite")


def _operator_inputs(builtin: int) -> list[int]:
    """Positions of the input indices of the first operator with this BuiltinOperator code."""
    r, root = open_model(COMPACT, "compact")
    codes = []
    for slot in r.vector(root, 1):
        table = r.deref(slot)
        codes.append(max(r.u8(r.field_pos(table, 0)) if r.field_pos(table, 0) else 0,
                         r.i32(r.field_pos(table, 3)) if r.field_pos(table, 3) else 0))
    for slot in r.vector(r.deref(r.vector(root, 2)[0]), 3):
        op = r.deref(slot)
        if codes[r.u32(r.field_pos(op, 0)) if r.field_pos(op, 0) else 0] == builtin:
            return list(r.vector(op, 1))
    raise AssertionError(f"no operator {builtin} in the compact model")


@pytest.mark.parametrize("builtin, which", [(114, 0), (3, 0), (3, 1)], ids=["quantize-input", "conv-input", "conv-weights"])
def test_a_missing_required_operator_input_is_refused(builtin, which):
    """Regression (fuzz/mutate_models.py, mutants 29, 249 and 271 of seed 20): a QUANTIZE input or a
    CONV_2D's weights set to -1 ("no tensor") crashed ai-edge-litert (SIGSEGV)."""
    damaged = _edit(_operator_inputs(builtin)[which], 0xFFFFFFFF)
    with pytest.raises(ModelError, match=f"operator {builtin} lacks"):
        check_model(damaged, CONTRACT, "m.tflite")


def test_a_convolution_fed_the_wrong_tensor_is_refused():
    """Regression (fuzz/mutate_models.py, mutant 205 of seed 21): the first CONV_2D's input, the
    (1, 96, 96, 3) pixels, swapped for a constant of shape (1, 3, 3, 192) made tflite-runtime 2.14
    segfault; ai-edge-litert refused it."""
    r, root = open_model(COMPACT, "compact")
    subgraph = r.deref(r.vector(root, 2)[0])
    shapes = [tuple(r.i32(p) for p in r.vector(r.deref(t), 0)) for t in r.vector(subgraph, 0)]
    wrong = shapes.index((1, 3, 3, 192))
    damaged = _edit(_operator_inputs(3)[0], wrong)
    with pytest.raises(ModelError, match=r"operator 3 takes an input of shape \(1, 3, 3, 192\)"):
        check_model(damaged, CONTRACT, "m.tflite")


def test_an_elementwise_operator_fed_the_wrong_shape_is_refused():
    """Regression (fuzz/mutate_models.py, mutant 128 of seed 22): the first ADD's (1, 96, 96, 3)
    input swapped for a constant of shape (1, 3, 3, 192) crashed both runtimes."""
    r, root = open_model(COMPACT, "compact")
    subgraph = r.deref(r.vector(root, 2)[0])
    shapes = [tuple(r.i32(p) for p in r.vector(r.deref(t), 0)) for t in r.vector(subgraph, 0)]
    damaged = _edit(_operator_inputs(0)[0], shapes.index((1, 3, 3, 192)))
    with pytest.raises(ModelError, match="elementwise operator takes shapes"):
        check_model(damaged, CONTRACT, "m.tflite")


def test_a_convolution_with_a_zero_stride_is_refused():
    """Regression (fuzz/mutate_models.py, mutant 297 of seed 22): a flipped byte moved a CONV_2D's
    options onto other bytes (stride 0); tflite-runtime 2.14 segfaulted."""
    r, root = open_model(COMPACT, "compact")
    codes = {r.u8(r.field_pos(r.deref(s), 0)) if r.field_pos(r.deref(s), 0) else 0: i for i, s in enumerate(r.vector(root, 1))}
    for slot in r.vector(r.deref(r.vector(root, 2)[0]), 3):
        op = r.deref(slot)
        opcode = r.u32(r.field_pos(op, 0)) if r.field_pos(op, 0) is not None else 0
        if opcode == codes[3] and r.field_pos(r.deref(r.field_pos(op, 4)), 2) is not None:
            stride_h = r.field_pos(r.deref(r.field_pos(op, 4)), 2)
            break
    with pytest.raises(ModelError, match="operator 3 has option 2 = 0"):
        check_model(_edit(stride_h, 0, "<i"), CONTRACT, "m.tflite")


def _first_convolution_scales() -> tuple[float, float, int]:
    """(input scale, output scale, position of the weights' first scale) of the compact model's first CONV_2D."""
    r, root = open_model(COMPACT, "compact")
    subgraph = r.deref(r.vector(root, 2)[0])
    tensors = [r.deref(t) for t in r.vector(subgraph, 0)]

    def first_scale(tensor: int) -> int:
        return r.vector(r.deref(r.field_pos(tensor, 4)), 2)[0]

    for slot in r.vector(subgraph, 3):
        op = r.deref(slot)
        if list(r.vector(op, 1))[:2] == _operator_inputs(3)[:2]:
            data, weights = (tensors[r.i32(p)] for p in list(r.vector(op, 1))[:2])
            output = tensors[r.i32(r.vector(op, 2)[0])]
            return r.f32(first_scale(data)), r.f32(first_scale(output)), first_scale(weights)
    raise AssertionError("no CONV_2D in the compact model")


@pytest.mark.parametrize("requantization, refused", [(250.0, False), (300.0, True), (float("nan"), True)])
def test_a_weight_scale_past_xnnpacks_requantization_range_is_refused(requantization, refused):
    """Regression (fuzz/mutate_models.py recipes (5240, "flip") and (5941, "flip_tables") on the default
    model, issue 28): one flipped exponent bit of a CONV_2D's per-channel weight scale made its
    requantization scale (input x weight / output) about 1e35; ai-edge-litert's XNNPACK kernels then
    abort the process with glibc's "double free or corruption (!prev)" (from 256 up, measured)."""
    data_scale, output_scale, pos = _first_convolution_scales()
    damaged = _edit(pos, requantization * output_scale / data_scale, "<f")
    if refused:
        with pytest.raises(ModelError, match="operator 3 has a requantization scale of .*, at least 256"):
            check_model(damaged, CONTRACT, "m.tflite")
    else:
        check_model(damaged, CONTRACT, "m.tflite")


def _refused_or_survived(model: bytes) -> None:
    """check_model held to its promise on a damaged copy: a refusal is one line, and a file it accepts does
    not crash or hang the runtime (loaded and invoked once in a child process by edge.modelprobe.probe)."""
    try:
        check_model(model, CONTRACT, "m.tflite")
    except ModelError as exc:
        assert "\n" not in str(exc)
        return
    result = probe(model, RUNTIME_MODULE, xnnpack=True)
    assert result.outcome not in ("crashed", "hung"), f"check_model accepted a file the runtime {result.outcome} on: {result}"


def _tensor_field(name_suffix: bytes, field: int) -> int:
    """Position of a field of the compact model's first tensor whose name ends so."""
    r, root = open_model(COMPACT, "compact")
    for slot in r.vector(r.deref(r.vector(root, 2)[0]), 0):
        tensor = r.deref(slot)
        if r.string(r.field_pos(tensor, 3)).endswith(name_suffix):
            return r.field_pos(tensor, field)
    raise AssertionError(f"no tensor named *{name_suffix!r} in the compact model")


def _last_buffer_end() -> int:
    """End of the last byte of the compact model's buffers' data."""
    r, root = open_model(COMPACT, "compact")
    data = [r.field_pos(r.deref(slot), 0) for slot in r.vector(root, 4)]
    return max(sum(r.span(pos)) for pos in data if pos is not None)


RUNTIME_MODULE = find_runtime().interpreter_class.__module__
#: Edits that crash ai-edge-litert when nothing refuses them (the LOGISTIC output's type int8 ->
#: float16: glibc's "double free or corruption (!prev)", the message of issue 28's abort; a CONV_2D's
#: weights -1: SIGSEGV), tried first by the property tests below, so that a checker which lets them through fails.
CRASHERS = [(_tensor_field(b"_1:01", 1), b"\x01"), (_operator_inputs(3)[1], b"\xff\xff\xff\xff")]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.sampled_from(sorted(FIELDS)), st.data(), st.integers(0, 2**32 - 1))
def test_any_edit_of_a_field_is_refused_in_one_line_or_survives_the_runtime(field, data, value):
    _refused_or_survived(_edit(data.draw(st.sampled_from(FIELDS[field])), value))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(0, 16384), st.binary(min_size=1, max_size=8))
@example(*CRASHERS[0])
@example(*CRASHERS[1])
def test_patched_files_are_refused_in_one_line_or_survive_the_runtime(where, patch):
    _refused_or_survived(COMPACT[:where] + patch + COMPACT[where + len(patch) :])


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, _last_buffer_end() - 1))
def test_a_file_cut_before_its_last_buffer_ends_is_refused_in_one_line(cut):
    with pytest.raises(ModelError) as refused:
        check_model(COMPACT[:cut], CONTRACT, "m.tflite")
    assert "\n" not in str(refused.value)


def test_the_features_output_counts_among_the_outputs_the_contract_describes(bundled_model):
    content = bundled_model.read_bytes()
    contract = contract_for_model(bundled_model, content)
    assert contract.features is not None
    check_model(content, contract, "m.tflite")  # scores, presence and features
    with pytest.raises(ModelError, match="3 output\\(s\\); its contract describes 1 input and 2 output"):
        check_model(content, contract.replace(features=None), "m.tflite")
