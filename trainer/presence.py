"""The presence score of a pretrained model: its parts, their weights, and its threshold from training photos.

A presence score is the largest of one or two parts, each measured in its own units (catdog.edge.presence
describes how the edge reads the result):

- "imagenet": the largest logit of the backbone's own ImageNet head over the classes the labels stand
  for (IMAGENET_ROWS). Nothing is fitted, so the training photos' own scores are unbiased.
- "familiarity": the largest cosine similarity of a photo's pooled features to spherical k-means
  centroids of the training photos' features. Fitted, so its training scores are out-of-fold (each photo
  scored by centroids fitted without it): in-sample scores are higher than any new photo's.

Each part is rescaled (catdog.edge.familiarity.rescaling) so that 0 is its threshold, PERCENTILE of its
training scores, and ln(99) (a soft
confidence of 0.99) its training median: score = (raw - threshold) / width. The model's score is the
largest part, so a photo counts as present when either part accepts it. The two fail on different
photos: on val/ the ImageNet part alone keeps 98.4% of the cats and dogs, familiarity 97.7%, and either
99.4%, while either accepts 0.6% of the nothing/ photos (docs/model.md).

With a user's own photos of the empty scene (fit --none DIR) the threshold moves from 0 to the middle of
the gap between the two groups' scores (calibrate_with_none).

The score becomes one extra output of the Keras model, "presence", beside "scores" (with_presence): every
part's rescaling is folded into its Dense layer, then one max; all TFLite builtins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catdog.edge.familiarity import (  # the numpy k-means and rescaling, shared with catdog-edge learn
    CENTROIDS, PERCENTILE, PHOTOS_PER_CENTROID, fit_familiarity, rescaling, threshold_with_none, unit,
)
from catdog.edge.presence import Presence

from .errors import DataError

#: ImageNet class indices each label stands for: the 118 dog breeds (151-268) and the 5 domestic cats
#: (281 tabby, 282 tiger cat, 283 Persian, 284 Siamese, 285 Egyptian cat).
IMAGENET_ROWS = {"cat": tuple(range(281, 286)), "dog": tuple(range(151, 269))}
#: Training photos from which the familiarity part joins the imagenet one (--presence auto): enough for all
#: CENTROIDS at PHOTOS_PER_CENTROID each. With fewer its centroids are coarse and its out-of-fold threshold
#: low, so it lets empty scenes through that the imagenet part alone refuses (a 40-photo fit: most of them).
BOTH_FROM_PHOTOS = CENTROIDS * PHOTOS_PER_CENTROID

OUTPUT = "presence"
SCORES = "scores"


@dataclass(frozen=True)
class Part:
    """One part of a presence score, rescaled: (raw - threshold) / width."""

    method: str
    """"imagenet" or "familiarity"."""
    kernel: np.ndarray
    """float32 (n_features, units): ImageNet rows (imagenet) or unit centroids (familiarity)."""
    bias: np.ndarray
    """float32 (units,): the ImageNet rows' biases; zeros for familiarity."""
    threshold: float
    """Raw score at PERCENTILE of the training scores."""
    width: float
    """Raw units per unit of the rescaled score."""
    train_raw: np.ndarray = field(repr=False)
    """Raw training scores the threshold came from (out-of-fold for familiarity)."""

    def raw(self, features: np.ndarray) -> np.ndarray:
        """Raw scores of pooled features (N, D) -> (N,)."""
        x = unit(features) if self.method == "familiarity" else np.asarray(features, np.float64)
        return (x @ self.kernel + self.bias).max(axis=1)

    def score(self, raw: np.ndarray) -> np.ndarray:
        """Rescaled scores: 0 at the threshold, AT_MEDIAN at the training median."""
        return ((np.asarray(raw, np.float64) - self.threshold) / self.width).astype(np.float32)

    def record(self) -> dict[str, Any]:
        """How the contract describes this part (calibration)."""
        return {"method": self.method, "raw_threshold": round(self.threshold, 6), "width": round(self.width, 6),
                "units": int(self.kernel.shape[1])}


@dataclass(frozen=True)
class PresenceFit:
    """A fitted presence score: what the contract records and the parts the model's output computes."""

    presence: Presence
    """The contract's record (float32 output; export fills in the int8 details)."""
    parts: tuple[Part, ...]
    """The parts whose largest rescaled score is the presence score."""
    train_scores: np.ndarray = field(repr=False)
    """The training photos' presence scores (their parts out-of-fold where fitted)."""


def imagenet_rows(labels: tuple[str, ...]) -> tuple[int, ...] | None:
    """The ImageNet classes the labels stand for, None when any label has none (e.g. "papaya")."""
    if not all(label in IMAGENET_ROWS for label in labels):
        return None
    return tuple(row for label in labels for row in IMAGENET_ROWS[label])


