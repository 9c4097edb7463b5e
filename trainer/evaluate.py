"""Evaluate a .keras or .tflite model on a class-per-folder photo tree, with the edge's preprocessing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.classify import Classifier, decide
from edge.errors import ModelError
from trainer.data import load_photos, scan_folder


@dataclass(frozen=True)
class ClassMetrics:
    """Precision and recall of one label."""

    label: str
    photos: int
    precision: float
    recall: float


@dataclass(frozen=True)
class EvaluationReport:
    """How a model did on labelled photos."""

    model: str
    """The model file evaluated."""
    photos: int
    """Photos evaluated (unreadable ones are skipped and counted apart)."""
    accuracy: float
    """Fraction of photos whose chosen label is the folder's label."""
    per_class: tuple[ClassMetrics, ...]
    """Precision and recall per label, in label order."""
    confusion: tuple[tuple[int, ...], ...]
    """confusion[true][predicted] photo counts, in label order."""
    skipped: int
    """Photos that could not be read."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model": self.model,
            "photos": self.photos,
            "accuracy": round(self.accuracy, 4),
            "per_class": {
                c.label: {"photos": c.photos, "precision": round(c.precision, 4), "recall": round(c.recall, 4)}
                for c in self.per_class
            },
            "confusion": [list(row) for row in self.confusion],
            "skipped": self.skipped,
        }


def summarize(model: str, labels: np.ndarray, predicted: np.ndarray, names: tuple[str, ...], skipped: int = 0) -> EvaluationReport:
    """Accuracy, per-class precision/recall and confusion matrix from true and predicted indices."""
    n = len(names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = []
    for i, name in enumerate(names):
        tp = confusion[i, i]
        per_class.append(
            ClassMetrics(
                label=name,
                photos=int(confusion[i].sum()),
                precision=float(tp / confusion[:, i].sum()) if confusion[:, i].sum() else 0.0,
                recall=float(tp / confusion[i].sum()) if confusion[i].sum() else 0.0,
            )
        )
    return EvaluationReport(
        model=model,
        photos=int(len(labels)),
        accuracy=float(np.mean(labels == predicted)) if len(labels) else 0.0,
        per_class=tuple(per_class),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        skipped=skipped,
    )


def evaluate(model_path: Path, data_dir: Path) -> EvaluationReport:
    """Evaluate a .keras or .tflite model on data_dir/<label>/<photo>.

    Raises:
        ModelError: the model cannot be loaded.
        DataError: the photo folder is unusable or its labels differ from the model's.
    """
    model_path = Path(model_path)
    if model_path.suffix == ".keras":
        from trainer.keras_model import keras_scores, load_keras

        model, contract = load_keras(model_path)
        photos = load_photos(scan_folder(data_dir, contract.labels), contract.input_hw, contract.color, contract.resize)
        scores = keras_scores(model, photos.images, contract)
    elif model_path.suffix == ".tflite":
        classifier = Classifier.load(model_path)
        contract = classifier.contract
        photos = load_photos(scan_folder(data_dir, contract.labels), contract.input_hw, contract.color, contract.resize)
        scores = np.stack([classifier.predict(image) for image in photos.images])
    else:
        raise ModelError(f"{model_path}: expected a .keras or .tflite model")
    predicted = np.array([decide(s, contract) for s in scores])
    return summarize(str(model_path), photos.labels, predicted, contract.labels, len(photos.skipped))
