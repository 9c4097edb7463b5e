"""Evaluate a .keras or .tflite model on a class-per-folder photo tree, with the edge's preprocessing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from catdog.edge.classify import Classifier
from catdog.edge.contract import ModelContract
from .config import EvaluateConfig
from .data import load_labelled, load_unlabelled
from .errors import DataError
from .parity import tflite_outputs


@dataclass(frozen=True)
class ClassMetrics:
    """How the model did on one label."""

    label: str
    """The label."""
    photos: int
    """Photos whose folder is this label (support)."""
    precision: float
    """Of the photos given this label, the fraction that are it (0 when none were given it)."""
    recall: float
    """Of the photos of this label, the fraction given it."""
    f1: float
    """Harmonic mean of precision and recall (0 when both are 0)."""


@dataclass(frozen=True)
class Mistake:
    """A photo the model got wrong."""

    path: str
    """The photo."""
    true: str
    """Its folder's label."""
    predicted: str
    """The label the model chose."""
    confidence: float
    """Probability the model gave its (wrong) choice."""


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
    """Precision, recall and F1 per label, in label order."""
    macro_f1: float
    """Mean F1 over the labels."""
    confusion: tuple[tuple[int, ...], ...]
    """confusion[true][predicted] photo counts, in label order."""
    roc_auc: float | None
    """Area under the ROC curve: of labels[1]'s probability for binary models, the mean one-vs-rest
    area over labels for softmax models; None when a label has no photo."""
    most_wrong: tuple[Mistake, ...]
    """The wrong answers given with the highest confidence, highest first."""
    skipped: int
    """Photos that could not be read."""
    plots: tuple[str, ...] = ()
    """PNG files written: the confusion matrix, and the ROC curve of a binary model."""
    none_rate: float | None = None
    """Models with a presence score: fraction of these photos answered "none" (accuracy and the rest
    are of the label the model would choose)."""
    accuracy_with_none: float | None = None
    """Fraction of photos answered with their folder's label, "none" counted as wrong."""
    negatives: int | None = None
    """Photos in --negatives evaluated."""
    negatives_rejected: float | None = None
    """Fraction of them answered "none"."""

    def none_figures(self) -> dict[str, Any]:
        """The figures about "none", as the contract records them (metrics.evaluation)."""
        figures = {"photos": self.photos, "none_rate": self.none_rate, "accuracy_with_none": self.accuracy_with_none}
        if self.negatives is not None:
            figures.update(negatives=self.negatives, negatives_rejected=self.negatives_rejected)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}

    def text(self) -> str:
        """The report for people: the figures, per-class table, confusion matrix, most wrong photos, plots written."""
        auc = "n/a" if self.roc_auc is None else f"{self.roc_auc:.4f}"
        lines = [
            f"{self.model}: accuracy {self.accuracy:.4f} on {self.photos} photos ({self.skipped} skipped), "
            f"macro F1 {self.macro_f1:.4f}, ROC AUC {auc}"
        ]
        if self.none_rate is not None:
            lines.append(f"  answered none on {self.none_rate:.4f} of them; accuracy with none counted wrong "
                         f"{self.accuracy_with_none:.4f}")
        if self.negatives is not None:
            lines.append(f"  negatives: {self.negatives_rejected:.4f} of {self.negatives} photos with none of the labels "
                         "answered none")
        width = max(5, *(len(c.label) for c in self.per_class))
        lines.append(f"  {'label':<{width}}  {'photos':>6}  {'precision':>9}  {'recall':>6}  {'f1':>6}")
        for c in self.per_class:
            lines.append(f"  {c.label:<{width}}  {c.photos:>6}  {c.precision:>9.4f}  {c.recall:>6.4f}  {c.f1:>6.4f}")
        labels = [c.label for c in self.per_class]
        cell = max(6, width)
        lines.append("confusion (rows true, columns predicted):")
        lines.append("  " + " " * width + "".join(f"  {name:>{cell}}" for name in labels))
        for name, row in zip(labels, self.confusion):
            lines.append(f"  {name:<{width}}" + "".join(f"  {v:>{cell}}" for v in row))
        if self.most_wrong:
            lines.append("most confidently wrong:")
            lines += [f"  {m.confidence:.3f}  {m.predicted:<{width}} (is {m.true})  {m.path}" for m in self.most_wrong]
        lines += [f"wrote {png}" for png in self.plots]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, rounded to 4 decimals."""
        return {
            "model": self.model,
            "photos": self.photos,
            "accuracy": round(self.accuracy, 4),
            "per_class": {
                c.label: {"photos": c.photos, "precision": round(c.precision, 4), "recall": round(c.recall, 4),
                          "f1": round(c.f1, 4)}
                for c in self.per_class
            },
            "macro_f1": round(self.macro_f1, 4),
            "confusion": [list(row) for row in self.confusion],
            "roc_auc": None if self.roc_auc is None else round(self.roc_auc, 4),
            "most_wrong": [
                {"path": m.path, "true": m.true, "predicted": m.predicted, "confidence": round(m.confidence, 4)}
                for m in self.most_wrong
            ],
            "skipped": self.skipped,
            "plots": list(self.plots),
            **({} if self.none_rate is None else self.none_figures()),
        }


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance a random positive scores above a random negative (ties count half).

    Args:
        scores: float (N,), higher means more likely positive.
        positive: bool (N,).

    Returns:
        The area in 0..1, or None when there are no positives or no negatives.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    fpr, tpr = roc_curve(scores, positive)  # trapezoids: a run of tied scores is a diagonal step (counts half)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2)


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) at every distinct threshold, from (0, 0) to (1, 1).

    Args:
        scores: float (N,), higher means more likely positive.
        positive: bool (N,); both kinds should occur (else one rate stays 0).
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    hits = np.concatenate([[0], np.cumsum(positive[order])])
    misses = np.concatenate([[0], np.cumsum(~positive[order])])
    # A threshold sits after the last photo of each run of tied scores: ties move together.
    ends = np.concatenate([[True], np.diff(scores[order]) != 0, [True]])
    return misses[ends] / max(1, int((~positive).sum())), hits[ends] / max(1, int(positive.sum()))


def summarize(
    model: str, labels: np.ndarray, scores: np.ndarray, names: tuple[str, ...], paths: tuple[str, ...],
    predicted: np.ndarray, skipped: int = 0, most_wrong: int = 10,
) -> EvaluationReport:
    """All the figures from true labels (N,), per-label probabilities (N, n_labels) and chosen labels (N,)."""
    n = len(names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = []
    for i, name in enumerate(names):
        tp, given, actual = confusion[i, i], confusion[:, i].sum(), confusion[i].sum()
        precision = float(tp / given) if given else 0.0
        recall = float(tp / actual) if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(ClassMetrics(name, int(actual), precision, recall, f1))
    if n == 2:
        auc = roc_auc(scores[:, 1], labels == 1)
    else:
        areas = [roc_auc(scores[:, i], labels == i) for i in range(n)]
        auc = None if any(a is None for a in areas) else float(np.mean(areas))
    wrong = np.flatnonzero(predicted != labels)
    confidence = scores[wrong, predicted[wrong]] if len(wrong) else np.zeros(0)
    worst = wrong[np.argsort(-confidence, kind="stable")][:most_wrong]
    mistakes = tuple(
        Mistake(paths[i], names[labels[i]], names[predicted[i]], float(scores[i, predicted[i]])) for i in worst
    )
    return EvaluationReport(
        model=model,
        photos=int(len(labels)),
        accuracy=float(np.mean(labels == predicted)) if len(labels) else 0.0,
        per_class=tuple(per_class),
        macro_f1=float(np.mean([c.f1 for c in per_class])),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        roc_auc=auc,
        most_wrong=mistakes,
        skipped=skipped,
    )


def evaluate(config: EvaluateConfig) -> EvaluationReport:
    """Evaluate a .keras or .tflite model on config.data_dir/<label>/<photo>, preprocessed as on the edge.

    Raises:
        ModelError: the model cannot be loaded (a .keras model with unsafe layers is refused).
        DataError: the photo folder is unusable or its labels differ from the model's.
        PlotError: config.plots_dir is set and matplotlib is missing.

    With config.plots_dir, writes <model>-<suffix>.confusion.png there, and .roc.png for a binary model.
    """
    model_path = Path(config.model_path)
    if model_path.suffix == ".keras":
        from .keras_model import keras_outputs, load_keras

        model, contract = load_keras(model_path)
        score = lambda images: keras_outputs(model, images, contract)  # noqa: E731
    else:
        classifier = Classifier.load(model_path)
        contract = classifier.contract
        score = lambda images: tflite_outputs(classifier, images)  # noqa: E731
    if config.negatives_dir is not None and contract.presence is None:
        raise DataError(f"--negatives: {model_path} has no presence score, so it never answers 'none'; "
                        "fit it with --arch efficientnet-lite0")
    photos = load_labelled(config.data_dir, contract, config.limit_per_class, config.seed)
    scores, presence = score(photos.images)
    predicted = np.array([contract.decide(s) for s in scores])
    report = summarize(
        str(model_path), photos.labels, scores, contract.labels, tuple(str(p) for p in photos.paths), predicted,
        len(photos.skipped), config.most_wrong,
    )
    if presence is not None:
        present = presence >= contract.presence.threshold
        report = replace(report, none_rate=float(np.mean(~present)),
                         accuracy_with_none=float(np.mean(present & (predicted == photos.labels))))
    if config.negatives_dir is not None:
        negatives = load_unlabelled(config.negatives_dir, contract)
        _, negative_presence = score(negatives.images)
        report = replace(report, negatives=len(negatives.labels),
                         negatives_rejected=float(np.mean(negative_presence < contract.presence.threshold)))
    if config.record:
        if report.none_rate is None:
            raise DataError(f"--record: {model_path} has no presence score; there is nothing to record")
        record_evaluation(model_path, contract, report, config)
    if config.plots_dir is None:
        return report
    from .plots import plot_confusion, plot_roc

    stem = Path(config.plots_dir) / f"{model_path.stem}{model_path.suffix.replace('.', '-')}"
    title = f"{model_path.name}: accuracy {report.accuracy:.3f} on {report.photos} photos"
    plots = [plot_confusion(report.confusion, contract.labels, stem.with_name(stem.name + ".confusion.png"), title)]
    if len(contract.labels) == 2 and report.roc_auc is not None:
        roc_title = f"{model_path.name}: ROC of {contract.labels[1]!r}, AUC {report.roc_auc:.3f}"
        fpr, tpr = roc_curve(scores[:, 1], photos.labels == 1)
        plots.append(plot_roc(fpr, tpr, stem.with_name(stem.name + ".roc.png"), roc_title))
    return replace(report, plots=tuple(str(p) for p in plots))


def record_evaluation(model_path: Path, contract: ModelContract, report: EvaluationReport, config: EvaluateConfig) -> None:
    """Write the report's "none" figures into the model's contract as metrics.evaluation: the sidecar, and
    for a .tflite the embedded contract too (the file is replaced whole, never half-written).

    The photo folders are recorded by their final name only: a contract travels with the model.
    """
    import json

    from catdog.edge.contract import sidecar_path
    from catdog.edge.files import atomic_write_bytes
    from catdog.edge.metadata import embed_contract

    figures = {"data": Path(config.data_dir).name, **report.none_figures()}
    if config.negatives_dir is not None:
        figures["negatives_dir"] = Path(config.negatives_dir).name
    updated = contract.replace(metrics={**contract.metrics, "evaluation": figures})
    if model_path.suffix == ".tflite":
        payload = json.dumps(updated.to_dict(), separators=(",", ":")).encode()
        atomic_write_bytes(model_path, embed_contract(model_path.read_bytes(), payload))
    updated.save(sidecar_path(model_path))
