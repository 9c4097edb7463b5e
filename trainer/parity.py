"""Parity: does the exported .tflite model answer like the Keras model on the same prepared photos?"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catdog.edge.classify import Classifier
from catdog.edge.contract import ModelContract
from catdog.edge.errors import ModelError
from .data import LoadedPhotos, load_labelled


@dataclass(frozen=True)
class ParityReport:
    """Agreement between the full and the exported model on the same photos."""

    photos: int
    """Photos compared."""
    agreement: float
    """Fraction of photos where both models chose the same label."""
    mean_abs_diff: float
    """Mean |p_keras - p_tflite| of the positive class (labels[1]); of all classes for softmax."""
    max_abs_diff: float
    """Largest such difference."""
    keras_accuracy: float
    """Accuracy of the Keras model on these photos."""
    tflite_accuracy: float
    """Accuracy of the .tflite model on these photos."""
    presence_agreement: float | None = None
    """Fraction of photos where both models made the same presence decision (label or "none");
    None for models without a presence score."""
    presence_max_abs_diff: float | None = None
    """Largest |presence score keras - tflite|."""
    keras_none_rate: float | None = None
    """Fraction of these photos the Keras model answers "none"."""
    tflite_none_rate: float | None = None
    """Fraction of these photos the .tflite model answers "none"."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, rounded; the presence figures only for a model with a presence score."""
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()
                if v is not None or not (k.startswith("presence") or k.endswith("none_rate"))}


def compare(
    keras_scores: np.ndarray, tflite_scores: np.ndarray, labels: np.ndarray, contract: ModelContract,
    keras_presence: np.ndarray | None = None, tflite_presence: np.ndarray | None = None,
) -> ParityReport:
    """Compare two models' per-label probabilities, (N, n_labels) each, against true labels (N,), and
    their presence scores (N,) when both are given (decided by the contract's presence threshold)."""
    if keras_scores.shape != tflite_scores.shape or len(labels) != len(keras_scores) or len(labels) == 0:
        raise ValueError(f"score shapes differ or are empty: {keras_scores.shape} vs {tflite_scores.shape}")
    k_pred = np.array([contract.decide(s) for s in keras_scores])
    t_pred = np.array([contract.decide(s) for s in tflite_scores])
    diff = np.abs(keras_scores - tflite_scores)
    per_photo = diff[:, 1] if contract.activation == "sigmoid" else diff.max(axis=1)
    presence: dict[str, float] = {}
    if keras_presence is not None and tflite_presence is not None and contract.presence is not None:
        threshold = contract.presence.threshold
        presence = {
            "presence_agreement": float(np.mean((keras_presence >= threshold) == (tflite_presence >= threshold))),
            "presence_max_abs_diff": float(np.max(np.abs(keras_presence - tflite_presence))),
            "keras_none_rate": float(np.mean(keras_presence < threshold)),
            "tflite_none_rate": float(np.mean(tflite_presence < threshold)),
        }
    return ParityReport(
        photos=int(len(labels)),
        agreement=float(np.mean(k_pred == t_pred)),
        mean_abs_diff=float(per_photo.mean()),
        max_abs_diff=float(per_photo.max()),
        keras_accuracy=float(np.mean(k_pred == labels)),
        tflite_accuracy=float(np.mean(t_pred == labels)),
        **presence,
    )


def tflite_scores(classifier: Classifier, images: np.ndarray) -> np.ndarray:
    """Per-label probabilities of a .tflite model for prepared uint8 images (N, H, W, C)."""
    return tflite_outputs(classifier, images)[0]


def tflite_outputs(classifier: Classifier, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(per-label probabilities (N, n_labels), presence scores (N,) or None) of a .tflite model."""
    outputs = [classifier.outputs(image) for image in images]
    presence = None if classifier.presence is None else np.array([o.presence for o in outputs], np.float32)
    return np.stack([o.scores for o in outputs]), presence


def parity_on_photos(keras_model: Any, classifier: Classifier, photos: LoadedPhotos) -> ParityReport:
    """Run both models on the same prepared photos and compare, presence decisions included (a sigmoid Keras
    head is compared as the two-unit softmax head export turns it into)."""
    from .keras_model import keras_outputs
    from .model import softmax_head

    contract = classifier.contract
    if contract.activation == "softmax":
        keras_model = softmax_head(keras_model)
    k_scores, k_presence = keras_outputs(keras_model, photos.images, contract)
    t_scores, t_presence = tflite_outputs(classifier, photos.images)
    return compare(k_scores, t_scores, photos.labels, contract, k_presence, t_presence)


def check_parity(
    keras_path: Path, tflite_path: Path, data_dir: Path, limit_per_class: int | None = None, seed: int = 1337
) -> ParityReport:
    """Parity of a .keras and a .tflite model on a class-per-folder photo tree.

    Args:
        keras_path: the full model (contract beside it).
        tflite_path: the exported model (contract beside it).
        data_dir: photos, data_dir/<label>/<photo>; labels must match the model's.
        limit_per_class: compare at most this many photos per class.

    Raises:
        ModelError: a model cannot be loaded or the two have different labels.
        DataError: the photo folder is unusable.
    """
    from .keras_model import load_keras

    keras_model, keras_contract = load_keras(keras_path)
    classifier = Classifier.load(tflite_path)
    contract = classifier.contract
    if (keras_contract.labels, keras_contract.input_hw, keras_contract.crop) != (contract.labels, contract.input_hw, contract.crop):
        raise ModelError(
            f"{keras_path} and {tflite_path} have different labels, input sizes or crops; "
            "export the .tflite from this .keras"
        )
    return parity_on_photos(keras_model, classifier, load_labelled(data_dir, contract, limit_per_class, seed))
