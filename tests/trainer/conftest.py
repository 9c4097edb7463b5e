"""Trainer fixtures: a tiny model fitted and exported once per session through the CLI."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from catdog.trainer.cli import app

TINY_SIZE = 64
TINY_PER_CLASS = 16


def copy_photos(data_dir: Path, dst: Path, per_class: int, split: str = "train", skip: int = 0) -> Path:
    """Copy per_class real photos of each class (after the first skip) into dst/<label>/; returns dst."""
    for label in ("cat", "dog"):
        (dst / label).mkdir(parents=True, exist_ok=True)
        for path in sorted((data_dir / split / label).glob("*.jpg"))[skip : skip + per_class]:
            shutil.copy(path, dst / label / path.name)
    return dst


def three_class_tree(data_dir: Path, dst: Path, per_class: int, split: str) -> Path:
    """cat/ and dog/ copied from the data set, plus mono/: other cat and dog photos turned grayscale.

    The rule is simple and visible: a photo without colour is "mono", whatever animal it shows.
    """
    copy_photos(data_dir, dst, per_class, split)
    (dst / "mono").mkdir()
    for label in ("cat", "dog"):
        sources = sorted((data_dir / split / label).glob("*.jpg"))[per_class : per_class + (per_class + 1) // 2]
        for path in sources:
            with Image.open(path) as img:
                img.convert("L").convert("RGB").save(dst / "mono" / f"mono-{path.name}", quality=90)
    return dst


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
