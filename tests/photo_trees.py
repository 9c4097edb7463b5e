"""Class-per-folder photo trees built from the real data set, for the trainer's and the edge's learning tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image


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
