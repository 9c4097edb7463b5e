"""The contract embedded in the .tflite metadata: written and read without TensorFlow, the model unchanged."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from catdog.edge._flatbuffer import WORK_PER_BYTE, Reader
from catdog.edge.errors import ModelError
from catdog.edge.metadata import (
    CONTRACT_NAME, MAX_CONTRACT_BYTES, embed_contract, parse_contract_json, read_embedded_contract, read_metadata,
)
from catdog.edge.preprocess import prepare
from catdog.edge.runtime import find_runtime
from tests.conftest import ROOT

CONTRACT = {"labels": ["cat", "dog"], "input_hw": [128, 128], "note": "é ünïcode"}


def _outputs(model: bytes, photo) -> np.ndarray:
    interpreter = find_runtime().interpreter_class(model_content=model)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    pixels = prepare(photo, tuple(int(x) for x in detail["shape"][1:3]))
    batch = np.broadcast_to(pixels, tuple(detail["shape"])).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], batch)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.fixture(scope="module")
def plain(bundled_model) -> bytes:
    """The bundled model's bytes."""
    return bundled_model.read_bytes()


def test_embedded_contract_round_trips_and_the_model_runs_the_same(plain, val_photos, tmp_path):
    embedded = embed_contract(plain, json.dumps(CONTRACT).encode())
    assert read_embedded_contract(embedded) == CONTRACT
    path = tmp_path / "m.tflite"
    path.write_bytes(embedded)
    assert read_embedded_contract(path) == CONTRACT
    photo = val_photos["dog"][0]
    assert np.array_equal(_outputs(plain, photo), _outputs(embedded, photo))


def test_reembedding_replaces_the_contract_and_keeps_converter_metadata(plain):
    before = read_metadata(plain)
    once = embed_contract(plain, b'{"labels": ["a", "b"], "version": 1}')
    twice = embed_contract(once, b'{"labels": ["a", "b"], "version": 2}')
    entries = read_metadata(twice)
    assert read_embedded_contract(twice)["version"] == 2
    assert list(entries).count(CONTRACT_NAME) == 1
    for name, value in before.items():
        if name != CONTRACT_NAME:
            assert entries[name] == value


def test_tensorflow_reads_the_embedded_entry_too(plain):
    """An independent parser (TensorFlow's generated schema code) sees the same metadata entry."""
    flatbuffer_utils = pytest.importorskip("tensorflow.lite.tools.flatbuffer_utils")
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(embed_contract(plain, b'{"x": 1}')))
    entry = [m for m in model.metadata if m.name.decode() == CONTRACT_NAME]
    assert len(entry) == 1 and bytes(model.buffers[entry[0].buffer].data) == b'{"x": 1}'


