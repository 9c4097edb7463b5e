"""The presence score of a pretrained model: which one, its weights, and its threshold from training photos.

Two scores (catdog.edge.presence describes how the edge reads them):

- "imagenet": the largest logit of the backbone's own ImageNet head over the classes the labels stand
  for (IMAGENET_ROWS). No fitting, so its threshold is a low percentile of the training photos' scores.
- "familiarity": the largest cosine similarity of a photo's pooled features to spherical k-means
  centroids of the training photos' features. Fitted, so its threshold is a low percentile of
  out-of-fold scores (each training photo scored by centroids fitted without it): in-sample scores
  are higher than any new photo's and would make the threshold too strict.

With a user's own photos of the empty scene (fit --none DIR), the threshold moves to the middle of the
gap between the two groups' scores (calibrate_with_none).

Both become one extra output of the Keras model, "presence", beside "scores" (with_presence); every
op is a TFLite builtin, so the edge reads it without TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catdog.edge.presence import Presence

from .errors import DataError

#: ImageNet class indices each label stands for: the 118 dog breeds (151-268) and the 5 domestic cats
#: (281 tabby, 282 tiger cat, 283 Persian, 284 Siamese, 285 Egyptian cat).
IMAGENET_ROWS = {"cat": tuple(range(281, 286)), "dog": tuple(range(151, 269))}
#: Percentile of the training photos' scores used as the threshold. With the imagenet score (not fitted)
#: the scores are in-sample and unbiased: 0.5% leaves half of the 1% of cat/dog photos the model may
#: wrongly answer "none" against a 98%-right target for the bundled model (99% without "none").
IMAGENET_PERCENTILE = 0.5
#: The same for familiarity, on out-of-fold scores (new photos score a little lower than in-sample ones).
FAMILIARITY_PERCENTILE = 1.0
#: Centroids of the familiarity score: at most this many, and at least PHOTOS_PER_CENTROID photos each.
CENTROIDS = 64
PHOTOS_PER_CENTROID = 8
FOLDS = 5
KMEANS_ITERATIONS = 25
#: The soft confidence (Presence.probability) reaches 0.99 at the training photos' median score.
SOFT_AT_MEDIAN = 0.99

OUTPUT = "presence"
SCORES = "scores"


@dataclass(frozen=True)
class PresenceFit:
    """A fitted presence score: what the contract records and the weights the model's output needs."""

    presence: Presence
    """The contract's record (float32 output; export fills in the int8 details)."""
    kernel: np.ndarray
    """float32 (n_features, units): ImageNet rows (imagenet) or unit centroids (familiarity)."""
    bias: np.ndarray | None
    """float32 (units,) for imagenet, None for familiarity."""
    train_scores: np.ndarray = field(repr=False)
    """The scores the threshold was chosen from (out-of-fold for familiarity)."""


def imagenet_rows(labels: tuple[str, ...]) -> tuple[int, ...] | None:
    """The ImageNet classes the labels stand for, None when any label has none (e.g. "papaya")."""
    if not all(label in IMAGENET_ROWS for label in labels):
        return None
    return tuple(row for label in labels for row in IMAGENET_ROWS[label])


def fit_imagenet(features: np.ndarray, fc_weight: np.ndarray, fc_bias: np.ndarray, labels: tuple[str, ...]) -> PresenceFit:
    """The imagenet presence score and its threshold from the training photos' features.

    Args:
        features: float (N, 1280) pooled features of the training photos.
        fc_weight: float (1000, 1280) the backbone's ImageNet head (the state dict's `_fc.weight`).
        fc_bias: float (1000,) its `_fc.bias`.
        labels: the model's labels; each must be in IMAGENET_ROWS.

    Raises:
        DataError: a label has no ImageNet classes.
    """
    rows = imagenet_rows(labels)
    if rows is None:
        raise DataError(f"--presence imagenet needs labels among {sorted(IMAGENET_ROWS)}; use --presence familiarity")
    kernel = np.asarray(fc_weight, np.float32)[list(rows)].T
    bias = np.asarray(fc_bias, np.float32)[list(rows)]
    scores = (np.asarray(features, np.float32) @ kernel + bias).max(axis=1)
    threshold = float(np.percentile(scores, IMAGENET_PERCENTILE))
    calibration = {"photos": len(scores), "percentile": IMAGENET_PERCENTILE, "scores": "training photos"}
    return PresenceFit(_record("imagenet", scores, threshold, calibration), kernel, bias, scores)


