"""The recipe: every FitConfig field is a fit option with the config's default, the recorded command
trains the same config, and the record rebuilds the data checks fit ran."""

from __future__ import annotations

import json
import shlex
from dataclasses import fields
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from catdog.edge.contract import ModelContract
from catdog.trainer.cli import app
from catdog.trainer.config import Arch, CheckConfig, FitConfig, Keep
from catdog.trainer.errors import DataError
from catdog.trainer.recipe import (
    NOT_RECORDED, command_line, config_record, option_name, parse_size, recorded_check, size_text,
)
from tests.conftest import ROOT

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
    {"epochs": 9, "small_fraction": 0.5, "small_size": 48, "source_size": 160, "crop": 0.9, "arch": Arch.seed},
    {"val_dir": None, "val_split": 0.3, "strict": True, "imbalance_ratio": 1.5, "min_side": 40, "min_per_class": 3},
    {"image_hw": (96, 128), "weight_decay": 1e-4, "label_smoothing": 0.1, "patience": 3, "batch_size": 16},
])
def test_recorded_command_trains_the_same_config(monkeypatch, tmp_path, extra):
    settings = {"val_dir": tmp_path / "val", **extra}
    config = FitConfig(data_dir=tmp_path / "train", out=tmp_path / "m.keras", seed=5, **settings)
    argv = shlex.split(command_line(config))
    assert argv[:2] == ["catdog-train", "fit"]
    assert _configs_from_cli(monkeypatch, argv[1:]) == [config]
    # resume and overwrite say what to do with files, not what to train: the recipe leaves them out
    again = FitConfig(**{**config.__dict__, "resume": True, "overwrite": True})
    assert command_line(again) == command_line(config) and config_record(again) == config_record(config)


def test_the_record_is_flat_and_rebuilds_the_data_checks(tmp_path):
    config = FitConfig(data_dir=tmp_path / "train", val_dir=None, val_split=0.3, limit_per_class=20, min_side=40,
                       imbalance_ratio=2.0, strict=True, seed=9, epochs=3)
    record = json.loads(json.dumps(config_record(config)))  # as the contract stores it
    assert set(record) == {f.name for f in fields(FitConfig)} - set(NOT_RECORDED)
    assert record["image_hw"] == [96, 96] and record["keep"] == "best" and record["epochs"] == 3
    contract = ModelContract(labels=("cat", "dog"), input_hw=(96, 96), training={"config": record})
    assert recorded_check(contract) == CheckConfig(
        data_dir=tmp_path / "train", val_split=0.3, limit_per_class=20, min_side=40, imbalance_ratio=2.0, strict=True,
        seed=9,
    )


def test_the_bundled_models_record_rebuilds_its_data_checks():
    """The shipped contract was written before imbalance_ratio was recorded: its default applies."""
    contract = ModelContract.load(ROOT / "models" / "catdog.json")
    check = recorded_check(contract)
    assert check.data_dir == Path(contract.training["config"]["data_dir"]) and check.val_dir is not None
    assert check.seed == contract.training["config"]["seed"] and check.imbalance_ratio == CheckConfig.imbalance_ratio


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
