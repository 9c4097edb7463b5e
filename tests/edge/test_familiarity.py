"""edge.familiarity: spherical k-means and the out-of-fold familiarity threshold, numpy only."""

from __future__ import annotations

import numpy as np
import pytest

from catdog.edge.familiarity import PERCENTILE, familiarity, fit_familiarity, kmeans, rescaling, unit


def _clusters(rng, centres: int, per: int, dim: int = 32, spread: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    means = rng.normal(size=(centres, dim))
    x = np.concatenate([m + spread * rng.normal(size=(per, dim)) for m in means])
    return x.astype(np.float32), np.repeat(np.arange(centres), per)


def test_kmeans_is_deterministic_and_finds_separated_clusters():
    rng = np.random.default_rng(0)
    x, which = _clusters(rng, 4, 30)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    a, b = kmeans(unit, 4, seed=3), kmeans(unit, 4, seed=3)
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assigned = (unit @ a.T).argmax(axis=1)
    for cluster in range(4):  # every true cluster maps to one centroid, and no two share one
        assert len(set(assigned[which == cluster])) == 1
    assert len(set(assigned)) == 4


def test_out_of_fold_scores_are_lower_than_in_sample_and_set_the_threshold():
    rng = np.random.default_rng(1)
    x, labels = _clusters(rng, 6, 40, spread=0.3)
    centroids, oof = fit_familiarity(x, labels % 2, seed=0)
    assert centroids.shape == (240 // 8, 32)
    assert np.mean(familiarity(unit(x), centroids)) > np.mean(oof)
    threshold, width = rescaling(oof)
    assert threshold == pytest.approx(np.percentile(oof, PERCENTILE))
    assert (np.median(oof) - threshold) / width == pytest.approx(np.log(99), rel=1e-6)
