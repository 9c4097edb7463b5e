"""Trainer fixtures: a tiny model fitted and exported once per session through the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainer.cli import app

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
    export = runner.invoke(app, ["export", str(out), "--quantize", "--calibration-count", "16"])
    assert export.exit_code == 0, export.output
    return TinyModel(out, out.with_suffix(".tflite"), out.with_suffix(".json"), fit.output, export.output)
