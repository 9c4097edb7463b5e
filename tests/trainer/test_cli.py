"""The vertical slice through the CLIs: tiny fit -> export --quantize -> parity -> catdog-edge classify."""

from __future__ import annotations

import json

import click.testing
import numpy as np
from typer.testing import CliRunner

from catdog.edge.cli import app as edge_app  # a click group: click's CliRunner runs it
from catdog.edge.contract import ModelContract
from catdog.edge.preprocess import prepare
from catdog.trainer.cli import app
from catdog.trainer.config import EvaluateConfig, ExportConfig, ExportMode
from catdog.trainer.errors import DataError
from catdog.trainer.keras_model import keras_scores, load_keras

runner = CliRunner()


def test_fit_writes_model_contract_and_history(tiny_model):
    assert tiny_model.keras.is_file() and tiny_model.keras.with_suffix(".history.json").is_file()
    history = json.loads(tiny_model.keras.with_suffix(".history.json").read_text())
    assert len(history["val_accuracy"]) == 1 and "loss" in history
    assert "val accuracy" in tiny_model.fit_output


def test_export_writes_int8_model_with_contract_and_parity(tiny_model):
    contract = ModelContract.load(tiny_model.contract)
    assert contract.labels == ("cat", "dog") and contract.input_hw == (64, 64)
    assert contract.mode == "int8" and contract.input_dtype == "uint8" and contract.output_dtype == "uint8"
    assert contract.input_quantization.zero_point == 0 and abs(contract.input_quantization.scale - 1.0) < 1e-3
    parity = contract.metrics["parity"]
    assert parity["photos"] == 32 and parity["max_abs_diff"] <= 0.05  # int8 stays within a few output steps
    # The two accuracies can differ only on the photos where the models disagree.
    assert abs(parity["keras_accuracy"] - parity["tflite_accuracy"]) <= 1.0 - parity["agreement"] + 1e-9
    # export measured the Keras model on the very photos fit validated it on
    assert f"val accuracy {parity['keras_accuracy']:.4f} on 32 photos" in tiny_model.fit_output
    assert contract.training["config"]["limit_per_class"] == 16
    assert "parity on 32 validation photos" in tiny_model.export_output


def test_classify_with_the_exported_model_answers_like_the_keras_model(tiny_model, val_photos):
    photos = val_photos["cat"][:2] + val_photos["dog"][:2]
    result = click.testing.CliRunner().invoke(edge_app, ["classify", *map(str, photos), "--model", str(tiny_model.tflite), "--format", "json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    model, contract = load_keras(tiny_model.keras)
    pixels = np.stack([prepare(p, contract.input_hw, contract.color, contract.resize, contract.crop) for p in photos])
    for line, path, keras_dog in zip(lines, photos, keras_scores(model, pixels, contract)[:, 1], strict=True):
        assert line["path"] == str(path)
        assert line["label"] == ("dog" if line["scores"]["dog"] >= contract.threshold else "cat")
        assert abs(line["scores"]["dog"] - keras_dog) <= 0.05


def test_parity_command_reports_and_enforces_the_bar(tiny_model, data_dir):
    args = ["parity", str(tiny_model.keras), str(tiny_model.tflite), "--data", str(data_dir / "val"),
            "--limit-per-class", "10", "--format", "json"]
    result = runner.invoke(app, args)
    report = json.loads(result.stdout.splitlines()[0])
    assert report["photos"] == 20
    assert set(report) == {"photos", "agreement", "mean_abs_diff", "max_abs_diff", "keras_accuracy", "tflite_accuracy"}
    assert result.exit_code == (0 if report["agreement"] >= 0.98 else 1)
    strict = runner.invoke(app, [*args, "--min-agreement", "1.01"])
    assert strict.exit_code == 1 and "below --min-agreement" in strict.stderr


def test_failed_export_leaves_no_file(tiny_model, tmp_path):
    out = tmp_path / "never.tflite"
    result = runner.invoke(
        app, ["export", str(tiny_model.keras), "--quantize", "--out", str(out), "--calibration", str(tmp_path / "none"),
              "--data-root", str(tiny_model.data_root)],
    )
    assert result.exit_code == 2
    assert "photo folder not found" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_evaluate_tflite_and_keras_agree_on_photo_count(tiny_model, data_dir):
    for model in (tiny_model.tflite, tiny_model.keras):
        result = runner.invoke(app, ["evaluate", str(model), "--data", str(data_dir / "val"), "--format", "json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["photos"] == 1000 and sum(map(sum, report["confusion"])) == 1000


def test_fit_on_a_missing_folder_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["fit", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.keras")])
    assert result.exit_code == 2 and "photo folder not found" in result.stderr
    assert not (tmp_path / "m.keras").exists()


def test_fit_interrupted_exits_130_with_the_resume_hint(monkeypatch, tmp_path):
    import catdog.trainer.train
    from catdog.trainer.train import TrainingInterrupted

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted("training interrupted after epoch 3; run the same command with --resume to continue")

    monkeypatch.setattr(catdog.trainer.train, "fit", interrupted)
    result = runner.invoke(app, ["fit", str(tmp_path), "--out", str(tmp_path / "m.keras")])
    assert result.exit_code == 130 and "--resume" in result.stderr


def test_export_and_evaluate_options_have_the_configs_defaults(monkeypatch, tmp_path):
    seen = []

    def record(config, **kwargs):
        seen.append(config)
        raise DataError("stop here")

    monkeypatch.setattr("catdog.trainer.export.export", record)
    monkeypatch.setattr("catdog.trainer.evaluate.evaluate", record)
    model = tmp_path / "m.keras"
    for argv in (["export", str(model)], ["export", str(model), "--quantize"],
                 ["export", str(model), "--quantize", "--mode", "int8"], ["evaluate", str(model), "--data", str(tmp_path)]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2 and "stop here" in result.stderr, (argv, result.output)
    int8 = ExportConfig(model_path=model, mode=ExportMode.int8)
    assert seen == [ExportConfig(model_path=model), int8, int8, EvaluateConfig(model_path=model, data_dir=tmp_path)]
    assert ExportConfig.mode is ExportMode.none  # float32 unless asked
    conflict = runner.invoke(app, ["export", str(model), "--quantize", "--mode", "none"])
    assert conflict.exit_code == 2 and "--quantize means --mode int8" in conflict.stderr and len(seen) == 4
