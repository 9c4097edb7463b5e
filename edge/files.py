"""Durable file writes, the only way catdog replaces a file: a reader sees the old file or the whole new one,
never half of one, and once the write returns the new file survives a crash or a power cut.

The steps, in this order: write a temporary file in the same folder, fsync it, rename it over the target,
fsync the folder. Without the first fsync a power cut can leave the new name on an empty file (the rename
reaches the disk before the data); without the second, the rename itself can be undone, so a state file
could name a file that is not there.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replacing(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Write path durably: yields a temporary path in path's folder to write (with open(), model.save(), ...);
    when the block ends without an exception, fsyncs it, renames it to path and fsyncs the folder.

    An exception in the block (or in those steps) removes the temporary file and leaves path as it was.
    The new file gets the permissions a plain open() would give it (0666 less the umask).

    Args:
        path: the file to write.
        suffix: the end of the temporary file's name, .<name>.<random><suffix>; the default .tmp keeps it out
            of globs such as *.json. Keras needs ".keras" (it saves to no other name).

    Raises:
        OSError: the file could not be written, synced or renamed (disk full, read-only, folder gone).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # here, not at the top: ~3 ms of every catdog-edge start-up

    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_WRONLY)  # whoever wrote it may have closed it already (Keras does)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path durably (see replacing()): the old file or the whole new one, also after a power cut.

    Raises:
        OSError: it could not be written (disk full, read-only, folder gone); path is unchanged.
    """
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def fsync_folder(folder: Path) -> None:
    """Make the folder's entries durable: a file renamed into it or removed from it stays so after a power cut.

    Raises:
        OSError: the folder cannot be opened or synced.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def leftovers(folder: Path, pattern: str = "*") -> list[Path]:
    """Temporary files (default suffix) that replacing() left in folder for targets whose names match pattern:
    a killed process leaves them; remove them only while no other process can be writing those targets."""
    return sorted(Path(folder).glob(f".{pattern}.*.tmp"))


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