def test_bad_files_are_clear_errors(plain, tmp_path):
    embedded = embed_contract(plain, b'{"labels": 1}')
    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        read_embedded_contract(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        read_embedded_contract(embedded[:200])  # cut inside the metadata block
    with pytest.raises(ModelError, match="not found"):
        read_embedded_contract(tmp_path / "missing.tflite")
    (tmp_path / "empty.tflite").write_bytes(b"")  # a file is mapped, and an empty one cannot be
    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        read_embedded_contract(tmp_path / "empty.tflite")
    with pytest.raises(ValueError):
        embed_contract(plain, b"[1, 2]")
    broken = embedded.replace(b'{"labels": 1}', b'{"labels": ?}')
    with pytest.raises(ModelError, match="not valid JSON"):
        read_embedded_contract(broken)


def test_a_model_without_the_entry_reads_as_none(plain):
    # Rename the entry (same length, so every offset stays valid): the model then has no catdog contract.
    renamed = embed_contract(plain, b'{"labels": ["cat", "dog"]}').replace(CONTRACT_NAME.encode(), b"catdog_xontract")
    assert read_embedded_contract(renamed) is None
    entries = read_metadata(renamed)
    assert CONTRACT_NAME not in entries and "catdog_xontract" in entries and "min_runtime_version" in entries


def test_reading_needs_no_tensorflow_or_flatbuffers_package(bundled_model):
    code = textwrap.dedent(
        f"""
        import sys
        from catdog.edge.metadata import read_embedded_contract, embed_contract
        data = embed_contract(open({str(bundled_model)!r}, 'rb').read(), b'{{"labels": ["cat", "dog"]}}')
        print(read_embedded_contract(data)["labels"])
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'trainer', 'flatbuffers'))
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "['cat', 'dog']" in result.stdout


# --- hostile files (issue 19): any bytes give a result or one ModelError, in bounded time and memory ---

COMPACT = (ROOT / "models" / "catdog-compact.tflite").read_bytes()
HEADER = b"\x10\x00\x00\x00TFL3"


def _read_all(model: bytes) -> None:
    """The property: reading gives entries and a contract (or None), else one ModelError."""
    try:
        read_metadata(model)
        read_embedded_contract(model)
    except ModelError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=512), st.booleans())
@example(HEADER + b"\xff" * 64, False)
def test_any_bytes_read_as_a_result_or_a_model_error(data, with_header):
    _read_all(HEADER + data if with_header else data)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 8192), st.binary(min_size=1, max_size=16), st.integers(0, len(COMPACT)))
def test_damaged_real_models_read_as_a_result_or_a_model_error(where, patch, cut):
    _read_all(COMPACT[:where] + patch + COMPACT[where + len(patch) :])
    _read_all(COMPACT[:cut])


def _model_with_metadata(entries: int, buffer_bytes: int) -> bytes:
    """A flatbuffer whose metadata has `entries` entries (distinct names), all naming one buffer."""
    out = bytearray(HEADER)
    out += struct.pack("<HHHHHHHHHHHH", 24, 32, *(0,) * 4, 4, 0, 8, 0, 0, 0)[:24]  # Model vtable at 8
    model = len(out)
    out += struct.pack("<iII", model - 8, 0, 0)  # Model table: buffers at +4, metadata at +8
    buffers_at = len(out)
    out += struct.pack("<II", 1, 0)  # buffers vector: one Buffer
    buffer_vtable = len(out)
    out += struct.pack("<HHH", 6, 8, 4) + b"\0\0"
    buffer = len(out)
    out += struct.pack("<iI", buffer - buffer_vtable, 0)
    data_at = len(out)
    out += struct.pack("<I", buffer_bytes) + b"x" * buffer_bytes
    struct.pack_into("<I", out, buffer + 4, data_at - (buffer + 4))
    struct.pack_into("<I", out, buffers_at + 4, buffer - (buffers_at + 4))
    entry_vtable = len(out)
    out += struct.pack("<HHHH", 8, 12, 4, 8)
    metadata_at = len(out)
    out += struct.pack("<I", entries) + b"\0" * 4 * entries
    for i in range(entries):
        entry = len(out)
        name = b"n%07d" % i
        out += struct.pack("<iII", entry - entry_vtable, 8, 0) + struct.pack("<I", len(name)) + name
        struct.pack_into("<I", out, metadata_at + 4 + 4 * i, entry - (metadata_at + 4 + 4 * i))
    struct.pack_into("<I", out, model + 4, buffers_at - (model + 4))
    struct.pack_into("<I", out, model + 8, metadata_at - (model + 8))
    struct.pack_into("<I", out, 0, model)
    return bytes(out)


def test_metadata_entries_sharing_one_buffer_are_refused_not_copied_each():
    # Regression: 2000 entries naming one 64 KB buffer made read_metadata copy 128 MB from a 150 KB
    # file (and look the buffers vector up again per entry).
    model = _model_with_metadata(2000, 1 << 16)
    assert len(read_metadata(_model_with_metadata(3, 16))) == 3
    with pytest.raises(ModelError, match="overlap"):
        read_metadata(model)
    assert read_embedded_contract(model) is None  # reads only the contract's entry


def test_a_walk_visits_a_bounded_number_of_vector_elements():
    model = _model_with_metadata(2, 0)
    reader = Reader(model, "m")
    root = reader.u32(0)
    with pytest.raises(ModelError, match="share or repeat"):
        for _ in range(WORK_PER_BYTE * len(model) + 1024):  # each call visits 2 elements
            reader.vector(root, 6)


def test_metadata_entries_sharing_one_long_name_are_refused():
    # Regression: 20000 metadata slots naming one entry with a 100 KB name made read_metadata decode
    # 2 GB of names from a 180 KB file (minutes); the walk's work budget now covers string copies.
    model = bytearray(_model_with_metadata(1, 0))
    r = Reader(bytes(model), "m")
    field = r.field_pos(r.u32(0), 6)
    old_entry = r.deref(r.deref(field) + 4)
    vtable = old_entry - r.i32(old_entry)
    slots, n = len(model), 20_000
    entry = slots + 4 + 4 * n
    model += struct.pack("<I", n) + b"".join(struct.pack("<I", entry - (slots + 4 + 4 * i)) for i in range(n))
    model += struct.pack("<iII", entry - vtable, 8, 0) + struct.pack("<I", 100_000) + b"n" * 100_000
    struct.pack_into("<I", model, field, slots - field)
    with pytest.raises(ModelError, match="share or repeat"):
        read_metadata(bytes(model))


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"a": NaN}', "NaN"),
        (b'{"a": -Infinity}', "Infinity"),
        (b'{"a": 1e999}', "too large"),
        (b'{"a": ' + b"9" * 5000 + b"}", "digits"),
        (b'{"a": 1, "a": 2}', "twice"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": "\xff"}', "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b" " * (MAX_CONTRACT_BYTES + 1), "over"),
    ],
)
def test_contract_json_that_python_accepts_but_a_contract_never_holds(raw, message):
    with pytest.raises(ModelError, match=message):
        parse_contract_json(raw, "m")


def test_an_embedded_contract_with_nan_is_a_model_error(plain):
    with pytest.raises(ModelError, match="embedded contract.*NaN"):
        read_embedded_contract(embed_contract(plain, b'{"labels": ["a", "b"], "threshold": NaN}'))
