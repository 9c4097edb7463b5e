"""Transfer learning: a pretrained EfficientNet-Lite0 backbone, frozen, and a new head trained on its features.

The photos go through the backbone once (edge preprocessing, the contract's size and crop), a batch
at a time from the photo cache (or memory with --no-cache), so memory does not grow with them; the head
is then a logistic regression on the pooled features, its L2 strength chosen by cross-validation on
the training photos (catdog.edge.head, which catdog-edge learn uses too). The validation photos are only measured, never used to choose.
Fine-tuning the backbone itself is left out: on cat/dog it gained nothing in our probe (see
docs/model.md), and without it a fit takes a couple of minutes on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from catdog.edge.contract import ModelContract
from catdog.edge.head import HeadSearch, search_head

from .batches import Photos
from .config import FitConfig, PresenceMethod
from .data import LoadedPhotos
from .efficientnet import Weights, backbone, build_lite0
from .errors import DataError
from .presence import (
    BOTH_FROM_PHOTOS, PresenceFit, calibrate_with_none, combine, familiarity_part, imagenet_part,
    imagenet_rows, scores_of, with_presence,
)

#: Photos per backbone batch when computing features (memory holds one batch's float32 pixels; the speed barely changes).
FEATURE_BATCH = 32


@dataclass(frozen=True)
class TransferFit:
    """A pretrained model with its new head, and how the head was chosen."""

    model: Any
    """The keras.Model: raw pixels in, the contract's activation out ({"scores", "presence"} with a presence score)."""
    search: HeadSearch
    """The head's cross-validation on the training features."""
    train_accuracy: float
    """Accuracy of the chosen head on the training photos it was fitted on."""
    val_accuracy: float
    """Accuracy on the validation photos (measured, never used to choose)."""
    presence: PresenceFit | None = None
    """The presence score added to the model, None with --presence off."""
    val_none_rate: float | None = None
    """Fraction of the validation photos the presence score answers "none" (measured, never used to choose)."""
    val_accuracy_with_none: float | None = None
    """Validation accuracy with "none" counted as wrong."""


def features(model: Any, photos: Photos) -> np.ndarray:
    """The backbone's pooled features of prepared photos: float32 (N, 1280).

    The photos are read FEATURE_BATCH rows at a time (Photos.read: from the disk cache or from memory) and
    only that batch is turned into float32, so memory holds the features and one batch, never the whole set
    as float32 (25,000 photos at 224x224 would be 15 GB). The same batches as predict(batch_size=FEATURE_BATCH)
    over the whole set, so the same features.
    """
    net = backbone(model)
    n = len(photos.labels)
    out = np.empty((n, net.output.shape[-1]), np.float32)
    for start in range(0, n, FEATURE_BATCH):
        rows = np.arange(start, min(start + FEATURE_BATCH, n))
        out[rows] = net.predict_on_batch(photos.read(rows).astype(np.float32))
    return out


def fit_transfer(
    config: FitConfig, contract: ModelContract, train: Photos, val: Photos, weights: Weights,
    log: Callable[[str], None], none: LoadedPhotos | None = None,
) -> TransferFit:
    """Build the pretrained network at the contract's input size and fit its head on frozen features.

    Args:
        config: the fit's settings (arch, weights, seed).
        contract: the model's contract (labels, input size, crop); train and val were prepared by it.
        train: training photos (the disk cache, or in memory), prepared as the edge prepares them (no
            augmentation: features are computed once).
        val: validation photos, likewise.
        weights: from trainer.pretrained.resolve_weights(config.weights).
        log: short progress messages.
        none: the user's photos of the empty scene (fit --none), prepared likewise, or None.

    Raises:
        WeightsError: the weights cannot be found, read or fitted.
    """
    n_classes = len(contract.labels)
    model = build_lite0(contract.input_shape, n_classes, weights=weights)
    log(f"computing {config.arch.value} features of {len(train.labels)} training and {len(val.labels)} validation photos")
    train_features, val_features = features(model, train), features(model, val)
    search = search_head(train_features, train.labels, n_classes, seed=config.seed)
    cv = ", ".join(f"{l2:g}: {accuracy:.4f}" for l2, accuracy in search.cv_accuracy.items())
    log(f"head: L2 {search.l2:g} chosen by {search.folds}-fold cross-validation on the training photos ({cv})")
    head_layer = model.get_layer("prob" if n_classes == 2 else "probs")
    head_layer.set_weights([search.head.kernel, search.head.bias])
    train_accuracy = _accuracy(search.head.probabilities(train_features), train.labels, contract)
    val_accuracy = _accuracy(search.head.probabilities(val_features), val.labels, contract)
    presence = fit_presence(config, contract, train_features, train.labels, weights)
    if presence is None:
        return TransferFit(model, search, train_accuracy, val_accuracy)
    if none is not None:
        presence = calibrate_with_none(presence, scores_of(presence, features(model, none)), config.none_dir.name)
    p = presence.presence
    present = scores_of(presence, val_features) >= p.threshold
    right = search.head.predict(val_features) == val.labels if len(contract.labels) > 2 else np.array(
        [contract.decide(s) == label for s, label in zip(search.head.probabilities(val_features), val.labels)])
    log(f"presence: {p.method} score, threshold {p.threshold:g} ({p.how_chosen}); "
        f"answers none on {np.mean(~present):.2%} of the validation photos")
    return TransferFit(with_presence(model, presence), search, train_accuracy, val_accuracy, presence,
                       float(np.mean(~present)), float(np.mean(right & present)))


def fit_presence(
    config: FitConfig, contract: ModelContract, train_features: np.ndarray, labels: np.ndarray, weights: Weights
) -> PresenceFit | None:
    """The presence score config.presence asks for, fitted on the training features; None when off.

    auto: when the ImageNet head knows every label and the weights carry that head, both parts from
    BOTH_FROM_PHOTOS training photos on and the imagenet part alone below; else familiarity alone
    (trainer.presence).

    Raises:
        DataError: --presence imagenet or both with labels or weights that have no ImageNet classes.
    """
    method = config.presence
    has_head = isinstance(weights, dict) and "_fc.weight" in weights and "_fc.bias" in weights
    if method is PresenceMethod.auto:
        if has_head and imagenet_rows(contract.labels):
            method = PresenceMethod.both if len(labels) >= BOTH_FROM_PHOTOS else PresenceMethod.imagenet
        else:
            method = PresenceMethod.familiarity
    if method is PresenceMethod.off:
        return None
    parts = []
    if method in (PresenceMethod.imagenet, PresenceMethod.both):
        if not has_head:
            raise DataError(f"--presence {method.value} needs the ImageNet head in the weights (--weights imagenet or a .pth)")
        parts.append(imagenet_part(train_features, weights["_fc.weight"], weights["_fc.bias"], contract.labels))
    if method in (PresenceMethod.familiarity, PresenceMethod.both):
        parts.append(familiarity_part(train_features, labels, config.seed))
    return combine(tuple(parts), {"photos": len(labels)})


def _accuracy(scores: np.ndarray, labels: np.ndarray, contract: ModelContract) -> float:
    """Accuracy of per-label probabilities with the contract's decision rule."""
    return float(np.mean([contract.decide(s) == label for s, label in zip(scores, labels)]))
