"""Trainer fixtures: a tiny model fitted and exported once per session through the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catdog.trainer.cli import app
from tests.photo_trees import copy_photos, three_class_tree  # noqa: F401 (fixtures' helpers, shared with tests/edge)

TINY_SIZE = 64
TINY_PER_CLASS = 16


@dataclass(frozen=True)
class TinyModel:
    """Paths of the tiny model's files."""

    keras: Path
    tflite: Path
    contract: Path
    fit_output: str
    export_output: str
    data_root: Path
    """The folder holding the train/ and val/ folders the contract records (by name: they are outside the
    working directory)."""


@pytest.fixture(scope="session")
def tiny_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """catdog-train fit (16 photos per class, 1 epoch, 64x64) then export --quantize, via the CLI."""
    out = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    runner = CliRunner()
    fit = runner.invoke(
        app,
        ["fit", str(data_dir / "train"), "--val", str(data_dir / "val"), "--out", str(out),
         "--epochs", "1", "--image-size", str(TINY_SIZE), "--limit-per-class", str(TINY_PER_CLASS)],
    )
    assert fit.exit_code == 0, fit.output
    export = runner.invoke(app, ["export", str(out), "--quantize", "--calibration-count", "16", "--data-root", str(data_dir)])
    assert export.exit_code == 0, export.output
    return TinyModel(out, out.with_suffix(".tflite"), out.with_suffix(".json"), fit.output, export.output, data_dir)
