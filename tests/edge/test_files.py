"""edge/files.py, the one way catdog replaces a file: the steps in the order a power cut needs (data, fsync,
rename, fsync of the folder), a failure that leaves the old file and no temporary one, and the leftovers of a
killed process found for clean-up."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from catdog.edge import files


def record_disk_calls(monkeypatch) -> list[tuple]:
    """Record every os.fsync, os.replace and os.unlink from now on, in order, then do them:
    ("fsync", path, size of the file then, or None for a folder), ("replace", src, dst), ("unlink", path)."""
    calls: list[tuple] = []
    fsync, replace, unlink = os.fsync, os.replace, os.unlink

    def recording_fsync(fd):
        info = os.fstat(fd)
        where = Path(os.readlink(f"/proc/self/fd/{fd}"))
        calls.append(("fsync", where, None if stat.S_ISDIR(info.st_mode) else info.st_size))
        return fsync(fd)

    def recording_replace(src, dst, **kwargs):
        calls.append(("replace", Path(src), Path(dst)))
        return replace(src, dst, **kwargs)

    def recording_unlink(path, **kwargs):
        calls.append(("unlink", Path(path)))
        return unlink(path, **kwargs)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    monkeypatch.setattr(os, "unlink", recording_unlink)
    return calls


def refusing(code: int):
    """A stand-in for an os function on a disk that refuses with errno code (ENOSPC: full, EROFS: read-only)."""

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return refuse


def durable_write_calls(path: Path, size: int, calls: list[tuple]) -> list[tuple]:
    """What a durable write of size bytes to path must do, in this order (the temporary name taken from calls):
    fsync the whole temporary file in path's folder, rename it to path, fsync the folder."""
    tmp = next(c[1] for c in calls if c[0] == "replace" and c[2] == path)
    assert tmp.parent == path.parent and tmp.name.startswith(f".{path.name}.")  # a rename within one folder
    return [("fsync", tmp, size), ("replace", tmp, path), ("fsync", path.parent, None)]


def test_write_fsync_rename_then_fsync_the_folder(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    path.write_bytes(b"old")
    calls = record_disk_calls(monkeypatch)
    files.atomic_write_bytes(path, b"new contents")
    assert calls == durable_write_calls(path, len(b"new contents"), calls)
    assert path.read_bytes() == b"new contents" and sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~files._umask()  # as open() would make it, not mkstemp's 0600


def test_a_writer_of_its_own_gets_a_path_with_the_suffix_it_needs(tmp_path, monkeypatch):
    path = tmp_path / "epoch-3.keras"
    calls = record_disk_calls(monkeypatch)
    with files.replacing(path, suffix=".keras") as tmp:  # as run_state.save_model hands it to model.save
        assert tmp.name.endswith(".keras") and not tmp.name.startswith("epoch-")  # hidden from epoch-*.keras
        tmp.write_bytes(b"zip")
        assert not path.exists()
    assert calls == durable_write_calls(path, 3, calls)
    assert path.read_bytes() == b"zip"


@pytest.mark.parametrize("step", ["write", "fsync", "replace"])
def test_a_failure_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch, step):
    path = tmp_path / "history.json"
    path.write_bytes(b"old")

    full = refusing(errno.ENOSPC)
    if step == "write":
        with pytest.raises(OSError), files.replacing(path) as tmp:
            tmp.write_bytes(b"half")
            full()
    else:
        monkeypatch.setattr(os, step, full)
        with pytest.raises(OSError):
            files.atomic_write_bytes(path, b"new")
        monkeypatch.undo()
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]


def test_leftovers_of_a_killed_write_are_found_for_their_target(tmp_path):
    with pytest.raises(KeyboardInterrupt), files.replacing(tmp_path / "abc.npy") as tmp:
        raise KeyboardInterrupt  # cleaned up: an interruption is not a kill
    assert not tmp.exists()
    killed = [tmp_path / ".abc.npy.k1ll3d00.tmp", tmp_path / ".abc.json.k1ll3d01.tmp"]  # as a SIGKILL leaves them
    for path in [*killed, tmp_path / ".other.npy.k1ll3d02.tmp", tmp_path / "abc.npy"]:
        path.write_bytes(b"")
    assert files.leftovers(tmp_path, "abc.*") == sorted(killed)
    assert len(files.leftovers(tmp_path)) == 3
