"""Training-time photo augmentation: one geometric warp per photo, then colour jitter.

Flip, rotation, zoom (a random crop of some area and aspect) and shift are composed into a single
affine transform and applied by one bilinear resampling that also resizes to the output size, so
a batch costs one pass over its pixels whatever the mix (three separate Keras warps cost ~2 s an
epoch more), and progressive resizing (training epochs at a smaller size) comes for free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ._tf import import_tensorflow


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly fit perturbs each training photo (uniform draws, independent per photo)."""

    rotation: float = 0.06
    """Largest turn, as a fraction of a full circle (0.06: +-21.6 degrees)."""
    area: tuple[float, float] = (0.4, 1.0)
    """Range of the crop's area as a fraction of the photo (0.4: zoom in up to 1.6x)."""
    aspect: tuple[float, float] = (0.8, 1.25)
    """Range of the crop's width/height ratio (log-uniform); (1, 1) keeps proportions."""
    shift: float = 0.08
    """Largest shift of the crop's centre, as a fraction of the photo's side."""
    contrast: float = 0.2
    """Contrast scaled by a factor in 1 +- this, about each photo's mean."""
    brightness: float = 0.1
    """Brightness shifted by up to this fraction of the full 0..255 range."""
    saturation: float = 0.3
    """Colour saturation scaled by a factor in 1 +- this (no effect on grayscale)."""

    @property
    def mean_crop_side(self) -> float:
        """The mean side of a crop as a fraction of the photo's: E[sqrt(area)] for area uniform in
        self.area (the aspect changes the sides, not their geometric mean). 0.83 for (0.4, 1.0)."""
        low, high = self.area
        if high == low:
            return math.sqrt(low)
        return (2.0 / 3.0) * (high**1.5 - low**1.5) / (high - low)


def augment_batch(images: Any, out_hw: tuple[int, int], generator: Any, config: AugmentConfig = AugmentConfig()) -> Any:
    """Randomly flip, rotate, crop, shift and colour-jitter a batch, resampled to out_hw.

    Args:
        images: float32 tensor (N, H, W, C) of raw 0..255 pixels.
        out_hw: (height, width) of the output; smaller than the input for progressive resizing.
        generator: a tf.random.Generator (seeded: the same seed gives the same batches).
        config: the strengths.

    Returns:
        float32 tensor (N, out_h, out_w, C), pixels clipped to 0..255. Areas the warp brings in from
        outside the photo are filled by reflection.
    """
    tf, _ = import_tensorflow()
    n = tf.shape(images)[0]
    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)
    out_h, out_w = out_hw

    def uniform(low: float, high: float) -> Any:
        return generator.uniform([n], low, high)

    flip = tf.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
    angle = uniform(-config.rotation, config.rotation) * 2.0 * math.pi
    area = uniform(*config.area)
    aspect = tf.exp(uniform(math.log(config.aspect[0]), math.log(config.aspect[1])))
    # Input pixels per output pixel along each output axis: the crop's side over the output's.
    scale_x = tf.sqrt(area * aspect) * width / out_w
    scale_y = tf.sqrt(area / aspect) * height / out_h
    centre_x = (width - 1.0) / 2.0 + uniform(-config.shift, config.shift) * width
    centre_y = (height - 1.0) / 2.0 + uniform(-config.shift, config.shift) * height
    # input = centre + Rotate(angle) . Scale . Flip . (output - output centre)
    cos, sin = tf.cos(angle), tf.sin(angle)
    a0, a1 = cos * scale_x * flip, -sin * scale_y
    b0, b1 = sin * scale_x * flip, cos * scale_y
    out_cx, out_cy = (out_w - 1.0) / 2.0, (out_h - 1.0) / 2.0
    a2 = centre_x - a0 * out_cx - a1 * out_cy
    b2 = centre_y - b0 * out_cx - b1 * out_cy
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.constant([out_h, out_w], tf.int32),
        fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="REFLECT",
    )

    def per_photo(values: Any) -> Any:
        return values[:, None, None, None]

    if config.contrast:
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * per_photo(uniform(1.0 - config.contrast, 1.0 + config.contrast)) + mean
    if config.brightness:
        x = x + per_photo(uniform(-config.brightness, config.brightness)) * 255.0
    if config.saturation:
        gray = tf.reduce_mean(x, axis=3, keepdims=True)
        x = gray + (x - gray) * per_photo(uniform(1.0 - config.saturation, 1.0 + config.saturation))
    return tf.clip_by_value(x, 0.0, 255.0)
