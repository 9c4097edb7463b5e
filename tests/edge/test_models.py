"""Bundled models and --model: a path, a bundled model's name, or the default."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import catdog.edge.models as models
from catdog.edge import Classifier, ModelError
from catdog.edge.models import DEFAULT_NAME, bundled_models, resolve_model


@pytest.fixture
def shipped(tmp_path, monkeypatch, bundled_model) -> Path:
    """A bundled folder holding the default model and a second one named "small"."""
    for name in ("catdog", "catdog-small"):
        shutil.copy(bundled_model, tmp_path / f"{name}.tflite")
        shutil.copy(bundled_model.with_suffix(".json"), tmp_path / f"{name}.json")
    monkeypatch.setattr(models, "bundled_dir", lambda: tmp_path)
    monkeypatch.delenv("CATDOG_MODEL", raising=False)
    return tmp_path


def test_names_paths_and_the_default(shipped, tmp_path, monkeypatch):
    assert bundled_models() == {DEFAULT_NAME: shipped / "catdog.tflite", "small": shipped / "catdog-small.tflite"}
    assert resolve_model(None) == resolve_model("default") == shipped / "catdog.tflite"
    assert resolve_model("small") == shipped / "catdog-small.tflite"
    assert resolve_model("runs/small.tflite") == Path("runs/small.tflite")  # a path stays a path
    monkeypatch.setenv("CATDOG_MODEL", str(tmp_path / "mine.tflite"))
    assert resolve_model(None) == tmp_path / "mine.tflite"


def test_a_name_loads_that_model_and_an_unknown_one_lists_the_names(shipped):
    assert Classifier.load("small").model_path == shipped / "catdog-small.tflite"
    with pytest.raises(ModelError, match=r"tiny: model not found; .* bundled model's name \(default, small\)"):
        Classifier.load("tiny")


def test_the_real_bundled_folder_has_the_repository_models(bundled_model):
    # installed, they are copies in catdog/edge/bundled/; in the checkout, models/ itself
    found = bundled_models()
    assert found[DEFAULT_NAME].read_bytes() == bundled_model.read_bytes()
    for name, path in found.items():
        assert path.with_suffix(".json").is_file(), f"bundled model {name} has no contract beside it"


def test_the_cli_picks_a_bundled_model_by_name(val_photos):
    import json

    from click.testing import CliRunner

    from catdog.edge.cli import app

    photo = val_photos["cat"][5]
    result = CliRunner().invoke(app, ["classify", str(photo), "-m", "compact", "-f", "json"])
    assert result.exit_code == 0, result.output
    compact = Classifier.load("compact")
    assert json.loads(result.stdout)["scores"]["dog"] == round(compact.classify(photo).scores["dog"], 6)
    info = CliRunner().invoke(app, ["info", "-m", "compact", "-f", "json"])
    assert json.loads(info.stdout)["model"].endswith("catdog-compact.tflite")
    assert json.loads(info.stdout)["contract"]["input_hw"] == list(compact.contract.input_hw)
