"""Where the benchmarks find the checkout and the photo data set (the one definition they all import)."""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout (models/ is read from here).
ROOT = Path(__file__).resolve().parents[1]
#: The photo data set, DATA/train/<label>/ and DATA/val/<label>/: $CATDOG_DATA as for the tests, else beside the checkout.
DATA = Path(os.environ.get("CATDOG_DATA", ROOT.parent / "shared" / "datasets" / "catdog"))
#: Photos with no cat and no dog: $CATDOG_NOTHING as for the tests, else beside the cat/dog set.
NOTHING = Path(os.environ.get("CATDOG_NOTHING", DATA.parent / "nothing" / "photos"))
