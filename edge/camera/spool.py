"""The on-disk spool of a sink: a bounded, durable, ordered queue of events waiting for their receiver.

Each event is one file, ``<seq>.event``, named by its sequence number and written durably
(catdog.edge.files: temporary file, fsync, rename, fsync of the folder) before put() returns, so an
event that counts as sent survives a crash or a power cut. The sender reads the oldest, delivers it,
and only then removes it: an event is delivered at least once, in order. Once acknowledged, an event
is never handed out again in this run, even when its file cannot be removed (a full or read-only
disk); such a file, or a crash between the acknowledgement and the removal, sends that event once
more after a restart, with the same sequence number, so a receiver can drop the repeat.

A record file holds a line with the CRC-32 of the payload in hex, then the payload (the event's JSON).
A file that does not check out (truncated, changed, not JSON) is reported, removed and skipped; an
error reading it (EIO, EMFILE...) is raised and the record kept, to be read again.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import SinkSetupError
from ..files import atomic_write_bytes, fsync_folder

#: Record files larger than this are not events catdog wrote (an event is a few hundred bytes).
MAX_RECORD_BYTES = 64 * 1024

_SUFFIX = ".event"
_LAST_SEQ = "last-seq"
_LOCK = "lock"


def default_spool_root() -> Path:
    """$XDG_STATE_HOME/catdog/spool, or ~/.local/state/catdog/spool when XDG_STATE_HOME is unset."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "catdog" / "spool"


@dataclass(frozen=True)
class Record:
    """One spooled event."""

    seq: int
    """Sequence number: increases by one per event, kept across restarts."""
    payload: bytes
    """The event as sent (its JSON)."""


@dataclass(frozen=True)
class PutResult:
    """What put() did."""

    seq: int
    """The new event's sequence number."""
    dropped: int
    """Oldest events removed to make room (the spool was full)."""


def encode_record(payload: bytes) -> bytes:
    """The bytes of a record file: CRC-32 line, then the payload."""
    return b"%08x\n" % zlib.crc32(payload) + payload


def decode_record(data: bytes) -> bytes:
    """The payload of a record file's bytes. Raises ValueError saying what is wrong with it."""
    if len(data) < 9 or data[8:9] != b"\n":
        raise ValueError(f"truncated ({len(data)} bytes)")
    try:
        crc = int(data[:8], 16)
    except ValueError:
        raise ValueError("no checksum line") from None
    payload = data[9:]
    if zlib.crc32(payload) != crc:
        raise ValueError("checksum mismatch (truncated or changed)")
    try:
        json.loads(payload)
    except ValueError:
        raise ValueError("not JSON") from None
    return payload


