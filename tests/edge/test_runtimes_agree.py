"""ai-edge-litert here and tflite-runtime 2.14 (numpy < 2, the legacy environment) give the same answers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from edge import Classifier
from edge.runtime import find_runtime

LEGACY_EDGE = os.environ.get("CATDOG_LEGACY_EDGE")


@pytest.fixture(scope="module")
def legacy_edge() -> Path:
    """catdog-edge of the legacy environment (make test builds it and passes CATDOG_LEGACY_EDGE)."""
    try:
        find_runtime("litert")
    except Exception as exc:  # this environment is itself the legacy one: nothing to compare with here
        pytest.skip(f"ai-edge-litert not installed in this environment: {exc}")
    if not LEGACY_EDGE or not Path(LEGACY_EDGE).is_file():
        reason = "no legacy tflite-runtime environment (run through make test, which builds .venv-legacy)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return Path(LEGACY_EDGE)


def test_litert_and_tflite_runtime_agree_on_real_photos(legacy_edge, bundled_model, val_photos):
    photos = val_photos["cat"][:50] + val_photos["dog"][:50]
    result = subprocess.run(
        [str(legacy_edge), "classify", *map(str, photos), "-m", str(bundled_model), "-f", "json",
         "--runtime", "tflite-runtime"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    legacy = [json.loads(line) for line in result.stdout.splitlines()]
    litert = Classifier.load(bundled_model, runtime="litert")
    assert len(legacy) == len(photos)
    for photo, other in zip(photos, legacy):
        mine = litert.classify(photo)
        assert other["path"] == str(photo)
        assert other["label"] == mine.label, photo
        assert abs(other["scores"]["dog"] - mine.scores["dog"]) <= 1 / 256 + 1e-6, photo
