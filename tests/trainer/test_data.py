"""Photo folders: scanning, splitting and sampling."""

from __future__ import annotations

import pytest

from catdog.trainer.errors import DataError
from catdog.trainer.data import scan_folder, stratified_split


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


def test_scan_skips_the_collect_inbox_and_hidden_folders(tmp_path):
    from PIL import Image

    for folder in ("cat", "dog", "inbox", ".trash"):  # the layout catdog-edge camera --collect leaves
        (tmp_path / folder).mkdir()
        Image.new("RGB", (40, 40)).save(tmp_path / folder / "frame.jpg")
    photos = scan_folder(tmp_path)
    assert photos.class_names == ("cat", "dog")
    assert len(photos.paths) == 2 and all(p.parent.name in ("cat", "dog") for p in photos.paths)
