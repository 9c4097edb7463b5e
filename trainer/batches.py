"""tf.data batches for fit: shuffled and augmented training batches, plain validation batches.

Photos arrive decoded (trainer.data.LoadedPhotos: uint8 (N, H, W, C)); batches hold float32 raw
0..255 pixels, as the model takes them, and float32 targets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._tf import import_tensorflow
from .augment import augment_batch
from .data import LoadedPhotos


def training_batches(
    photos: LoadedPhotos, n_classes: int, batch_size: int, seed: int, out_hw: tuple[int, int], augment: bool
) -> Any:
    """Shuffled training batches at out_hw, augmented (trainer.augment) or, without augmentation, resized
    when out_hw is not the photos' size. Seeded: the same seed gives the same batches."""
    tf, _ = import_tensorflow()
    ds = batches(photos, n_classes, batch_size, shuffle_seed=seed)
    if augment:
        generator = tf.random.Generator.from_seed(seed)
        # The generator is stateful: one map call at a time keeps the draws in order (reproducible);
        # prefetch still runs it beside the training step.
        ds = ds.map(lambda x, y: (augment_batch(x, out_hw, generator), y))
    elif tuple(out_hw) != photos.images.shape[1:3]:
        ds = ds.map(lambda x, y: (tf.image.resize(x, out_hw, antialias=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def batches(photos: LoadedPhotos, n_classes: int, batch_size: int, shuffle_seed: int | None = None) -> Any:
    """Batches of float32 pixels (as decoded: no JPEG work after loading) and targets: 0/1 for two classes
    (one sigmoid output), one-hot for more (see loss_for). Shuffled each epoch when shuffle_seed is given."""
    tf, _ = import_tensorflow()
    targets = photos.labels.astype(np.float32) if n_classes == 2 else np.eye(n_classes, dtype=np.float32)[photos.labels]
    ds = tf.data.Dataset.from_tensor_slices((photos.images, targets))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(photos.labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)


def loss_for(n_classes: int, label_smoothing: float) -> Any:
    """Binary cross-entropy for one sigmoid output, else categorical on one-hot targets (label
    smoothing needs them: the sparse loss has no such option)."""
    _, keras = import_tensorflow()
    if n_classes == 2:
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
