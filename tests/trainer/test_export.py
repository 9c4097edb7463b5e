"""Export modes, stratified calibration and the contract embedded in the .tflite, on the tiny model."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from catdog.edge.classify import Classifier
from catdog.edge.contract import ModelContract
from catdog.edge.errors import ModelError
from catdog.edge.metadata import embed_contract, read_embedded_contract
from catdog.edge.std_metadata import derive_contract, describe, read_standard_metadata
from catdog.trainer.cli import app
from catdog.trainer.keras_model import load_keras
from tests.trainer.conftest import TINY_SIZE, copy_photos

runner = CliRunner()


def test_int8_export_embeds_the_contract_and_calibrates_by_class(tiny_model):
    sidecar = json.loads(tiny_model.contract.read_text())
    assert read_embedded_contract(tiny_model.tflite) == sidecar
    # fit's one sigmoid unit became two softmax units, which the standard metadata labels; the .keras,
    # which shares the contract, loads with that head too.
    assert sidecar["activation"] == "softmax"
    assert load_keras(tiny_model.keras)[0].output_shape == (None, 2)
    standard = read_standard_metadata(tiny_model.tflite)
    assert standard.labels == ("cat", "dog") and standard.inputs[0].size_hw == (TINY_SIZE, TINY_SIZE)
    assert sidecar["metrics"]["calibration_per_label"] == {"cat": 8, "dog": 8}
    assert "calibrating int8 on 16 photos" in tiny_model.export_output


@pytest.fixture(scope="module")
def float_exports(tiny_model, tmp_path_factory):
    """The tiny model exported with --mode float16, dynamic and none: mode -> (path, CLI result)."""
    folder = tmp_path_factory.mktemp("exports")
    exports = {}
    for mode in ("float16", "dynamic", "none"):
        out = folder / f"{mode}.tflite"
        exports[mode] = (out, runner.invoke(app, ["export", str(tiny_model.keras), "--mode", mode, "--out", str(out),
                                              "--data-root", str(tiny_model.data_root)]))
    return exports


@pytest.mark.parametrize(("mode", "max_diff"), [("float16", 0.01), ("dynamic", 0.1), ("none", 1e-4)])
def test_float_modes_keep_float_io_and_stay_close_to_keras(float_exports, mode, max_diff):
    out, result = float_exports[mode]
    assert result.exit_code == 0, result.output
    contract = ModelContract.load(out.with_suffix(".json"))
    assert contract.mode == ("float32" if mode == "none" else mode)
    assert contract.input_dtype == "float32" and contract.input_quantization is None
    assert contract.metrics["calibration_photos"] == 0
    assert read_embedded_contract(out) == contract.to_dict()
    parity = contract.metrics["parity"]
    assert parity["photos"] == 32 and parity["max_abs_diff"] <= max_diff, parity
    assert "parity on 32 validation photos" in result.stdout
    Classifier.load(out)  # the edge accepts it: tensors match the contract
    assert read_standard_metadata(out).labels == ("cat", "dog")


def test_float_models_with_model_makers_normalization_are_refused_in_one_line(float_exports):
    """Model Maker's float models take (x - 127.5) / 127.5; catdog feeds float models raw 0..255 pixels."""
    from tests.edge.test_std_metadata import model_maker_like

    data = float_exports["none"][0].read_bytes()
    with pytest.raises(ModelError, match=r"normalizes pixels as \(x - 127.5\) / 127.5; catdog feeds raw 0..255"):
        derive_contract(model_maker_like(data, ["cat", "dog"]), "mm.tflite")
    assert derive_contract(model_maker_like(data, ["cat", "dog"], mean=0.0, std=1.0), "mm.tflite").input_dtype == "float32"


def test_every_output_is_described_the_class_scores_with_labels():
    """Extra [1, 1] outputs (a presence score, say) are described by their tensor names, without labels."""
    import keras

    from catdog.trainer.config import ExportMode
    from catdog.trainer.export import convert

    inputs = keras.Input((16, 16, 3))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    scores = keras.layers.Dense(2, activation="softmax", name="probs")(features)
    presence = keras.layers.Dense(1, activation="sigmoid", name="presence")(features)
    data = convert(keras.Model(inputs, [scores, presence]), ExportMode.none, None)
    contract = ModelContract(labels=("cat", "dog"), input_hw=(16, 16), activation="softmax")
    data = embed_contract(data, json.dumps(contract.to_dict()).encode())
    standard = read_standard_metadata(describe(data, contract))
    assert len(standard.outputs) == 2 and standard.outputs[0].label_file == "labels.txt"
    assert standard.outputs[1].name and standard.outputs[1].label_file is None
    named = read_standard_metadata(describe(data, contract, output_names=["presence"]))
    assert [o.name for o in named.outputs] == ["probability", "presence"]


def test_export_sizes_follow_the_mode(tiny_model, float_exports):
    size = {mode: path.stat().st_size for mode, (path, _) in float_exports.items()}
    int8 = tiny_model.tflite.stat().st_size
    assert int8 < size["float16"] < size["none"] and size["dynamic"] < size["float16"]


def test_quantize_is_int8_and_conflicts_with_another_mode(tiny_model):
    result = runner.invoke(app, ["export", str(tiny_model.keras), "--quantize", "--mode", "float16"])
    assert result.exit_code == 2 and "--quantize means --mode int8" in result.stderr


def test_export_calibrates_and_measures_on_the_photos_fit_checked(data_dir, tmp_path):
    """A duplicate and an unreadable training photo and a training photo leaked into validation are
    left out by fit's data checks; export rebuilds the same checked sets, so its calibration and
    parity photos exclude them too and the Keras val accuracy it records is fit's."""
    train = copy_photos(data_dir, tmp_path / "train", 10)
    val = copy_photos(data_dir, tmp_path / "val", 4, split="val")
    first = sorted((train / "cat").glob("*.jpg"))[0]
    shutil.copy(first, train / "cat" / "again.jpg")
    (train / "dog" / "broken.jpg").write_bytes(b"not a photo")
    shutil.copy(first, val / "cat" / "leaked.jpg")
    model = tmp_path / "m.keras"
    fit = runner.invoke(app, ["fit", str(train), "--val", str(val), "--out", str(model), "--epochs", "1",
                              "--image-size", str(TINY_SIZE), "--batch-size", "30"])
    assert fit.exit_code == 0, fit.output
    fitted = ModelContract.load(model.with_suffix(".json"))
    assert (fitted.training["train_photos"], fitted.training["val_photos"]) == (20, 8)

    export = runner.invoke(app, ["export", str(model), "--quantize", "--calibration-count", "100", "--data-root", str(tmp_path)])
    assert export.exit_code == 0, export.output
    metrics = ModelContract.load(model.with_suffix(".json")).metrics
    assert metrics["calibration_photos"] == 20 and metrics["calibration_per_label"] == {"cat": 10, "dog": 10}
    assert metrics["val_photos"] == metrics["parity"]["photos"] == 8
    assert metrics["keras_val_accuracy"] == fitted.metrics["keras_val_accuracy"]