def imagenet_part(features: np.ndarray, fc_weight: np.ndarray, fc_bias: np.ndarray, labels: tuple[str, ...]) -> Part:
    """The imagenet part from the training photos' features.

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
    raw = (np.asarray(features, np.float64) @ kernel + bias).max(axis=1)
    return _part("imagenet", kernel, bias, raw)


def familiarity_part(features: np.ndarray, labels: np.ndarray, seed: int) -> Part:
    """The familiarity part: centroids of all training features, threshold from out-of-fold scores.

    Args:
        features: float (N, 1280) pooled features of the training photos.
        labels: int (N,) their classes (each class is spread over the folds).
        seed: seeds k-means.
    """
    centroids, oof = fit_familiarity(features, labels, seed)
    return _part("familiarity", centroids.T.astype(np.float32), np.zeros(len(centroids), np.float32), oof)


def combine(parts: tuple[Part, ...], calibration: dict[str, Any]) -> PresenceFit:
    """The presence score of these parts (their largest rescaled score), threshold 0."""
    train = np.max([part.score(part.train_raw) for part in parts], axis=0)
    method = "+".join(part.method for part in parts)
    record = {**calibration, "percentile": PERCENTILE, "parts": [part.record() for part in parts]}
    presence = Presence(output=OUTPUT, threshold=0.0, scale=1.0, method=method, calibration=record)
    return PresenceFit(presence, parts, train)


def calibrate_with_none(fit: PresenceFit, none_scores: np.ndarray, none_photos: str) -> PresenceFit:
    """Move the threshold with the user's own photos of the empty scene.

    The threshold becomes the middle of the gap between the empty photos' high scores (their
    100 - PERCENTILE percentile) and the training photos' low ones (their PERCENTILE percentile), so each
    side keeps the same margin; when the two overlap, the threshold that makes the fewest errors on both,
    counted as fractions of each group.

    Args:
        fit: the score fitted on the training photos.
        none_scores: float (M,) the presence scores of the empty-scene photos.
        none_photos: how to name them in the record (a folder name, never an absolute path).
    """
    threshold, how = threshold_with_none(fit.train_scores, none_scores)
    calibration = {**fit.presence.calibration, "none_photos": len(none_scores), "none_dir": none_photos, "rule": how}
    presence = Presence(output=OUTPUT, threshold=round(threshold, 6), scale=1.0, method=fit.presence.method,
                        calibration=calibration)
    return PresenceFit(presence, fit.parts, fit.train_scores)


def scores_of(fit: PresenceFit, features: np.ndarray) -> np.ndarray:
    """The presence scores of pooled features (N, 1280) -> float32 (N,), as the model's output computes them."""
    return np.max([part.score(part.raw(features)) for part in fit.parts], axis=0)


def with_presence(model: Any, fit: PresenceFit) -> Any:
    """The model with a second output: {"scores": its output, "presence": (N, 1) score} from its pooled features.

    Each part is a Dense layer whose weights hold its rescaling ((raw - threshold) / width is linear, and
    the max of a positive rescaling is the rescaled max), familiarity's after UnitNormalization; then one
    max over every unit of every part. TFLite: FULLY_CONNECTED, L2_NORMALIZATION, CONCATENATION, RESHAPE,
    and a max pool.
    """
    from ._tf import import_tensorflow
    from .efficientnet import BACKBONE_OUTPUT

    _, keras = import_tensorflow()
    layers = keras.layers
    features = model.get_layer(BACKBONE_OUTPUT).output
    branches = []
    for part in fit.parts:
        x = layers.UnitNormalization(name="presence_unit")(features) if part.method == "familiarity" else features
        dense = layers.Dense(part.kernel.shape[1], name=f"presence_{part.method}")
        branches.append(dense(x))
        dense.set_weights([part.kernel / part.width, (part.bias - part.threshold) / part.width])
    x = branches[0] if len(branches) == 1 else layers.Concatenate(name="presence_parts")(branches)
    units = sum(part.kernel.shape[1] for part in fit.parts)
    x = layers.Reshape((units, 1), name="presence_units")(x)
    score = layers.GlobalMaxPooling1D(name=OUTPUT)(x)
    return keras.Model(model.input, {SCORES: model.output, OUTPUT: score}, name=model.name)


def _part(method: str, kernel: np.ndarray, bias: np.ndarray, raw: np.ndarray) -> Part:
    threshold, width = rescaling(raw)
    return Part(method, kernel, bias, threshold, width, np.asarray(raw, np.float64))
