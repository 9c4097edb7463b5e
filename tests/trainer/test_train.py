"""fit: three classes end to end, grayscale, Ctrl-C and --resume, --overwrite, history CSV and curves."""

from __future__ import annotations

import csv
import json

import click.testing
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from catdog.edge.classify import Classifier
from catdog.edge.cli import app as edge_app  # a click group: click's CliRunner runs it
from catdog.edge.contract import ModelContract
from catdog.edge.metadata import read_embedded_contract
from catdog.trainer.cli import app
from catdog.trainer.config import FitConfig, Keep
from catdog.trainer.errors import RunStateError
from catdog.trainer.run_state import checkpoint_dir_for
from catdog.trainer.train import TrainingInterrupted, fit
from tests.trainer.conftest import TINY_SIZE, copy_photos, three_class_tree

runner = CliRunner()
# One batch per epoch (no second trace for a partial batch): the time goes to tracing, not training.
TINY = ["--epochs", "1", "--image-size", str(TINY_SIZE), "--batch-size", "30"]


def test_three_classes_fit_export_parity_evaluate_and_classify(data_dir, tmp_path):
    train = three_class_tree(data_dir, tmp_path / "train", 10, "train")
    val = three_class_tree(data_dir, tmp_path / "val", 4, "val")
    model = tmp_path / "three.keras"
    result = runner.invoke(app, ["fit", str(train), "--val", str(val), "--out", str(model), *TINY])
    assert result.exit_code == 0, result.output
    assert "mono" in result.stderr  # the data table
    export = runner.invoke(app, ["export", str(model), "--quantize", "--calibration-count", "15", "--data-root", str(tmp_path)])
    assert export.exit_code == 0, export.output
    assert "parity on 12 validation photos" in export.stdout
    tflite = model.with_suffix(".tflite")
    contract = ModelContract.load(tflite.with_suffix(".json"))
    assert contract.labels == ("cat", "dog", "mono") and contract.activation == "softmax"
    assert contract.metrics["calibration_per_label"] == {"cat": 5, "dog": 5, "mono": 5}
    assert read_embedded_contract(tflite)["labels"] == ["cat", "dog", "mono"]
    evaluation = runner.invoke(app, ["evaluate", str(tflite), "--data", str(val), "--format", "json"])
    assert evaluation.exit_code == 0, evaluation.output
    report = json.loads(evaluation.stdout)
    assert report["photos"] == 12 and len(report["confusion"]) == 3 and set(report["per_class"]) == {"cat", "dog", "mono"}
    photos = [str(p) for p in sorted(val.glob("*/*.jpg"))[:4]]
    classified = click.testing.CliRunner().invoke(edge_app, ["classify", *photos, "--model", str(tflite), "--format", "json"])
    assert classified.exit_code == 0, classified.output
    lines = [json.loads(line) for line in classified.stdout.splitlines()]
    assert len(lines) == 4
    for line in lines:
        assert set(line["scores"]) == {"cat", "dog", "mono"}
        assert line["label"] == max(line["scores"], key=line["scores"].get)  # a softmax model's answer: the top score
        assert abs(sum(line["scores"].values()) - 1.0) < 0.02


def test_grayscale_trains_a_one_channel_model_the_edge_feeds_in_grayscale(data_dir, tmp_path):
    train = copy_photos(data_dir, tmp_path / "train", 10)
    val = copy_photos(data_dir, tmp_path / "val", 4, split="val")
    model = tmp_path / "gray.keras"
    model.write_bytes(b"an older model")
    result = runner.invoke(app, ["fit", str(train), "--val", str(val), "--out", str(model), "--grayscale", *TINY])
    assert result.exit_code == 2 and f"{model} already exists" in result.stderr
    assert model.read_bytes() == b"an older model"
    result = runner.invoke(app, ["fit", str(train), "--val", str(val), "--out", str(model), "--grayscale", "--overwrite", *TINY])
    assert result.exit_code == 0, result.output
    contract = ModelContract.load(model.with_suffix(".json"))
    assert contract.color == "L" and contract.input_shape == (TINY_SIZE, TINY_SIZE, 1)
    assert contract.training["grayscale"] is True
    export = runner.invoke(app, ["export", str(model), "--mode", "dynamic", "--data-root", str(tmp_path)])
    assert export.exit_code == 0, export.output
    classifier = Classifier.load(model.with_suffix(".tflite"))
    assert tuple(classifier.interpreter.get_input_details()[0]["shape"]) == (1, TINY_SIZE, TINY_SIZE, 1)
    photo = sorted((val / "cat").glob("*.jpg"))[0]
    assert classifier.preprocess(photo).shape == (TINY_SIZE, TINY_SIZE, 1)
    # A colour photo and its grayscale copy are the same input to a grayscale model.
    gray = tmp_path / "gray.png"
    with Image.open(photo) as img:
        img.convert("L").save(gray)
    assert np.allclose(classifier.classify(photo).scores["dog"], classifier.classify(gray).scores["dog"], atol=0.02)


