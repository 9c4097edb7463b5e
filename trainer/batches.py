"""tf.data batches for fit: shuffled and augmented training batches, plain validation batches.

Photos are read by rows (Photos.read) from memory (trainer.data.LoadedPhotos) or from the disk cache
(trainer.cache.PhotoCache): only the indices live in the pipeline, so its memory does not grow with the
number of photos. Batches hold float32 raw 0..255 pixels, as the model takes them, and float32 targets;
reading and augmentation run in tf.data, beside the training step.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from ._tf import import_tensorflow
from .augment import augment_batch
from .distribute import Shard

#: Seeds of the augmentation draws of successive shards (workers) are this far apart.
SHARD_SEED_STRIDE = 7919


class Photos(Protocol):
    """Decoded photos read by rows: trainer.data.LoadedPhotos or trainer.cache.PhotoCache."""

    labels: np.ndarray
    """int64 (N,)."""

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, height, width, channels)."""

    def read(self, rows: np.ndarray) -> np.ndarray:
        """uint8 (len(rows), height, width, channels)."""


def training_batches(
    photos: Photos, n_classes: int, batch_size: int, seed: int, out_hw: tuple[int, int], augment: bool,
    shard: Shard = Shard(),
) -> Any:
    """Shuffled training batches at out_hw, augmented (trainer.augment) or, without augmentation, resized
    when out_hw is not the photos' size. Seeded: the same seed gives the same batches. With a shard, only
    its part of each epoch's shuffled photos."""
    tf, _ = import_tensorflow()
    ds = batches(photos, n_classes, batch_size, shuffle_seed=seed, shard=shard)
    if augment:
        generator = tf.random.Generator.from_seed(seed + SHARD_SEED_STRIDE * shard.index)
        # The generator is stateful: one map call at a time keeps the draws in order (reproducible);
        # prefetch still runs it beside the training step.
        ds = ds.map(lambda x, y: (augment_batch(x, out_hw, generator), y))
    elif tuple(out_hw) != tuple(photos.shape[1:3]):
        ds = ds.map(lambda x, y: (tf.image.resize(x, out_hw, antialias=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def batches(
    photos: Photos, n_classes: int, batch_size: int, shuffle_seed: int | None = None, shard: Shard = Shard()
) -> Any:
    """Batches of float32 pixels (as decoded: no JPEG work after loading) and targets: 0/1 for two classes
    (one sigmoid output), one-hot for more (see loss_for). Shuffled each epoch when shuffle_seed is given.

    With shard.count > 1 each epoch's (shuffled) photos are cut to a multiple of the count and this shard
    takes every count-th: every worker then runs the same number of steps, as synchronous training needs
    (up to count - 1 photos sit out each epoch; a different few each epoch when shuffled).
    """
    tf, _ = import_tensorflow()
    n = len(photos.labels)
    targets = photos.labels.astype(np.float32) if n_classes == 2 else np.eye(n_classes, dtype=np.float32)[photos.labels]
    targets = tf.constant(targets)
    row_shape = tuple(photos.shape[1:])
    # The same permutation as shuffling the photos themselves: it depends on the count and the seed only.
    ds = tf.data.Dataset.range(n)
    if shuffle_seed is not None:
        ds = ds.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=True)
    if shard.count > 1:
        ds = ds.take(n - n % shard.count).shard(shard.count, shard.index)

    def load(rows: Any) -> tuple[Any, Any]:
        pixels = tf.numpy_function(photos.read, [rows], tf.uint8, stateful=False)
        pixels.set_shape((None, *row_shape))
        return tf.cast(pixels, tf.float32), tf.gather(targets, rows)

    return ds.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE)


def loss_for(n_classes: int, label_smoothing: float) -> Any:
    """Binary cross-entropy for one sigmoid output, else categorical on one-hot targets (label
    smoothing needs them: the sparse loss has no such option)."""
    _, keras = import_tensorflow()
    if n_classes == 2:
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
