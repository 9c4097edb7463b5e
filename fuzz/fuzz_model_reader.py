"""Coverage-guided fuzzing (atheris) of the model file reader: edge.metadata and edge.modelcheck.

Property: for any bytes, reading the metadata, the embedded contract and checking the structure
gives a result or one ModelError; anything else (another exception, a hang, a large allocation) is
a crash that libFuzzer reports. The first input byte picks what the rest is: 0 a whole file, 1 a
patch (offset, bytes) onto the bundled compact model, 2 a cut of it (so mutations of a real
exported model are fuzzed without a 275 KB seed).

    .venv/bin/python fuzz/fuzz_model_reader.py fuzz/corpus/fuzz_model_reader -max_total_time=600
"""

from __future__ import annotations

import struct
import sys
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from catdog.edge.contract import ModelContract
    from catdog.edge.errors import ModelError
    from catdog.edge.metadata import read_embedded_contract, read_metadata
    from catdog.edge.modelcheck import check_model

BASE = (Path(__file__).resolve().parent.parent / "models" / "catdog-compact.tflite").read_bytes()
CONTRACT = ModelContract.from_dict(read_embedded_contract(BASE))


def model_bytes(data: bytes) -> bytes:
    """The file to read, from the fuzzer's input (see the module docstring)."""
    mode, rest = (data[0] % 3, data[1:]) if data else (0, b"")
    if mode == 0 or len(rest) < 4:
        return rest
    where = struct.unpack_from("<I", rest)[0] % len(BASE)
    if mode == 1:
        patch = rest[4:]
        return BASE[:where] + patch + BASE[where + len(patch) :]
    return BASE[:where]


def TestOneInput(data: bytes) -> None:
    model = model_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            read_metadata(model)
            embedded = read_embedded_contract(model)
            contract = CONTRACT if embedded is None else ModelContract.from_dict(embedded)
            check_model(model, contract, "model")
        except ModelError as exc:
            assert "\n" not in str(exc), str(exc)
    for warning in caught:
        assert "unknown contract field" in str(warning.message), warning.message


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
