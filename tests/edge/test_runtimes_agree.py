"""ai-edge-litert here and tflite-runtime 2.14 (numpy < 2, the legacy environment) give the same answers.

With the same kernels (litert --no-xnnpack) the two runtimes agree to the last bit. By default
litert runs int8 models through XNNPACK, which rounds differently (about 3x faster): labels then
agree except for photos right at the decision threshold, and scores differ by a few steps.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from catdog.edge import Classifier
from catdog.edge.runtime import find_runtime

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


@pytest.fixture(scope="module")
def photos(val_photos) -> list[Path]:
    return val_photos["cat"][:100] + val_photos["dog"][:100]


@pytest.fixture(scope="module")
def legacy_results(legacy_edge, bundled_model, photos) -> list[dict]:
    result = subprocess.run(
        [str(legacy_edge), "classify", *map(str, photos), "-m", str(bundled_model), "-f", "json",
         "--runtime", "tflite-runtime"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in photos]
    return records


def test_same_kernels_give_identical_answers(legacy_results, bundled_model, photos):
    litert = Classifier.load(bundled_model, runtime="litert", xnnpack=False)
    for photo, other in zip(photos, legacy_results):
        mine = litert.classify(photo)
        assert other["label"] == mine.label, photo
        assert abs(other["scores"]["dog"] - mine.scores["dog"]) < 1e-6, photo


def test_default_kernels_agree_within_rounding(legacy_results, bundled_model, photos):
    litert = Classifier.load(bundled_model, runtime="litert")
    mine = [litert.classify(p) for p in photos]
    diff = np.array([abs(o["scores"]["dog"] - m.scores["dog"]) for o, m in zip(legacy_results, mine)])
    assert diff.mean() <= 0.02 and diff.max() <= 0.15, (diff.mean(), diff.max())
    for o, m, d in zip(legacy_results, mine, diff):
        if o["label"] != m.label:  # only a photo whose score sits within the rounding of the threshold
            assert abs(m.scores["dog"] - litert.threshold) <= d, (o, m)
    assert np.mean([o["label"] == m.label for o, m in zip(legacy_results, mine)]) >= 0.98
