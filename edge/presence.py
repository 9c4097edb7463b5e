"""The answer "nothing there": a model's presence score, its threshold, and how a score becomes a decision.

A model that can say it sees none of its classes carries one extra output, a presence score, and its
contract carries this record. The photo is answered with one of the labels when score >= threshold,
and with `label` ("none") otherwise. The score is the largest of one or two parts (`method`):

- "imagenet": the largest ImageNet logit over the classes the labels stand for (for cat and dog: the
  118 dog breeds and 5 domestic cats of the backbone's original 1000-class head);
- "familiarity": the largest cosine similarity of the photo's pooled backbone features to centroids
  of the training photos' features (any labels);

each rescaled so that 0 is its threshold from the training photos and ln(99) their median
(catdog.trainer.presence). So the threshold is 0 unless a user's own photos of the empty scene moved it
(`calibration` records how), and --presence-threshold speaks in the same units: below 0 answers a
label more often, above 0 "none". Scores are not probabilities: the soft confidence of the decision is a
logistic of (score - threshold) / scale, 0.5 at the threshold (`probability`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ModelError
from .quantization import Quantization

METHODS = ("imagenet", "familiarity", "imagenet+familiarity")
#: The answer when the score is under the threshold, unless the contract names another.
NONE_LABEL = "none"


@dataclass(frozen=True)
class Presence:
    """How a model says whether any of its classes is in the photo."""

    output: str
    """Name of the presence-score output in the model's signature."""
    threshold: float
    """One of the labels is answered when the score is at least this, else `label`."""
    scale: float
    """Width of the soft confidence: presence_probability = logistic((score - threshold) / scale)."""
    method: str = "familiarity"
    """How the score is computed: "imagenet", "familiarity" or the larger of both (module docstring)."""
    label: str = NONE_LABEL
    """The answer when the score is under the threshold."""
    dtype: str = "float32"
    """dtype of the presence output tensor."""
    quantization: Quantization | None = None
    """Quantization of an integer presence output, None for float."""
    calibration: dict[str, Any] = field(default_factory=dict)
    """How the threshold was chosen: photos, percentile, folds (free form)."""

    def __post_init__(self) -> None:
        if not self.output or len(self.output) > 200:
            raise ModelError("the model contract's presence.output must name an output (1 to 200 characters)")
        if not (math.isfinite(self.threshold) and math.isfinite(self.scale) and self.scale > 0):
            raise ModelError(
                f"the model contract has presence threshold={self.threshold}, scale={self.scale}; "
                "expected finite numbers and a scale > 0"
            )
        if self.method not in METHODS:
            raise ModelError(f"the model contract has presence.method={self.method!r}; expected one of {METHODS}")
        if not 0 < len(self.label) <= 200:
            raise ModelError("the model contract's presence.label must be 1 to 200 characters")

    def score(self, raw: np.ndarray) -> float:
        """The presence score from the raw output tensor (dequantized when the output is integer)."""
        values = np.asarray(raw).reshape(-1)[:1]
        if self.quantization is not None:
            values = self.quantization.dequantize(values)
        return float(values[0])

    @property
    def how_chosen(self) -> str:
        """How the threshold was chosen, in a few words (catdog-edge info, fit's log)."""
        percentile = self.calibration.get("percentile")
        shown = f"{percentile:g}" if isinstance(percentile, (int, float)) else "?"
        return self.calibration.get("rule") or f"percentile {shown} of the training photos' scores"

    def probability(self, score: float, threshold: float | None = None) -> float:
        """Soft confidence that one of the labels is present: 0.5 at the threshold (this record's unless given)."""
        z = (score - (self.threshold if threshold is None else threshold)) / self.scale
        return float(1.0 / (1.0 + math.exp(-min(max(z, -60.0), 60.0))))
