"""The familiarity score, numpy only: spherical k-means centroids of training features and an out-of-fold threshold.

A photo's familiarity is the largest cosine similarity of its pooled backbone features to the centroids
of the training photos' features. Fitted on the training photos, so their own scores are measured
out-of-fold (each photo scored by centroids fitted without it): in-sample scores are higher than any new
photo's. A score is rescaled so that 0 is its threshold, PERCENTILE of the training scores, and ln(99)
(a soft confidence of 0.99) their median: score = (raw - threshold) / width.

The one implementation: catdog-train fit (trainer.presence, its "familiarity" part) and catdog-edge learn
(edge.learn) both use it.
"""

from __future__ import annotations

import math

import numpy as np

#: The threshold: this percentile of the training scores (out-of-fold). The score alone then answers
#: "none" for about 1% of new photos like the training ones.
PERCENTILE = 1.0
#: Centroids: at most this many, and at least PHOTOS_PER_CENTROID photos each.
CENTROIDS = 64
PHOTOS_PER_CENTROID = 8
FOLDS = 5
KMEANS_ITERATIONS = 25
#: A score at the training median: ln(99), where the soft confidence (edge.presence Presence.probability) is 0.99.
AT_MEDIAN = math.log(99.0)


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float64; a zero row stays zero)."""
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centroid_count(photos: int) -> int:
    """How many centroids the familiarity score uses for this many training photos."""
    return max(1, min(CENTROIDS, photos // PHOTOS_PER_CENTROID))


def familiarity(unit_features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Largest cosine similarity of each unit feature row to the unit centroids (k, D) -> (N,)."""
    return (np.asarray(unit_features, np.float64) @ np.asarray(centroids, np.float64).T).max(axis=1)


def kmeans(unit_features: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Spherical k-means (cosine similarity) of unit rows: (k, D) unit centroids, deterministic for a seed.

    Seeded by k-means++ on cosine distance; an emptied cluster takes the row least like its centroid.
    """
    x = np.asarray(unit_features, np.float64)
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    distance = 1.0 - x @ centres[0]
    for _ in range(1, k):
        weights = np.clip(distance, 0, None)
        total = weights.sum()
        index = rng.choice(len(x), p=weights / total) if total > 0 else rng.integers(len(x))
        centres.append(x[index])
        distance = np.minimum(distance, 1.0 - x @ x[index])
    c = np.stack(centres)
    for _ in range(KMEANS_ITERATIONS):
        similarity = x @ c.T
        assign = similarity.argmax(axis=1)
        for j in range(k):
            members = x[assign == j]
            c[j] = members.sum(axis=0) if len(members) else x[int(np.argmin(similarity[:, j]))]
        c = unit(c)
    return c.astype(np.float32)


def fit_familiarity(features: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of all training features and the training photos' out-of-fold raw scores.

    Args:
        features: float (N, D) pooled features of the training photos.
        labels: int (N,) their classes (each class is spread over the folds).
        seed: seeds k-means.

    Returns:
        (float32 (k, D) unit centroids, float64 (N,) out-of-fold raw familiarity of each training photo).
    """
    x = unit(features)
    folds = min(FOLDS, len(x))
    fold_of = np.empty(len(x), np.int64)
    fold_of[np.argsort(np.asarray(labels), kind="stable")] = np.arange(len(x)) % folds
    oof = np.empty(len(x))
    for fold in range(folds):
        held = fold_of == fold
        oof[held] = familiarity(x[held], kmeans(x[~held], centroid_count(int(np.sum(~held))), seed))
    return kmeans(x, centroid_count(len(x)), seed), oof


def rescaling(raw: np.ndarray) -> tuple[float, float]:
    """(threshold, width) of training raw scores: PERCENTILE of them, and raw units per unit of the rescaled
    score, so that (raw - threshold) / width is 0 at the threshold and AT_MEDIAN at their median."""
    threshold = float(np.percentile(raw, PERCENTILE))
    return threshold, max((float(np.median(raw)) - threshold) / AT_MEDIAN, 1e-6)


def threshold_with_none(train_scores: np.ndarray, none_scores: np.ndarray) -> tuple[float, str]:
    """A presence threshold moved by the user's own photos of the empty scene, and the rule that chose it.

    The middle of the gap between the empty photos' high scores (their 100 - PERCENTILE percentile) and
    the training photos' low ones (their PERCENTILE percentile), so each side keeps the same margin; when
    the two overlap, the threshold that makes the fewest errors on both, counted as fractions of each group.

    Args:
        train_scores: float (N,) the training photos' rescaled presence scores (out-of-fold where fitted).
        none_scores: float (M,) the empty-scene photos' rescaled presence scores.
    """
    pos, neg = np.asarray(train_scores, np.float64), np.asarray(none_scores, np.float64)
    low, high = float(np.percentile(pos, PERCENTILE)), float(np.percentile(neg, 100 - PERCENTILE))
    if high < low:
        return (low + high) / 2, "middle of the gap"
    candidates = np.unique(np.concatenate([pos, neg]))
    errors = [np.mean(pos < t) + np.mean(neg >= t) for t in candidates]
    return float(candidates[int(np.argmin(errors))]), "fewest errors (the groups overlap)"
