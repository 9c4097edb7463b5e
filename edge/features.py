"""The pooled backbone features a pretrained model exposes as an extra output, so catdog-edge learn can fit a new head on them.

catdog-train export adds the output (the EfficientNet-Lite0 "features" layer, (1, 1280) after global average
pooling) to pretrained models and records it in the contract; the class scores stay output 0, so readers that
know nothing of it are unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ModelError
from .quantization import Quantization

#: The output's name in the model's signature.
OUTPUT = "features"


@dataclass(frozen=True)
class Features:
    """Where a model's pooled backbone features come out."""

    output: str = OUTPUT
    """Name of the features output in the model's signature (edge.signature)."""
    size: int = 1280
    """Number of features (the output's shape is (1, size))."""
    dtype: str = "float32"
    """dtype of the features output tensor."""
    quantization: Quantization | None = None
    """Quantization of an integer features output, None for float."""

    def __post_init__(self) -> None:
        if not self.output or len(self.output) > 200:
            raise ModelError("the model contract's features.output must name an output (1 to 200 characters)")
        if not 1 <= self.size <= 65536:
            raise ModelError(f"the model contract has features.size={self.size}; expected 1 to 65536")

    def values(self, raw: np.ndarray) -> np.ndarray:
        """The features from the raw output tensor: float32 (size,), dequantized when the output is integer."""
        values = np.asarray(raw).reshape(-1)
        return self.quantization.dequantize(values) if self.quantization is not None else values.astype(np.float32)
