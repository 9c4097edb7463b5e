"""The photo cache: hit and miss, one changed photo, damaged files rebuilt (never read), settings kept apart."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import catdog.trainer.cache as cache_module
from catdog.trainer.cache import Preprocessing, cache_key, default_cache_dir, open_cache
from catdog.trainer.data import load_photos, scan_folder
from catdog.trainer.errors import CacheError
from tests.trainer.conftest import copy_photos

PREP = Preprocessing((40, 48))


@pytest.fixture
def photos(data_dir, tmp_path):
    return scan_folder(copy_photos(data_dir, tmp_path / "photos", 5, split="val"))


@pytest.fixture
def decoded(monkeypatch):
    """The photos the cache decodes (each call of edge.preprocess.prepare), by path name."""
    seen: list[str] = []
    original = cache_module.prepare

    def counting(path, *args):
        seen.append(path.name)
        return original(path, *args)

    monkeypatch.setattr(cache_module, "prepare", counting)
    return seen


def _all(cache):
    return cache.read(np.arange(len(cache.labels)))


def test_a_miss_builds_the_edge_pixels_and_a_hit_reads_them_back(photos, tmp_path, decoded):
    logs: list[str] = []
    built = open_cache(photos, PREP, tmp_path / "cache", logs.append)
    assert not built.hit and len(decoded) == 10 and any("caching 10 photos" in line for line in logs)
    expected = load_photos(photos, PREP.hw).images
    assert built.shape == (10, 40, 48, 3) and np.array_equal(_all(built), expected)
    again = open_cache(photos, PREP, tmp_path / "cache")
    assert again.hit and len(decoded) == 10  # nothing decoded the second time
    assert np.array_equal(again.read(np.array([7, 2, 7])), expected[[7, 2, 7]])
    assert again.labels.tolist() == list(photos.labels) and again.paths == photos.paths
    # memory-mappable as a plain .npy array
    assert np.array_equal(np.load(again.path, mmap_mode="r"), expected)
    assert sorted(p.suffix for p in (tmp_path / "cache").iterdir()) == [".json", ".lock", ".npy"]


def test_changing_one_photo_invalidates_the_cache_and_decodes_only_that_photo(photos, data_dir, tmp_path, decoded):
    first = open_cache(photos, PREP, tmp_path / "cache")
    changed = photos.paths[3]
    shutil.copy(sorted((data_dir / "val" / "cat").glob("*.jpg"))[20], changed)  # other bytes under the same name
    decoded.clear()
    second = open_cache(scan_folder(tmp_path / "photos"), PREP, tmp_path / "cache")
    assert not second.hit and second.path != first.path
    assert decoded == [changed.name]  # the other nine rows were copied from the old cache
    assert np.array_equal(_all(second), load_photos(scan_folder(tmp_path / "photos"), PREP.hw).images)
    assert not first.path.exists() and not first.path.with_suffix(".json").exists()  # superseded, removed


def test_a_subset_copies_its_rows_and_leaves_the_whole_sets_cache(photos, tmp_path, decoded):
    whole = open_cache(photos, PREP, tmp_path / "cache")
    decoded.clear()
    part = open_cache(photos.subset([0, 1, 7]), PREP, tmp_path / "cache")  # a --limit-per-class run, say
    assert not part.hit and decoded == [] and np.array_equal(_all(part), _all(whole)[[0, 1, 7]])
    assert open_cache(photos, PREP, tmp_path / "cache").hit and decoded == []  # not superseded: still there


def test_an_added_photo_changes_the_key(photos, data_dir, tmp_path):
    before = cache_key(photos, PREP)
    copy_photos(data_dir, tmp_path / "photos", 1, split="val", skip=5)
    assert cache_key(scan_folder(tmp_path / "photos"), PREP) != before


@pytest.mark.parametrize("damage", ["truncate", "flip", "index"])
def test_a_damaged_cache_is_rebuilt_with_a_warning_and_never_read(photos, tmp_path, decoded, damage):
    first = open_cache(photos, PREP, tmp_path / "cache")
    data = bytearray(first.path.read_bytes())
    if damage == "truncate":
        first.path.write_bytes(bytes(data[: len(data) - 1000]))
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
        first.path.write_bytes(bytes(data))
    else:
        first.path.with_suffix(".json").write_text("{not json")
    decoded.clear()
    logs: list[str] = []
    again = open_cache(photos, PREP, tmp_path / "cache", logs.append)
    assert not again.hit and len(decoded) == 10  # decoded afresh: no row of the damaged file was used
    assert any(line.startswith("warning: the photo cache") and "damaged" in line and "rebuilding" in line for line in logs)
    assert np.array_equal(_all(again), load_photos(photos, PREP.hw).images)
    assert open_cache(photos, PREP, tmp_path / "cache").hit


def test_an_interrupted_build_leaves_nothing_that_looks_valid(photos, tmp_path, monkeypatch):
    original = cache_module.prepare
    calls = []

    def dies(path, *args):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(path, *args)

    monkeypatch.setattr(cache_module, "prepare", dies)
    with pytest.raises(KeyboardInterrupt):
        open_cache(photos, PREP, tmp_path / "cache")
    left = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert not [name for name in left if name.endswith(".json") or (name.endswith(".npy") and not name.startswith(".tmp-"))], left
    monkeypatch.setattr(cache_module, "prepare", original)
    rebuilt = open_cache(photos, PREP, tmp_path / "cache")
    assert not rebuilt.hit and not list((tmp_path / "cache").glob(".tmp-*"))  # the killed build's file is gone


def test_a_cache_for_other_preprocessing_is_not_reused(photos, tmp_path, decoded):
    open_cache(photos, PREP, tmp_path / "cache")
    for other in (Preprocessing((40, 48), crop=0.83), Preprocessing((40, 48), color="L"), Preprocessing((48, 48))):
        decoded.clear()
        cache = open_cache(photos, other, tmp_path / "cache")
        assert not cache.hit and len(decoded) == 10, other
        assert np.array_equal(_all(cache), load_photos(photos, other.hw, other.color, crop=other.crop).images)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 4


def test_unreadable_photos_are_listed_and_left_out(photos, tmp_path):
    broken = photos.paths[0]
    broken.write_bytes(b"not a photo")
    cache = open_cache(scan_folder(tmp_path / "photos"), PREP, tmp_path / "cache")
    assert len(cache.labels) == 9 and cache.skipped[0][0] == str(broken) and broken not in cache.paths
    meta = json.loads(cache.path.with_suffix(".json").read_text())
    assert meta["skipped"][0][0] == 0


def test_a_folder_that_cannot_be_created_says_what_to_do(photos, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CacheError, match="cannot create the photo cache folder .*--cache DIR or --no-cache"):
        open_cache(photos, PREP, tmp_path / "file" / "cache")


def test_the_default_folder_is_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "catdog" / "photos"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir().parts[-3:] == (".cache", "catdog", "photos")
