"""MediaPipe Tasks, Google's reader of the standard TFLite metadata, run on catdog's models (make test-mediapipe).

MediaPipe lives in its own environment ($CATDOG_MEDIAPIPE, made by make test-mediapipe: its opencv-contrib
wheel clashes with the main environment's opencv-python-headless), so its ImageClassifier is run there
by driver.py, and its answers are compared here with catdog-edge's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

DRIVER = Path(__file__).with_name("driver.py")
#: Written by the Makefile into the environment when PyPI has no mediapipe wheel for this platform.
NO_WHEEL = "NO_WHEEL"


@dataclass(frozen=True)
class MediaPipe:
    """MediaPipe's ImageClassifier in its own environment."""

    python: Path

    def classify(self, model: Path, tmp: Path, photos: Sequence[Path] = (), pixels: np.ndarray | None = None,
                 crop: float = 1.0) -> dict:
        """MediaPipe's answers, {"head_name", "results": per image, [{"index", "score", "name"}] in index order}:
        for photo files (decoded by MediaPipe) or for prepared pixels (uint8 (N, H, W, 3)); a centre crop
        below 1 is passed as the region of interest."""
        if pixels is not None:
            np.save(tmp / "pixels.npy", pixels)
            args = ["--pixels", str(tmp / "pixels.npy")]
        else:
            (tmp / "photos.txt").write_text("".join(f"{p}\n" for p in photos), encoding="utf-8")
            args = ["--photos", str(tmp / "photos.txt")]
        if crop < 1.0:
            margin = (1.0 - crop) / 2.0
            args += ["--roi", *(str(v) for v in (margin, margin, 1.0 - margin, 1.0 - margin))]
        done = subprocess.run([str(self.python), str(DRIVER), str(model), *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def mediapipe() -> MediaPipe:
    """$CATDOG_MEDIAPIPE's MediaPipe: skipped when unset (a failure under CI=true), and wherever PyPI has no wheel."""
    root = os.environ.get("CATDOG_MEDIAPIPE")
    if not root:
        reason = "CATDOG_MEDIAPIPE is not set (make test-mediapipe makes the environment and sets it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run make test-mediapipe")
        pytest.skip(reason)
    marker = Path(root) / NO_WHEEL
    if marker.is_file():
        pytest.skip(marker.read_text(encoding="utf-8").strip())
    python = Path(root) / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    assert python.is_file(), f"{python} is missing: run make test-mediapipe"
    return MediaPipe(python)