def fit_familiarity(features: np.ndarray, labels: np.ndarray, seed: int) -> PresenceFit:
    """The familiarity score: centroids of all training features, threshold from out-of-fold scores.

    Args:
        features: float (N, 1280) pooled features of the training photos.
        labels: int (N,) their classes (folds are stratified by class).
        seed: seeds the folds and k-means.
    """
    x = _unit(features)
    k = centroid_count(len(x))
    folds = min(FOLDS, len(x))
    fold_of = np.random.default_rng(seed).permutation(len(x)) % folds
    order = np.argsort(np.asarray(labels), kind="stable")  # spread each class over the folds
    fold_of[order] = np.arange(len(x)) % folds
    oof = np.empty(len(x), np.float32)
    for fold in range(folds):
        held = fold_of == fold
        oof[held] = familiarity(x[held], kmeans(x[~held], centroid_count(int(np.sum(~held))), seed))
    centroids = kmeans(x, k, seed)
    threshold = float(np.percentile(oof, FAMILIARITY_PERCENTILE))
    calibration = {"photos": len(x), "percentile": FAMILIARITY_PERCENTILE, "scores": f"{folds}-fold out-of-fold",
                   "centroids": k}
    return PresenceFit(_record("familiarity", oof, threshold, calibration), centroids.T.astype(np.float32), None, oof)


def calibrate_with_none(fit: PresenceFit, none_scores: np.ndarray, none_photos: str) -> PresenceFit:
    """Move the threshold with the user's own photos of the empty scene.

    The threshold becomes the middle of the gap between the empty photos' high scores (their
    100-p percentile) and the training photos' low ones (their p percentile, p as before), so each
    side keeps the same margin; when the two overlap, the threshold that makes the fewest errors on
    both, counted as fractions of each group.

    Args:
        fit: the score fitted on the training photos.
        none_scores: float (M,) the presence scores of the empty-scene photos.
        none_photos: how to name them in the record (a folder name, never an absolute path).
    """
    p = fit.presence.calibration.get("percentile", 1.0)
    pos, neg = np.asarray(fit.train_scores, np.float64), np.asarray(none_scores, np.float64)
    low, high = float(np.percentile(pos, p)), float(np.percentile(neg, 100 - p))
    if high < low:
        threshold, how = (low + high) / 2, "middle of the gap"
    else:
        candidates = np.unique(np.concatenate([pos, neg]))
        errors = [np.mean(pos < t) + np.mean(neg >= t) for t in candidates]
        threshold, how = float(candidates[int(np.argmin(errors))]), "fewest errors (the groups overlap)"
    calibration = {**fit.presence.calibration, "none_photos": len(neg), "none_dir": none_photos, "rule": how,
                   "training_threshold": fit.presence.threshold}
    presence = _record(fit.presence.method, fit.train_scores, threshold, calibration)
    return PresenceFit(presence, fit.kernel, fit.bias, fit.train_scores)


def scores_of(fit: PresenceFit, features: np.ndarray) -> np.ndarray:
    """The presence scores of pooled features (N, 1280) -> float32 (N,), as the model's output computes them."""
    if fit.bias is not None:
        return (np.asarray(features, np.float32) @ fit.kernel + fit.bias).max(axis=1)
    return familiarity(_unit(features), fit.kernel.T)


def centroid_count(photos: int) -> int:
    """How many centroids the familiarity score uses for this many training photos."""
    return max(1, min(CENTROIDS, photos // PHOTOS_PER_CENTROID))


def familiarity(unit_features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Largest cosine similarity of each unit feature row to the unit centroids (k, D) -> (N,)."""
    return (unit_features @ centroids.T).max(axis=1).astype(np.float32)


def kmeans(unit_features: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Spherical k-means (cosine similarity) of unit rows: (k, D) unit centroids, deterministic for a seed.

    Seeded by k-means++ on cosine distance; an emptied cluster takes the row farthest from its centroid.
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
        c = _unit(c)
    return c.astype(np.float32)


def with_presence(model: Any, fit: PresenceFit) -> Any:
    """The model with a second output: {"scores": its output, "presence": (N, 1) score} from its pooled features.

    imagenet: Dense(rows) then the largest; familiarity: UnitNormalization, Dense(centroids, no bias),
    then the largest. All TFLite builtins (FULLY_CONNECTED, L2_NORMALIZATION, RESHAPE, MAX_POOL_2D).
    """
    from ._tf import import_tensorflow
    from .efficientnet import BACKBONE_OUTPUT

    _, keras = import_tensorflow()
    layers = keras.layers
    x = model.get_layer(BACKBONE_OUTPUT).output
    units = fit.kernel.shape[1]
    if fit.bias is None:
        x = layers.UnitNormalization(name="presence_unit")(x)
    dense = layers.Dense(units, use_bias=fit.bias is not None, name=f"presence_{fit.presence.method}")
    x = dense(x)
    dense.set_weights([fit.kernel] if fit.bias is None else [fit.kernel, fit.bias])
    x = layers.Reshape((units, 1), name="presence_units")(x)
    score = layers.GlobalMaxPooling1D(name=OUTPUT)(x)
    return keras.Model(model.input, {SCORES: model.output, OUTPUT: score}, name=model.name)


def _record(method: str, scores: np.ndarray, threshold: float, calibration: dict[str, Any]) -> Presence:
    """The contract's record: the soft confidence's scale puts SOFT_AT_MEDIAN at the training median."""
    median = float(np.median(scores))
    scale = max((median - threshold) / math.log(SOFT_AT_MEDIAN / (1 - SOFT_AT_MEDIAN)), 1e-6)
    return Presence(output=OUTPUT, threshold=round(threshold, 6), scale=round(scale, 6), method=method,
                    calibration=calibration)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
