"""Coverage-guided fuzzing (atheris) of contract JSON: edge.metadata.parse_contract_json and
ModelContract.from_dict, the path both the sidecar and the embedded contract take.

Property: for any bytes, a valid contract (which survives a JSON round trip unchanged) or one
ModelError, plus at most the unknown-field warning; anything else is a crash. The first input byte
picks what the rest is: 0 a whole JSON document, 1 a JSON value replacing one field of the bundled
compact model's contract (the byte after it picks the field).

    .venv/bin/python fuzz/fuzz_contract_json.py fuzz/corpus/fuzz_contract_json -max_total_time=600
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import fields
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from catdog.edge.contract import ModelContract
    from catdog.edge.errors import ModelError
    from catdog.edge.metadata import parse_contract_json

BASE = (Path(__file__).resolve().parent.parent / "models" / "catdog-compact.json").read_bytes()
FIELDS = [f.name for f in fields(ModelContract)]


def document(data: bytes) -> bytes:
    """The JSON to read, from the fuzzer's input (see the module docstring)."""
    mode, rest = (data[0] % 2, data[1:]) if data else (0, b"")
    if mode == 0 or not rest:
        return rest
    name = FIELDS[rest[0] % len(FIELDS)].encode()
    # Splice the raw value in as text, so invalid JSON, NaN and duplicates reach the parser too.
    return b'{"labels": ["cat", "dog"], "input_hw": [96, 96], "' + name + b'": ' + rest[1:] + b"}"


def TestOneInput(data: bytes) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            contract = ModelContract.from_dict(parse_contract_json(document(data), "contract"), "contract")
        except ModelError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 1000, str(exc)[:2000]
        else:
            again = ModelContract.from_dict(parse_contract_json(json.dumps(contract.to_dict()).encode(), "again"))
            assert again == contract, (again, contract)
    for warning in caught:
        assert "unknown contract field" in str(warning.message), warning.message


if __name__ == "__main__":
    assert ModelContract.from_dict(parse_contract_json(BASE, "seed")).labels == ("cat", "dog")
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
