"""Affine quantization of a tensor, written once: real = (q - zero_point) * scale."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ModelError


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor: real = (q - zero_point) * scale.

    This is the one place the quantization formula is written.
    """

    scale: float
    zero_point: int

    def __post_init__(self) -> None:
        if not (isinstance(self.scale, float) and math.isfinite(self.scale) and self.scale > 0):
            raise ModelError(f"the model contract has a quantization scale of {self.scale!r}; expected a finite number > 0")
        if not isinstance(self.zero_point, int) or isinstance(self.zero_point, bool):
            raise ModelError(f"the model contract has a quantization zero_point of {self.zero_point!r}; expected an integer")

    def quantize(self, real: np.ndarray, dtype: str) -> np.ndarray:
        """Map real values to integers of ``dtype``: q = round(real / scale) + zero_point, clipped."""
        real = np.asarray(real)
        if real.dtype == np.uint8 and np.dtype(dtype) == np.uint8 and self.zero_point == 0 and abs(255 / self.scale - 255) < 0.5:
            return real  # raw pixels into a (1, 0) input: the formula maps every 0..255 value to itself
        info = np.iinfo(np.dtype(dtype))
        q = np.round(np.asarray(real, dtype=np.float32) / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Map integers back to real values (float32)."""
        return (np.asarray(q, dtype=np.float32) - self.zero_point) * np.float32(self.scale)