class _StopAfterFirstEpoch:
    """A Keras callback that presses Ctrl-C at the end of the first epoch."""

    def __new__(cls):
        import keras

        class Stop(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                raise KeyboardInterrupt

        return Stop()


def test_ctrl_c_saves_the_best_model_and_resume_continues(data_dir, tmp_path):
    train = copy_photos(data_dir, tmp_path / "train", 10)
    val = copy_photos(data_dir, tmp_path / "val", 4, split="val")
    out = tmp_path / "run" / "m.keras"
    config = FitConfig(data_dir=train, val_dir=val, out=out, image_hw=(TINY_SIZE, TINY_SIZE), epochs=2, batch_size=20)
    with pytest.raises(TrainingInterrupted, match="after epoch 1.*--resume"):
        fit(config, verbose=0, callbacks=[_StopAfterFirstEpoch()])
    assert out.is_file() and ModelContract.load(out.with_suffix(".json")).training["epochs_run"] == 1
    state = json.loads((checkpoint_dir_for(out) / "state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]["val_accuracy"]) == 1

    with pytest.raises(RunStateError, match=f"{out} already exists.*--overwrite.*--resume to continue the interrupted run"):
        fit(config, verbose=0)  # a fresh start would replace the interrupted run's model
    changed = FitConfig(**{**config.__dict__, "seed": 7, "resume": True})
    with pytest.raises(RunStateError, match="other settings.*seed"):
        fit(changed, verbose=0)

    result = fit(FitConfig(**{**config.__dict__, "resume": True}), verbose=0)  # no --overwrite needed
    assert result.resumed_from == 1 and result.epochs_run == 2
    assert not checkpoint_dir_for(out).exists()
    history = json.loads(result.history_path.read_text())
    assert len(history["val_accuracy"]) == 2 and len(history["learning_rate"]) == 2
    assert history["learning_rate"][1] < history["learning_rate"][0]  # the cosine schedule went on, not restarted
    rows = list(csv.DictReader(out.with_suffix(".history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"] and {"loss", "val_accuracy"} <= set(rows[0])
    assert result.curves_path == out.with_suffix(".curves.png")
    with Image.open(result.curves_path) as img:
        assert img.format == "PNG" and img.width > 400


class _FinalWeights:
    """A Keras callback (built lazily: keras is imported by fit) that keeps the weights after the last epoch."""

    def __new__(cls):
        import keras

        class Final(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.weights: list = []

            def on_train_end(self, logs=None):
                self.weights = [w.copy() for w in self.model.get_weights()]

        return Final()


def test_keep_last_runs_every_epoch_and_saves_the_final_weights(data_dir, tmp_path):
    import keras

    train = copy_photos(data_dir, tmp_path / "train", 10)
    val = copy_photos(data_dir, tmp_path / "val", 4, split="val")
    out = tmp_path / "run" / "m.keras"
    final = _FinalWeights()
    config = FitConfig(data_dir=train, val_dir=val, out=out, image_hw=(TINY_SIZE, TINY_SIZE), epochs=3,
                       batch_size=20, patience=1, keep=Keep.last)
    result = fit(config, verbose=0, callbacks=[final])
    assert result.epochs_run == 3 and result.saved_epoch == 3  # patience 1 did not stop it
    history = json.loads(result.history_path.read_text())
    assert result.val_accuracy == history["val_accuracy"][-1]
    contract = ModelContract.load(out.with_suffix(".json"))
    assert contract.training["saved_epoch"] == 3 and contract.training["config"]["keep"] == "last"
    assert contract.crop == 0.83  # the default: the mean side of the training crops
    assert contract.metrics["keras_val_accuracy"] == round(history["val_accuracy"][-1], 4)
    saved = keras.models.load_model(out, compile=False).get_weights()
    assert len(saved) == len(final.weights) and all(np.array_equal(a, b) for a, b in zip(saved, final.weights))


def test_small_epochs_train_smaller_from_sharper_sources_then_save_the_contract_size(data_dir, tmp_path, monkeypatch):
    import keras

    import catdog.trainer.train as train_module

    sizes, sources = [], set()
    original = train_module.training_batches

    def spy(photos, n_classes, batch_size, seed, out_hw, augment, shard):
        sizes.append(tuple(out_hw))
        sources.add(photos.shape[1:3])
        return original(photos, n_classes, batch_size, seed, out_hw, augment, shard)

    monkeypatch.setattr(train_module, "training_batches", spy)
    train = copy_photos(data_dir, tmp_path / "train", 10)
    val = copy_photos(data_dir, tmp_path / "val", 4, split="val")
    out = tmp_path / "m.keras"
    final = _FinalWeights()
    config = FitConfig(data_dir=train, val_dir=val, out=out, image_hw=(TINY_SIZE, TINY_SIZE), epochs=3,
                       small_fraction=0.67, small_size=32, source_size=80, batch_size=20, keep=Keep.last)
    result = fit(config, verbose=0, callbacks=[final])
    assert sizes == [(32, 32), (TINY_SIZE, TINY_SIZE)] and result.epochs_run == 3
    assert sources == {(80, 80)}  # crops are resampled from photos decoded at --source-size
    saved = keras.models.load_model(out, compile=False)
    assert tuple(saved.input_shape) == (None, TINY_SIZE, TINY_SIZE, 3)  # what export and the edge expect
    assert all(np.array_equal(a, b) for a, b in zip(saved.get_weights(), final.weights))
    contract = ModelContract.load(out.with_suffix(".json"))
    assert "--small-fraction 0.67 --small-size 32 --source-size 80" in contract.training["command"]
    assert contract.training["multiply_adds"] > 0
