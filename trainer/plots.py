"""PNG plots: training curves and the confusion matrix (matplotlib, imported on use, no GUI backend)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

from catdog.edge.files import atomic_write_bytes
from catdog.edge.errors import CatDogError


class PlotError(CatDogError):
    """A plot cannot be drawn (matplotlib missing)."""

    exit_code = 2


def _figure(size: tuple[float, float]) -> Any:
    """A matplotlib Figure drawn by the Agg canvas: no pyplot, no display, no global backend state."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError("matplotlib is not installed; pip install matplotlib (the [train] extra) for plots") from None
    return Figure(figsize=size, dpi=100, layout="constrained")


def _save(fig: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def plot_history(history: dict[str, Sequence[float]], path: Path, title: str = "training") -> Path:
    """Loss and accuracy per epoch, train against val, side by side; returns path.

    Args:
        history: "loss", "accuracy", "val_loss", "val_accuracy" lists, one value per epoch.
        path: the .png to write (atomically).

    Raises:
        PlotError: matplotlib is not installed.
    """
    fig = _figure((10, 4))
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for prefix, name in (("", "train"), ("val_", "val")):
            values = list(history.get(prefix + metric, []))
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return _save(fig, path)


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str = "") -> Path:
    """The confusion matrix as a heat map with counts (rows true label, columns predicted); returns path.

    Raises:
        PlotError: matplotlib is not installed.
    """
    n = len(labels)
    fig = _figure((2.0 + 0.9 * n, 1.6 + 0.8 * n))
    ax = fig.subplots()
    image = ax.imshow(confusion, cmap="Blues")
    top = max((max(row) for row in confusion), default=0)
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > top / 2 else "black")
    ax.set_xticks(range(n), labels=list(labels), rotation=30 if n > 4 else 0)
    ax.set_yticks(range(n), labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _save(fig, path)


def plot_roc(fpr: Sequence[float], tpr: Sequence[float], path: Path, title: str = "") -> Path:
    """The ROC curve from trainer.evaluate.roc_curve points; returns path.

    Raises:
        PlotError: matplotlib is not installed.
    """
    fig = _figure((4.5, 4.5))
    ax = fig.subplots()
    ax.plot(fpr, tpr, label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "ROC curve")
    return _save(fig, path)
