"""Where the benchmarks find the checkout and the photo data set (the one definition they all import)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

#: The checkout (models/ is read from here).
ROOT = Path(__file__).resolve().parents[1]
#: The photo data set, DATA/train/<label>/ and DATA/val/<label>/: $CATDOG_DATA as for the tests, else beside the checkout.
DATA = Path(os.environ.get("CATDOG_DATA", ROOT.parent / "shared" / "datasets" / "catdog"))
#: Photos with no cat and no dog: $CATDOG_NOTHING as for the tests, else beside the cat/dog set.
NOTHING = Path(os.environ.get("CATDOG_NOTHING", DATA.parent / "nothing" / "photos"))


def scene_kind(path: Path) -> str:
    """The kind of scene of a nothing/ photo, from its name SOURCE-KIND_ORIGINALNAME.jpg (its README)."""
    return path.name.split("_", 1)[0].split("-", 1)[1]


def data_and_nothing(description: str) -> argparse.Namespace:
    """The command line of a benchmark that reads the cat/dog set (--data DATA) and the empty scenes (--nothing DIR)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=DATA, help="DATA/train/<label>/ and DATA/val/<label>/")
    parser.add_argument("--nothing", type=Path, default=NOTHING, help="photos with no cat and no dog")
    return parser.parse_args()
