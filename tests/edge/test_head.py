"""edge.head: the logistic regression is right where the answer is known, and a
cross-validated strength chosen on training features only."""

from __future__ import annotations

import numpy as np
import pytest

from catdog.edge.head import L2_GRID, fit_head, search_head


def _blobs(n: int, classes: int, dims: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative, unevenly scaled features (like pooled ReLU6 activations); class c lifts feature c."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    features = rng.gamma(2.0, 1.0, (n, dims)) * rng.uniform(0.1, 10.0, dims)
    features[np.arange(n), labels] += shift * features[:, :classes].std()
    return features.astype(np.float32), labels


def test_binary_head_separates_and_is_a_plain_dense_sigmoid_on_raw_features():
    features, labels = _blobs(400, 2, 50, shift=8.0, seed=1)
    head = fit_head(features, labels, 2, l2=1e-3)
    assert head.kernel.shape == (50, 1) and head.bias.shape == (1,)
    assert np.mean(head.predict(features) == labels) == 1.0
    dense = 1.0 / (1.0 + np.exp(-(features.astype(np.float64) @ head.kernel[:, 0] + head.bias[0])))
    np.testing.assert_allclose(head.probabilities(features)[:, 1], dense, rtol=1e-6)


def test_softmax_head_for_three_classes():
    features, labels = _blobs(600, 3, 40, shift=6.0, seed=2)
    head = fit_head(features[:450], labels[:450], 3, l2=1e-3)
    assert head.kernel.shape == (40, 3)
    probs = head.probabilities(features[450:])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert np.mean(head.predict(features[450:]) == labels[450:]) >= 0.95


def test_cross_validation_picks_from_the_grid_deterministically_and_prefers_the_simpler_on_ties():
    features, labels = _blobs(300, 2, 30, shift=2.0, seed=3)
    first, again = search_head(features, labels, 2, seed=7), search_head(features, labels, 2, seed=7)
    assert first.l2 == again.l2 and first.cv_accuracy == again.cv_accuracy and first.folds == 5
    assert set(first.cv_accuracy) == set(L2_GRID) and first.cv_accuracy[first.l2] == max(first.cv_accuracy.values())
    easy, easy_labels = _blobs(100, 2, 10, shift=50.0, seed=4)  # every strength is perfect: the strongest wins
    assert search_head(easy, easy_labels, 2, seed=0).l2 == max(L2_GRID)


def test_folds_shrink_to_the_smallest_class():
    features, labels = _blobs(9, 3, 8, shift=5.0, seed=5)  # 3 photos per class
    assert search_head(features, labels, 3, seed=0).folds == 3


@pytest.mark.parametrize("n, dims", [(300, 40), (60, 200)])  # more photos than features, and fewer (the dual form)
def test_the_fit_reaches_the_regularised_optimum_either_way(n, dims):
    features, labels = _blobs(n, 3, dims, shift=1.0, seed=5)
    l2 = 1e-2
    head = fit_head(features, labels, 3, l2=l2, steps=2000)
    x = features.astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    w = head.kernel.astype(np.float64) * std[:, None]  # the weights on standardised features
    gradient = z.T @ (head.probabilities(features) - np.eye(3)[labels]) / n + l2 * w
    start = z.T @ (np.full((n, 3), 1 / 3) - np.eye(3)[labels]) / n  # at w = 0
    assert np.linalg.norm(gradient) < 1e-3 * np.linalg.norm(start)
