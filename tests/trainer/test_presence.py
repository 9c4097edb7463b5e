"""trainer.presence: the parts of a presence score, their thresholds from training photos only, and the model
output that computes them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from catdog.trainer.errors import DataError
from catdog.trainer.presence import (
    PERCENTILE,
    calibrate_with_none,
    combine,
    familiarity_part,
    imagenet_part,
    imagenet_rows,
    scores_of,
)
from tests.edge.test_familiarity import _clusters  # feature clusters, the same as for edge.familiarity's tests


def test_familiarity_threshold_comes_from_out_of_fold_scores():
    rng = np.random.default_rng(1)
    x, labels = _clusters(rng, 6, 40, spread=0.3)
    part = familiarity_part(x, labels % 2, seed=0)
    assert part.threshold == pytest.approx(np.percentile(part.train_raw, PERCENTILE))
    # photos score higher against centroids fitted on them: an in-sample threshold would be too strict
    assert np.mean(part.raw(x)) > np.mean(part.train_raw)
    fit = combine((part,), {"photos": len(x)})
    assert fit.presence.threshold == 0.0 and fit.presence.method == "familiarity"
    far = rng.normal(size=(20, x.shape[1])).astype(np.float32)  # nothing like the training photos
    assert np.mean(scores_of(fit, far) < 0) >= 0.9
    assert np.mean(scores_of(fit, x) >= 0) >= 0.97
    # rescaled: 0 at the threshold, ln(99) (a soft confidence of 0.99) at the training median
    assert np.median(fit.train_scores) == pytest.approx(math.log(99), rel=1e-4)
    assert fit.presence.probability(float(np.median(fit.train_scores))) == pytest.approx(0.99, abs=1e-4)


def test_imagenet_part_uses_the_rows_of_the_labels_and_a_training_percentile():
    assert len(imagenet_rows(("cat", "dog"))) == 123 and imagenet_rows(("cat", "papaya")) is None
    rng = np.random.default_rng(2)
    weight, bias = rng.normal(size=(1000, 16)).astype(np.float32), np.zeros(1000, np.float32)
    features = rng.normal(size=(200, 16)).astype(np.float32)
    part = imagenet_part(features, weight, bias, ("cat", "dog"))
    expected = (features @ weight[list(imagenet_rows(("cat", "dog")))].T).max(axis=1)
    assert np.allclose(part.raw(features), expected, atol=1e-4)
    assert part.threshold == pytest.approx(np.percentile(expected, PERCENTILE), abs=1e-4)
    with pytest.raises(DataError, match="familiarity"):
        imagenet_part(features, weight, bias, ("cat", "papaya"))


def test_both_parts_accept_a_photo_either_part_accepts():
    rng = np.random.default_rng(5)
    x, labels = _clusters(rng, 4, 50, spread=0.3)
    weight, bias = rng.normal(size=(1000, x.shape[1])).astype(np.float32), np.zeros(1000, np.float32)
    a, b = imagenet_part(x, weight, bias, ("cat", "dog")), familiarity_part(x, labels, seed=0)
    fit = combine((a, b), {"photos": len(x)})
    assert fit.presence.method == "imagenet+familiarity"
    probe = rng.normal(size=(100, x.shape[1])).astype(np.float32)
    either = (a.score(a.raw(probe)) >= 0) | (b.score(b.raw(probe)) >= 0)
    assert np.array_equal(scores_of(fit, probe) >= 0, either)
    assert [p["method"] for p in fit.presence.calibration["parts"]] == ["imagenet", "familiarity"]


def test_empty_scene_photos_move_the_threshold_into_the_gap_or_to_the_fewest_errors():
    rng = np.random.default_rng(3)
    x, labels = _clusters(rng, 3, 40, spread=0.3)
    fit = combine((familiarity_part(x, labels, seed=0),), {"photos": len(x)})
    low = float(np.percentile(fit.train_scores, PERCENTILE))
    moved = calibrate_with_none(fit, np.full(30, low - 4.0), "porch")
    assert moved.presence.threshold == pytest.approx(low - 2.0, abs=1e-5)
    assert moved.presence.calibration["none_dir"] == "porch" and moved.presence.calibration["none_photos"] == 30
    overlapping = np.concatenate([np.full(20, low - 5.0), np.full(10, float(np.max(fit.train_scores)) + 1)])
    fewest = calibrate_with_none(fit, overlapping, "porch").presence
    assert fewest.calibration["rule"].startswith("fewest errors")
    assert low - 5.0 < fewest.threshold <= float(np.max(fit.train_scores))


@pytest.mark.parametrize("parts", [("imagenet",), ("familiarity",), ("imagenet", "familiarity")])
def test_the_model_output_computes_the_score_the_threshold_was_chosen_on(parts):
    from catdog.trainer.efficientnet import backbone, build_lite0
    from catdog.trainer.presence import with_presence

    rng = np.random.default_rng(4)
    model = build_lite0((32, 32, 3), 2)
    images = rng.integers(0, 256, size=(24, 32, 32, 3)).astype(np.float32)
    features = backbone(model).predict(images, verbose=0)
    built = []
    for method in parts:
        if method == "imagenet":
            built.append(imagenet_part(features, rng.normal(size=(1000, 1280)).astype(np.float32),
                                       rng.normal(size=1000).astype(np.float32), ("cat", "dog")))
        else:
            built.append(familiarity_part(features, np.arange(24) % 2, seed=0))
    fit = combine(tuple(built), {"photos": 24})
    both = with_presence(model, fit).predict(images, verbose=0)
    assert set(both) == {"scores", "presence"} and both["presence"].shape == (24, 1)
    assert np.allclose(both["presence"][:, 0], scores_of(fit, features), atol=1e-3)
    assert np.allclose(both["scores"], model.predict(images, verbose=0), atol=1e-6)
