"""The recipe: every FitConfig field is a fit option with the config's default, the recorded command
trains the same config with only the options that applied, the record rebuilds the data checks fit
ran, and no contract holds an absolute path."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import fields, replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from catdog.edge.contract import ModelContract
from catdog.edge.metadata import read_embedded_contract
from catdog.trainer.cli import app
from catdog.trainer.config import Arch, CheckConfig, FitConfig, Keep
from catdog.trainer.data import PhotoSet
from catdog.trainer.errors import DataError
from catdog.trainer.recipe import (
    NETWORK_TRAINING, NOT_RECORDED, command_line, config_record, option_name, parse_size, photo_set_hash,
    portable_contract, portable_path, recorded_check, size_text,
)
from tests.conftest import ROOT
from tests.trainer.conftest import copy_photos

runner = CliRunner()


def _configs_from_cli(monkeypatch, argv: list[str]) -> list[FitConfig]:
    """The FitConfigs catdog-train fit builds from argv (fit itself replaced by a recorder)."""
    seen = []

    def fake_fit(received, **kwargs):
        seen.append(received)
        raise DataError("stop here")

    monkeypatch.setattr("catdog.trainer.train.fit", fake_fit)
    result = runner.invoke(app, argv)
    assert result.exit_code == 2 and "stop here" in result.stderr, result.output
    return seen


def test_every_fit_setting_is_an_option_with_the_configs_default(monkeypatch, tmp_path):
    options = {name for param in typer.main.get_command(app).commands["fit"].params for name in param.opts}
    missing = [f.name for f in fields(FitConfig) if f.name != "data_dir" and option_name(f.name) not in options]
    assert not missing, f"FitConfig fields without a catdog-train fit option: {missing}"
    assert _configs_from_cli(monkeypatch, ["fit", str(tmp_path)]) == [FitConfig(data_dir=tmp_path)]


def test_check_options_have_the_configs_defaults(monkeypatch, tmp_path):
    seen = []

    def fake_check(received, progress=None):
        seen.append(received)
        raise DataError("stop here")

    monkeypatch.setattr("catdog.trainer.scan.check_data", fake_check)
    result = runner.invoke(app, ["check", str(tmp_path)])
    assert result.exit_code == 2 and seen == [CheckConfig(data_dir=tmp_path)]


@pytest.mark.parametrize("extra", [
    {},
    {"keep": Keep.last, "epochs": 7, "grayscale": True, "augment": False, "limit_per_class": 9, "learning_rate": 0.001},
    {"epochs": 9, "small_fraction": 0.5, "small_size": 48, "source_size": 160, "crop": 0.9},
    {"epochs": 9, "source_size": 160, "crop": 0.9, "arch": Arch.seed},
    {"val_dir": None, "val_split": 0.3, "strict": True, "imbalance_ratio": 1.5, "min_side": 40, "min_per_class": 3},
    {"image_hw": (96, 128), "weight_decay": 1e-4, "label_smoothing": 0.1, "patience": 3, "batch_size": 16},
    {"arch": Arch.efficientnet_lite0, "image_hw": (160, 160), "crop": 0.9, "limit_per_class": 50},
])
def test_recorded_command_trains_the_same_config(monkeypatch, tmp_path, extra):
    monkeypatch.chdir(tmp_path)  # the photos are inside the working directory: recorded as relative paths
    settings = {"val_dir": Path("photos/val"), **extra}
    config = FitConfig(data_dir=Path("photos/train"), out=Path("m.keras"), seed=5, **settings)
    argv = shlex.split(command_line(config))
    assert argv[:2] == ["catdog-train", "fit"]
    assert _configs_from_cli(monkeypatch, argv[1:]) == [config]
    # resume and overwrite say what to do with files, not what to train: the recipe leaves them out
    again = FitConfig(**{**config.__dict__, "resume": not config.arch.pretrained, "overwrite": True})
    assert command_line(again) == command_line(config) and config_record(again) == config_record(config)


def test_a_pretrained_fits_command_holds_only_the_options_that_applied(monkeypatch, tmp_path):
    """Epochs, batches, augmentation and the rest train a network; a pretrained fit trains none."""
    monkeypatch.chdir(tmp_path)
    config = FitConfig(data_dir=Path("train"), val_dir=Path("val"), arch=Arch.efficientnet_lite0, epochs=5,
                       batch_size=8, small_fraction=0.5, keep=Keep.last, augment=False, weight_decay=1e-4)
    command, record = command_line(config), config_record(config)
    for name in NETWORK_TRAINING:
        assert option_name(name) not in command and "--no-" + option_name(name)[2:] not in command, (name, command)
        assert name not in record, name
    assert "--val-split" not in command and "val_split" not in record  # --val given: no split
    assert "--weights imagenet" in command and "--image-size 224" in command and "--seed 1337" in command
    # The command trains the same model: the options it leaves out had no effect on it.
    applied = FitConfig(data_dir=Path("train"), val_dir=Path("val"), arch=Arch.efficientnet_lite0)
    assert _configs_from_cli(monkeypatch, shlex.split(command)[1:]) == [applied]
    assert command_line(applied) == command and config_record(applied) == record
    # A compact fit starts from no weights, and without augmentation decodes no larger source photos.
    compact = command_line(FitConfig(data_dir=Path("train"), augment=False, keep=Keep.last))
    assert "--weights" not in compact and "--source-size" not in compact and "--patience" not in compact
    assert "--epochs 63" in compact and "--small-fraction 0.7" in compact and "--val-split 0.2" in compact


def test_the_record_is_flat_and_rebuilds_the_data_checks(tmp_path):
    config = FitConfig(data_dir=tmp_path / "train", val_dir=None, val_split=0.3, limit_per_class=20, min_side=40,
                       imbalance_ratio=2.0, strict=True, seed=9, epochs=3)
    record = json.loads(json.dumps(config_record(config)))  # as the contract stores it
    # a compact fit starts from no weights and has no presence score
    assert set(record) == {f.name for f in fields(FitConfig)} - set(NOT_RECORDED) - {"weights", "presence", "none_dir"}
    assert record["image_hw"] == [96, 96] and record["keep"] == "best" and record["epochs"] == 3
    assert record["data_dir"] == "train"  # outside the working directory: its name only
    contract = ModelContract(labels=("cat", "dog"), input_hw=(96, 96), training={"config": record})
    check = CheckConfig(
        data_dir=Path("train"), val_split=0.3, limit_per_class=20, min_side=40, imbalance_ratio=2.0, strict=True, seed=9,
    )
    assert recorded_check(contract) == check
    assert recorded_check(contract, data_root=tmp_path) == replace(check, data_dir=tmp_path / "train")


def test_paths_are_recorded_relative_to_the_working_directory_or_by_name(monkeypatch, tmp_path):
    (tmp_path / "work" / "photos").mkdir(parents=True)
    (tmp_path / "work" / "linked").symlink_to(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path / "work")
    assert portable_path("photos/train") == "photos/train" == portable_path(tmp_path / "work" / "photos" / "train")
    assert portable_path("./photos/../photos/val") == "photos/val"
    assert portable_path("linked/train") == "linked/train"  # a link inside stays inside: nothing is resolved
    assert portable_path(tmp_path / "other" / "train") == "train" == portable_path("../other/train")
    assert portable_path(Path.home() / "photos" / "val") == "val"
    assert portable_path(tmp_path / "train", cwd=tmp_path) == "train"


def test_a_photo_sets_hash_is_its_content_wherever_it_is():
    cat, dog = "a" * 64, "b" * 64
    photos = PhotoSet((Path("/x/cat/1.jpg"), Path("/x/dog/2.jpg")), (0, 1), ("cat", "dog"), (cat, dog))
    moved = PhotoSet((Path("dog/9.jpg"), Path("cat/8.jpg")), (1, 0), ("cat", "dog"), (dog, cat))
    relabelled = PhotoSet(photos.paths, (1, 0), ("cat", "dog"), (cat, dog))
    assert photo_set_hash(photos) == photo_set_hash(moved) and len(photo_set_hash(photos)) == 64
    assert photo_set_hash(relabelled) != photo_set_hash(photos)
    assert photo_set_hash(PhotoSet(photos.paths, photos.labels, photos.class_names)) is None


@pytest.mark.parametrize("name", ["catdog.json", "catdog-compact.json"])
def test_the_bundled_models_record_rebuilds_its_data_checks(name):
    contract = ModelContract.load(ROOT / "models" / name)
    check = recorded_check(contract, data_root=Path("DATA"))
    assert (check.data_dir, check.val_dir) == (Path("DATA/train"), Path("DATA/val"))
    assert check.seed == contract.training["config"]["seed"] and check.imbalance_ratio == CheckConfig.imbalance_ratio
    assert contract.training["train_set_sha256"] and contract.training["val_set_sha256"]


def _absolute_paths(text: str) -> list[str]:
    """Every word of every string in a JSON document that is an absolute or home-relative path."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(key), walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.extend(w for w in value.split() if os.path.isabs(w.strip("'\"")) or w.startswith("~"))

    walk(json.loads(text))
    return found


