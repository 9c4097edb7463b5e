"""The model contract: JSON round trip, validation, the quantization formula, interpreter checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catdog.edge.contract import ModelContract, Quantization, sidecar_path
from catdog.edge.errors import ModelError


def make_contract(**changes) -> ModelContract:
    base = dict(
        labels=("cat", "dog"), input_hw=(128, 96), input_dtype="uint8", input_quantization=Quantization(1.0, 0),
        output_dtype="uint8", output_quantization=Quantization(1 / 256, 0), mode="int8",
    )
    base.update(changes)
    return ModelContract(**base)


def test_json_round_trip(tmp_path):
    contract = make_contract(metrics={"parity": {"agreement": 0.99}})
    path = tmp_path / "m.json"
    contract.save(path)
    assert ModelContract.load(path) == contract
    assert json.loads(path.read_text())["input_hw"] == [128, 96]


def test_crop_round_trips_and_defaults_to_the_whole_photo(tmp_path):
    path = tmp_path / "m.json"
    make_contract(crop=0.83).save(path)
    assert ModelContract.load(path).crop == 0.83
    older = make_contract().to_dict()
    del older["crop"]  # written before contracts had a crop
    path.write_text(json.dumps(older))
    assert ModelContract.load(path).crop == 1.0


def test_sidecar_path_is_beside_the_model(tmp_path):
    assert sidecar_path(tmp_path / "catdog.tflite") == tmp_path / "catdog.json"


def test_unknown_fields_load_with_a_warning(tmp_path):
    data = make_contract().to_dict() | {"future_field": 1}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="future_field"):
        assert ModelContract.load(path).labels == ("cat", "dog")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"labels": ("cat",)}, "at least 2"),
        ({"color": "BGR"}, "color"),
        ({"resize": "nearest"}, "resize"),
        ({"labels": ("a", "b", "c")}, "sigmoid"),
        ({"threshold": 1.5}, "threshold"),
        ({"crop": 0.1}, "crop"),
        ({"crop": 1.2}, "crop"),
    ],
)
def test_invalid_contracts_are_refused(changes, message):
    with pytest.raises(ModelError, match=message):
        make_contract(**changes)


def test_missing_or_broken_contract_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        ModelContract.load(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        ModelContract.load(tmp_path / "bad.json")


def test_quantization_round_trip_and_clipping():
    q = Quantization(scale=0.5, zero_point=10)
    values = np.array([0.0, 1.0, 100.0, 1000.0, -50.0])
    quantized = q.quantize(values, "uint8")
    assert quantized.tolist() == [10, 12, 210, 255, 0]
    assert q.dequantize(quantized[:3]).tolist() == [0.0, 1.0, 100.0]


def test_check_contract_reports_shape_and_dtype_mismatch():
    contract = make_contract()
    good_in = {"shape": np.array([1, 128, 96, 3]), "dtype": np.uint8, "quantization": (1.0, 0)}
    good_out = {"shape": np.array([1, 1]), "dtype": np.uint8, "quantization": (1 / 256, 0)}
    contract.check_tensors(good_in, good_out, "m.tflite")
    with pytest.raises(ModelError, match=r"input shape=\(1, 64, 64, 3\)"):
        contract.check_tensors(good_in | {"shape": np.array([1, 64, 64, 3])}, good_out, "m.tflite")
    with pytest.raises(ModelError, match="dtype=float32"):
        contract.check_tensors(good_in | {"dtype": np.float32}, good_out, "m.tflite")
    with pytest.raises(ModelError, match="2 output"):
        contract.check_tensors(good_in, good_out | {"shape": np.array([1, 2])}, "m.tflite")


def test_scores_and_decision_are_pure_contract_methods():
    contract = ModelContract(
        labels=("cat", "dog"), input_hw=(8, 8), output_dtype="uint8", output_quantization=Quantization(1 / 256, 0),
        threshold=0.6,
    )
    scores = contract.scores(np.array([[128]], dtype=np.uint8))
    assert scores.tolist() == [0.5, 0.5]
    assert contract.decide(scores) == 0  # 0.5 < threshold 0.6
    assert contract.decide(np.array([0.3, 0.7])) == 1
    softmax = ModelContract(labels=("a", "b", "c"), input_hw=(8, 8), activation="softmax")
    assert softmax.decide(softmax.scores(np.array([[0.1, 0.7, 0.2]]))) == 1
