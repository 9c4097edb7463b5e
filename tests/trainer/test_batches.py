"""tf.data batches: the pixels fit trains and validates on are the edge's, at the phase's size."""

from __future__ import annotations

import numpy as np

from catdog.edge.preprocess import prepare
from catdog.trainer.batches import batches, training_batches
from catdog.trainer.data import load_photos, per_class_sample, scan_folder
from tests.trainer.conftest import TINY_SIZE


def test_validation_batches_are_the_edge_preprocessing(data_dir):
    """The tf.data pipeline fit() validates with (and trains on, before augmentation) yields the very
    pixels edge.preprocess gives the device."""
    photos = per_class_sample(scan_folder(data_dir / "val"), 6, seed=1)
    loaded = load_photos(photos, (96, 80))
    batch, labels = next(iter(batches(loaded, n_classes=2, batch_size=12)))
    edge_pixels = np.stack([prepare(p, (96, 80)) for p in photos.paths]).astype(np.float32)
    assert batch.shape == (12, 96, 80, 3)
    assert np.abs(batch.numpy() - edge_pixels).max() <= 1.0
    assert labels.numpy().tolist() == list(photos.labels)
    _, one_hot = next(iter(batches(loaded, n_classes=3, batch_size=12)))
    assert one_hot.numpy().tolist() == [[float(i == label) for i in range(3)] for label in photos.labels]
    cropped = load_photos(photos, (96, 80), crop=0.83)  # validation, calibration and parity as the edge crops
    assert np.array_equal(cropped.images, np.stack([prepare(p, (96, 80), crop=0.83) for p in photos.paths]))
    assert not np.array_equal(cropped.images, loaded.images)


def test_training_batches_come_at_the_phase_size_augmented_or_not(data_dir):
    photos = load_photos(per_class_sample(scan_folder(data_dir / "val"), 5, seed=1), (TINY_SIZE, TINY_SIZE))
    for augment in (True, False):
        found = list(training_batches(photos, 2, 4, seed=3, out_hw=(32, 32), augment=augment))
        assert [b.shape[0] for b, _ in found] == [4, 4, 2]
        assert all(tuple(b.shape[1:]) == (32, 32, 3) for b, _ in found)
        seen = np.concatenate([y.numpy() for _, y in found])
        assert sorted(seen.tolist()) == sorted(photos.labels.tolist())  # every photo once, shuffled
    plain = next(iter(training_batches(photos, 2, 10, seed=3, out_hw=(TINY_SIZE, TINY_SIZE), augment=False)))[0]
    assert sorted(plain.numpy().reshape(10, -1).sum(axis=1).tolist()) == sorted(
        photos.images.astype(np.float32).reshape(10, -1).sum(axis=1).tolist())  # full size, no augmentation: as decoded


def test_shards_split_each_epoch_evenly_and_disjointly(data_dir):
    """Synchronous workers must run the same number of steps: each shard gets n // count photos."""
    from catdog.trainer.distribute import Shard

    photos = load_photos(per_class_sample(scan_folder(data_dir / "val"), 5, seed=1), (32, 32))  # 10 photos
    sums = photos.images.astype(np.float32).reshape(10, -1).sum(axis=1)
    seen = []
    for index in range(3):
        found = list(batches(photos, 2, 2, shuffle_seed=4, shard=Shard(3, index)))
        assert [b.shape[0] for b, _ in found] == [2, 1]  # 3 photos each: 10 cut to 9
        seen += [float(s) for b, _ in found for s in b.numpy().reshape(b.shape[0], -1).sum(axis=1)]
    assert len(set(seen)) == 9 and set(seen) <= set(sums.tolist())  # disjoint, all from the set
