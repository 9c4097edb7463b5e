"""The contract embedded in the .tflite metadata: written and read without TensorFlow, the model unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from catdog.edge.errors import ModelError
from catdog.edge.metadata import CONTRACT_NAME, embed_contract, read_embedded_contract, read_metadata
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