@pytest.mark.parametrize("name", ["catdog.json", "catdog-compact.json"])
def test_no_bundled_contract_records_an_absolute_path(name):
    json_text = (ROOT / "models" / name).read_text()
    embedded = json.dumps(read_embedded_contract((ROOT / "models" / name).with_suffix(".tflite")))
    for text in (json_text, embedded):
        assert not _absolute_paths(text) and str(Path.home()) not in text
    assert json.loads(json_text) == json.loads(embedded)
    contract = ModelContract.load(ROOT / "models" / name)
    assert portable_contract(contract) == contract  # already as fit writes them now


def test_an_old_contract_is_made_portable_keeping_its_measurements(tmp_path):
    old = FitConfig(data_dir=tmp_path / "train", val_dir=tmp_path / "val", out=tmp_path / "m.keras",
                    arch=Arch.efficientnet_lite0)
    record = {**config_record(old), "data_dir": str(tmp_path / "train"), "val_dir": str(tmp_path / "val"),
              "epochs": 63, "keep": "best", "out": str(tmp_path / "m.keras")}
    contract = ModelContract(
        labels=("cat", "dog"), input_hw=(224, 224),
        training={"train_dir": str(tmp_path / "train"), "val_dir": str(tmp_path / "val"), "params": 7,
                  "command": f"catdog-train fit {tmp_path}/train --epochs 63", "config": record},
        metrics={"parity_data": str(tmp_path / "val"), "tflite_val_accuracy": 0.9},
    )
    portable = portable_contract(contract)
    assert not _absolute_paths(json.dumps(portable.to_dict())) and str(tmp_path) not in json.dumps(portable.to_dict())
    assert portable.training["command"] == command_line(old) and "--epochs" not in portable.training["command"]
    assert (portable.training["train_dir"], portable.training["val_dir"], portable.training["params"]) == ("train", "val", 7)
    assert portable.metrics == {"parity_data": "val", "tflite_val_accuracy": 0.9}
    assert portable_contract(portable) == portable