class Spool:
    """A bounded durable queue in one folder, safe to use from two threads (one putting, one sending).

    Args:
        folder: created if missing; one process at a time (a lock file says who has it).
        max_events: at most this many events are kept; put() drops the oldest beyond it.
        on_warning: called with a one-line message for each bad record file skipped, and for files that
            could not be removed.

    Raises:
        SinkSetupError: the folder cannot be created or written, or another process uses it.
    """

    def __init__(self, folder: Path, max_events: int, on_warning: Callable[[str], None]):
        if max_events < 1:
            raise SinkSetupError(f"a spool must hold at least 1 event, got {max_events}")
        self.folder = folder
        self.max_events = max_events
        self._warn = on_warning
        self._changed = threading.Condition()
        self._interrupted = False
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SinkSetupError(f"{folder}: cannot use it as a spool ({exc.strerror}); give --spool a writable folder") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise SinkSetupError(
                f"{folder}: another catdog-edge camera is using this spool; give each camera its own --spool"
            ) from None
        seqs = []
        for path in folder.iterdir():
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a put() that never returned: the event never counted as sent
            elif path.name.endswith(_SUFFIX) and path.name[: -len(_SUFFIX)].isdigit():
                seqs.append(int(path.name[: -len(_SUFFIX)]))
        self._seqs: deque[int] = deque(sorted(seqs))  # waiting to be sent, oldest first
        self._done: deque[int] = deque()  # sent (or unreadable) but their files not removed yet, oldest first
        last = self._read_last_seq()
        self._next = max([last, *seqs]) + 1

    def _path(self, seq: int) -> Path:
        return self.folder / f"{seq:016d}{_SUFFIX}"

    def _read_last_seq(self) -> int:
        try:
            return int((self.folder / _LAST_SEQ).read_text().strip())
        except (OSError, ValueError):
            return 0

    def __len__(self) -> int:
        """Events waiting to be sent."""
        with self._changed:
            return len(self._seqs)

    def put(self, payload: bytes) -> PutResult:
        """Write an event durably (fsynced) and return its sequence number; drop the oldest beyond max_events.

        Raises:
            OSError: the record could not be written (disk full, read-only, folder removed); nothing was added.
        """
        with self._changed:
            seq = self._next
            atomic_write_bytes(self._path(seq), encode_record(payload))
            self._next += 1
            self._seqs.append(seq)
            dropped = 0
            while len(self._seqs) > self.max_events:
                self._unlink(self._seqs.popleft())
                dropped += 1
            if dropped:
                try:
                    fsync_folder(self.folder)
                except OSError as exc:  # the new event is in: a dropped one may come back after a power cut
                    self._warn(f"{self.folder}: cannot sync the folder after dropping events ({exc.strerror})")
            self._changed.notify_all()
        return PutResult(seq, dropped)

    def head(self) -> Record | None:
        """The oldest event, or None when the spool is empty. Bad record files are reported and removed.

        Raises:
            OSError: the oldest record cannot be read now (EIO, EMFILE...); it is kept, to be read again.
        """
        with self._changed:
            while self._seqs:
                seq = self._seqs[0]
                path = self._path(seq)
                try:
                    with open(path, "rb") as f:
                        data = f.read(MAX_RECORD_BYTES + 1)
                    if len(data) > MAX_RECORD_BYTES:
                        raise ValueError(f"larger than {MAX_RECORD_BYTES} bytes")
                    return Record(seq, decode_record(data))
                except (FileNotFoundError, ValueError) as exc:  # gone, or does not check out: never readable
                    reason = "removed by someone else" if isinstance(exc, FileNotFoundError) else str(exc)
                    self._warn(f"{path}: bad spool record skipped ({reason})")
                    self._seqs.popleft()
                    self._done.append(seq)
                    try:
                        self._remove_done()
                    except OSError as err:
                        self._warn(f"{path}: cannot remove it ({err.strerror}); it is skipped again on the next run")
            return None

    def remove(self, seq: int) -> None:
        """Remove an event once its receiver acknowledged it (a no-op if it was dropped meanwhile).

        The event is never handed out again in this run, whatever happens to its file.

        Raises:
            OSError: its file could not be removed durably (disk full or read-only): it is tried again on the
                next remove() and close(), and if it is still there at the next start the event is sent once
                more, with the same sequence number.
        """
        with self._changed:
            if seq in self._seqs:
                self._seqs.remove(seq)
                self._done.append(seq)
            self._remove_done()

    def _remove_done(self) -> None:
        while self._done:
            seq = self._done[0]
            if not self._seqs and len(self._done) == 1:
                # The numbering goes on after the last file is gone; if this cannot be written the file
                # stays, so a restart resends it with its own number rather than reuse the number.
                atomic_write_bytes(self.folder / _LAST_SEQ, b"%d\n" % (self._next - 1))
            self._path(seq).unlink(missing_ok=True)
            fsync_folder(self.folder)  # a removed event must stay removed, or it would be sent twice
            self._done.popleft()

    def wait(self, timeout: float) -> bool:
        """Wait up to timeout seconds for an event to be present, or for interrupt(); True if an event is."""
        with self._changed:
            self._changed.wait_for(lambda: bool(self._seqs) or self._interrupted, timeout)
            self._interrupted = False
            return bool(self._seqs)

    def interrupt(self) -> None:
        """End a wait() now (e.g. to let the sender see that the run is over)."""
        with self._changed:
            self._interrupted = True
            self._changed.notify_all()

    def _unlink(self, seq: int) -> None:
        try:
            self._path(seq).unlink(missing_ok=True)
        except OSError as exc:
            self._warn(f"{self._path(seq)}: cannot remove it ({exc.strerror})")

    def close(self) -> None:
        """Release the folder's lock; the events stay for the next run. Files of sent events that could not be
        removed are tried once more, with a warning if they stay (they are sent again on the next run)."""
        with self._changed:
            try:
                self._remove_done()
            except OSError as exc:
                self._warn(f"{self.folder}: {len(self._done)} sent event(s) could not be removed ({exc.strerror}); "
                           "they are sent again on the next run, with the same sequence numbers")
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
