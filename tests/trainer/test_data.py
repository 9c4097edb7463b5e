"""Photo folders: scanning, splitting, and the training pipeline seeing exactly the edge's pixels."""

from __future__ import annotations

import numpy as np
import pytest

from catdog.trainer.errors import DataError
from catdog.edge.preprocess import prepare
from catdog.trainer.data import load_photos, per_class_sample, scan_folder, stratified_split


def test_scan_reads_labels_from_sorted_folder_names(data_dir):
    photos = scan_folder(data_dir / "train")
    assert photos.class_names == ("cat", "dog")
    assert photos.counts() == {"cat": 1000, "dog": 1000}


def test_scan_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        scan_folder(tmp_path / "missing")
    (tmp_path / "cat").mkdir()
    with pytest.raises(DataError, match="at least 2"):
        scan_folder(tmp_path)
    (tmp_path / "dog").mkdir()
    with pytest.raises(DataError, match="no photos"):
        scan_folder(tmp_path)


def test_split_is_stratified_seeded_and_disjoint(data_dir):
    photos = scan_folder(data_dir / "val")
    train, val = stratified_split(photos, 0.2, seed=7)
    again, _ = stratified_split(photos, 0.2, seed=7)
    assert train.paths == again.paths
    assert val.counts() == {"cat": 100, "dog": 100}
    assert not set(train.paths) & set(val.paths) and len(train) + len(val) == len(photos)


def test_training_pipeline_sees_the_edge_preprocessing(data_dir):
    """The tf.data pipeline fit() validates with (and trains on, before augmentation) yields the very
    pixels edge.preprocess gives the device."""
    import tensorflow as tf

    from catdog.trainer.train import _batches

    photos = per_class_sample(scan_folder(data_dir / "val"), 6, seed=1)
    loaded = load_photos(photos, (96, 80))
    batch, labels = next(iter(_batches(tf, loaded, n_classes=2, batch_size=12)))
    edge_pixels = np.stack([prepare(p, (96, 80)) for p in photos.paths]).astype(np.float32)
    assert batch.shape == (12, 96, 80, 3)
    assert np.abs(batch.numpy() - edge_pixels).max() <= 1.0
    assert labels.numpy().tolist() == list(photos.labels)
    _, one_hot = next(iter(_batches(tf, loaded, n_classes=3, batch_size=12)))
    assert one_hot.numpy().tolist() == [[float(i == label) for i in range(3)] for label in photos.labels]
    cropped = load_photos(photos, (96, 80), crop=0.83)  # validation, calibration and parity as the edge crops
    assert np.array_equal(cropped.images, np.stack([prepare(p, (96, 80), crop=0.83) for p in photos.paths]))
    assert not np.array_equal(cropped.images, loaded.images)


def test_stratified_sample_keeps_class_shares_and_is_seeded():
    from pathlib import Path

    from catdog.trainer.data import PhotoSet, stratified_sample

    labels = (0,) * 10 + (1,) * 20 + (2,) * 30
    photos = PhotoSet(tuple(Path(f"p{i}.jpg") for i in range(60)), labels, ("a", "b", "c"))
    sample = stratified_sample(photos, 30, seed=3)
    assert sample.counts() == {"a": 5, "b": 10, "c": 15}
    assert sample.paths == stratified_sample(photos, 30, seed=3).paths
    assert stratified_sample(photos, 7, seed=3).counts() == {"a": 1, "b": 2, "c": 4}
    assert sum(stratified_sample(photos, 2, seed=3).counts().values()) == 3  # every class keeps one photo
    assert len(stratified_sample(photos, 500, seed=3)) == 60
