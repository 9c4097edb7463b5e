"""Smooth per-frame decisions into a steady label: votes over the last K frames, with hysteresis."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..errors import CameraSetupError


def check_smoothing(window: int, agree: float, min_confidence: float) -> None:
    """Validate smoothing settings (see Smoother).

    Raises:
        CameraSetupError: a value is out of range.
    """
    if window < 1:
        raise CameraSetupError(f"--smooth must be at least 1 frame, got {window}")
    if not 0.5 < agree <= 1.0:
        raise CameraSetupError(f"agree must be above 0.5 and at most 1, got {agree}")
    if not 0.0 <= min_confidence <= 1.0:
        raise CameraSetupError(f"--min-confidence must be between 0 and 1, got {min_confidence}")


@dataclass(frozen=True)
class SmoothedLabel:
    """The label the smoother reports, and how sure it is."""

    label: str
    """The reported label."""
    index: int
    """Its index in the model's labels."""
    confidence: float
    """Mean probability of this label over the frames in the window, 0..1."""


class Smoother:
    """Reports a label once it holds a supermajority of the last `window` decisions, and keeps it
    until another label does (the hysteresis band: a split window changes nothing).

    With window K and agree a (default 2/3), a label needs ceil(a * K) of the last K votes; e.g.
    K=5 needs 4, so one odd frame never flips the label and two in a row do not either.
    """

    def __init__(self, labels: tuple[str, ...], window: int = 5, agree: float = 2 / 3, min_confidence: float = 0.0):
        """
        Args:
            labels: the model's labels, in index order.
            window: K, the number of latest classified frames that vote.
            agree: fraction of the K votes a label needs to be reported (0.5 < agree <= 1).
            min_confidence: a label is reported only while its mean probability over the window is at least this.

        Raises:
            CameraSetupError: a value is out of range.
        """
        check_smoothing(window, agree, min_confidence)
        self.labels = tuple(labels)
        self.window = window
        self.needed = max(1, math.ceil(agree * window - 1e-9))
        """Votes a label needs among the last `window` to be reported."""
        self.min_confidence = min_confidence
        self.current: SmoothedLabel | None = None
        """The label reported now; None until one has enough votes."""
        self._votes: deque[int] = deque(maxlen=window)
        self._scores: deque[np.ndarray] = deque(maxlen=window)

    def update(self, index: int, scores: ArrayLike) -> SmoothedLabel | None:
        """Add one classified frame.

        Args:
            index: the frame's decided label index (the classifier's decision, threshold included).
            scores: the frame's probabilities, (n_labels,) in label order.

        Returns:
            The new SmoothedLabel when the reported label changes, else None.
        """
        self._votes.append(int(index))
        self._scores.append(np.asarray(scores, dtype=np.float32))
        counts = np.bincount(np.fromiter(self._votes, dtype=np.intp), minlength=len(self.labels))  # intp: 32-bit numpy refuses int64
        leader = int(np.argmax(counts))
        mean = np.mean(self._scores, axis=0)
        if self.current is not None:
            # keep the reported label's confidence current, so heartbeats show the present mean
            self.current = SmoothedLabel(self.current.label, self.current.index, float(mean[self.current.index]))
        if counts[leader] < self.needed or float(mean[leader]) < self.min_confidence:
            return None
        if self.current is not None and self.current.index == leader:
            return None
        self.current = SmoothedLabel(self.labels[leader], leader, float(mean[leader]))
        return self.current
