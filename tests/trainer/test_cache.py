"""The photo cache: hit and miss, one changed photo, damaged files rebuilt (never read), settings kept apart."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

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


# --- What decodes is part of the key (issue 30): a Pillow upgrade or a preprocessing change never reuses pixels. ---


def test_a_pillow_upgrade_decodes_afresh(photos, tmp_path, decoded, monkeypatch):
    import PIL

    first = open_cache(photos, PREP, tmp_path / "cache")
    decoded.clear()
    monkeypatch.setattr(PIL, "__version__", "99.0.0")
    again = open_cache(photos, PREP, tmp_path / "cache")
    assert not again.hit and again.path != first.path
    assert len(decoded) == 10  # no row copied from the old Pillow's cache
    assert json.loads(again.path.with_suffix(".json").read_text())["decoder"]["pillow"] == "99.0.0"


def test_a_change_to_the_preprocessing_source_decodes_afresh(photos, tmp_path, decoded, monkeypatch):
    """The preprocessing's version is a hash of edge/preprocess.py's source: no number to forget to bump."""
    from catdog.edge import preprocess

    first = open_cache(photos, PREP, tmp_path / "cache")
    edited = tmp_path / "preprocess.py"
    edited.write_bytes(Path(preprocess.__file__).read_bytes().replace(b"MAX_PIXELS = ", b"MAX_PIXELS = 1 + "))
    monkeypatch.setattr(preprocess, "__file__", str(edited))
    decoded.clear()
    again = open_cache(photos, PREP, tmp_path / "cache")
    assert not again.hit and again.path != first.path and len(decoded) == 10


# --- Two fits at once: one builds, the other says it waits and reuses (issue 30). ---

_CHILD = """
import json, sys, time
from pathlib import Path
import catdog.trainer.cache as cache
from catdog.trainer.cache import Preprocessing, open_cache
from catdog.trainer.data import scan_folder

photos_dir, cache_dir, gate = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
original, decoded = cache.prepare, []

def gated(path, *args):
    decoded.append(path.name)
    print("decoding", flush=True)
    while not gate.exists():  # the test opens the gate once the other process waits on the lock
        time.sleep(0.01)
    return original(path, *args)

cache.prepare = gated
opened = open_cache(scan_folder(photos_dir), Preprocessing((40, 48)), cache_dir, lambda line: print(line, flush=True))
print(json.dumps({"hit": opened.hit, "decoded": len(decoded)}), flush=True)
"""


class _Child:
    """A process opening the cache (_CHILD), its output lines gathered by a thread as they come."""

    def __init__(self, photos_dir, cache_dir, gate):
        import subprocess
        import sys
        import threading

        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(photos_dir), str(cache_dir), str(gate)],
                                     stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def wait_for(self, ready) -> None:
        """Until ready() holds; fails if the process ends first."""
        while not ready():
            assert self.proc.poll() is None or ready(), f"the process ended (exit {self.proc.returncode}): {self.lines}"
            time.sleep(0.01)

    def result(self) -> dict:
        assert self.proc.wait() == 0
        self.reader.join()
        return json.loads(self.lines[-1])


def _waits_on(lock: Path, pid: int) -> bool:
    """Whether process pid is blocked on an flock of lock (Linux's /proc/locks lists waiters as "->")."""
    if not lock.exists():
        return False
    inode = f":{lock.stat().st_ino} "
    return any(line.split()[1:3] == ["->", "FLOCK"] and line.split()[5] == str(pid) and inode in line
               for line in Path("/proc/locks").read_text().splitlines())


def test_two_processes_build_a_cache_once_and_the_second_says_it_waits(photos, tmp_path):
    """The lock, exercised: the first process holds it while it decodes (kept at its first photos until the
    second is blocked on the lock, as the kernel lists it); the second says it waits, then reuses the first's
    cache without decoding. Without the lock the second decodes (and this fails); without the message, too."""
    gate = tmp_path / "gate"
    first = _Child(tmp_path / "photos", tmp_path / "cache", gate)
    try:
        first.wait_for(lambda: first.said("decoding"))  # the first is building: it holds the lock
        lock = tmp_path / "cache" / f"{cache_key(photos, PREP)}.lock"
        second = _Child(tmp_path / "photos", tmp_path / "cache", gate)
        second.wait_for(lambda: _waits_on(lock, second.proc.pid) or second.said("decoding"))
        assert not second.said("decoding"), "the second process decoded while the first held the lock"
    finally:
        gate.touch()
    waiting = [line for line in second.lines if "waiting" in line]
    assert waiting == [f"waiting for another catdog-train process, which holds the photo cache lock {lock} "
                       "(it is caching the same photos)\n"]
    assert [first.result(), second.result()] == [{"hit": False, "decoded": 10}, {"hit": True, "decoded": 0}]


# --- catdog-train cache: its size and entries, and --clear (issue 30). ---


def test_cache_shows_its_size_and_entries_and_clear_empties_it(photos, tmp_path):
    from typer.testing import CliRunner

    from catdog.trainer.cache import cache_usage
    from catdog.trainer.cli import app

    folder = tmp_path / "cache"
    a = open_cache(photos, PREP, folder)
    b = open_cache(photos.subset([0, 1, 2]), Preprocessing((20, 20)), folder)
    (folder / "mine.txt").write_text("not the cache's")
    usage = cache_usage(folder)
    sizes = {a.path.stem: a.path.stat().st_size + a.path.with_suffix(".json").stat().st_size,
             b.path.stem: b.path.stat().st_size + b.path.with_suffix(".json").stat().st_size}
    assert {(e.key, e.photos, e.size) for e in usage.entries} == {(a.path.stem, 10, sizes[a.path.stem]), (b.path.stem, 3, sizes[b.path.stem])}
    assert usage.size == sum(sizes.values())  # the lock files are empty; mine.txt is not counted
    runner = CliRunner()
    shown = runner.invoke(app, ["cache", "--cache", str(folder)])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith(f"{folder}: 2 caches, {usage.size / 2**20:,.1f} MiB")
    assert f"{a.path.stem}       10 photos at 40x48 RGB" in shown.stdout and f"{b.path.stem}        3 photos at 20x20" in shown.stdout
    cleared = runner.invoke(app, ["cache", "--cache", str(folder), "--clear"])
    assert cleared.exit_code == 0 and cleared.stdout == f"deleted 2 caches ({usage.size / 2**20:,.1f} MiB) from {folder}\n"
    assert sorted(p.suffix for p in folder.iterdir()) == [".lock", ".lock", ".txt"]
    assert cache_usage(folder).size == 0 and np.array_equal(_all(a), load_photos(photos, PREP.hw).images)  # open files still read
    assert runner.invoke(app, ["cache", "--cache", str(folder)]).stdout == f"{folder}: 0 caches, 0.0 MiB\n"


def test_clear_keeps_a_cache_another_process_is_building(photos, tmp_path):
    import fcntl

    from catdog.trainer.cache import clear_cache

    folder = tmp_path / "cache"
    built = open_cache(photos, PREP, folder)
    with open(built.path.with_suffix(".lock"), "a+b") as held:  # as a fit building or checking it holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        gone, busy = clear_cache(folder)
    assert busy == (built.path.stem,) and gone.entries == () and gone.size == 0 and built.path.exists()