def test_fit_never_records_an_absolute_path_and_export_finds_the_photos_by_data_root(data_dir, tmp_path):
    """Photos and model outside the working directory: the contract names them only by their folders'
    names and content; export says in one line how to point at them, and checks they are the same photos."""
    train = copy_photos(data_dir, tmp_path / "photos" / "train", 10)
    val = copy_photos(data_dir, tmp_path / "photos" / "val", 4, split="val")
    model = tmp_path / "runs" / "m.keras"
    fit = runner.invoke(app, ["fit", str(train), "--val", str(val), "--out", str(model), "--epochs", "1",
                              "--image-size", "32", "--batch-size", "20", "--cache", str(tmp_path / "cache")])
    assert fit.exit_code == 0, fit.output
    text = model.with_suffix(".json").read_text()
    assert not _absolute_paths(text), _absolute_paths(text)
    assert str(tmp_path) not in text and str(Path.home()) not in text
    training = json.loads(text)["training"]
    assert (training["train_dir"], training["val_dir"], training["config"]["out"]) == ("train", "val", "m.keras")
    assert training["command"].startswith("catdog-train fit train --val val ")
    assert len(training["train_set_sha256"]) == len(training["val_set_sha256"]) == 64

    lost = runner.invoke(app, ["export", str(model), "--quantize"])
    assert lost.exit_code == 2 and len(lost.stderr.splitlines()) == 1, lost.output
    assert "--data-root" in lost.stderr and "--calibration and --parity-data" in lost.stderr

    other = tmp_path / "other"
    copy_photos(data_dir, other / "train", 10, skip=10), copy_photos(data_dir, other / "val", 4, split="val")
    wrong = runner.invoke(app, ["export", str(model), "--quantize", "--data-root", str(other)])
    assert wrong.exit_code == 2 and "not the ones fit used" in wrong.stderr, wrong.output

    export = runner.invoke(app, ["export", str(model), "--quantize", "--data-root", str(tmp_path / "photos")])
    assert export.exit_code == 0, export.output
    for text in (model.with_suffix(".json").read_text(), json.dumps(read_embedded_contract(model.with_suffix(".tflite")))):
        assert not _absolute_paths(text) and str(tmp_path) not in text and str(Path.home()) not in text
    assert json.loads(text)["metrics"]["val_photos"] == 8


def test_a_contract_without_a_record_says_to_pass_the_photos():
    with pytest.raises(DataError, match="records no training data; pass the photo folders"):
        recorded_check(ModelContract(labels=("cat", "dog"), input_hw=(96, 96)))


@pytest.mark.parametrize("text, hw", [("96", (96, 96)), ("96x128", (96, 128)), ("64X48", (64, 48))])
def test_image_size_is_a_side_or_height_x_width(text, hw):
    assert parse_size(text) == hw and parse_size(size_text(hw)) == hw


@pytest.mark.parametrize("text", ["", "x96", "96x", "9.5", "96x96x3", "big"])
def test_a_bad_image_size_says_what_is_expected(text):
    with pytest.raises(DataError, match="--image-size must be"):
        parse_size(text)
