"""Quiet by default: the libraries' own log lines (LiteRT, TensorFlow) stay out of the user's terminal.

C++ libraries write straight to file descriptor 2, past Python's sys.stderr, so the only way to
keep a line such as "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." out of a command's
output is to point that descriptor elsewhere around the call that prints it. What they wrote is
kept, so a caller can still show it when the call fails. CATDOG_VERBOSE=1 (the CLIs' --verbose)
turns all of this off.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

#: Environment variable that shows the libraries' own lines again ("1"; the CLIs' --verbose sets it).
VERBOSE_ENV = "CATDOG_VERBOSE"


def verbose() -> bool:
    """Whether the libraries' own log lines should be shown ($CATDOG_VERBOSE set and not "0")."""
    return os.environ.get(VERBOSE_ENV, "0") not in ("", "0")


@dataclass
class Captured:
    """What a library wrote to file descriptor 2 inside captured_stderr() (filled in at its end)."""

    text: str = ""
    """The bytes written, decoded as UTF-8 (undecodable bytes replaced)."""

    def reason(self, exc: BaseException) -> str:
        """One line for a failed call: the first line of exc, then the first error line the library
        printed when that adds something (its exception often says only "failed")."""
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        said = self.first_error()
        return first if said is None or said in first else f"{first}: {said}"

    def first_error(self) -> str | None:
        """The first line that reads like an error ("ERROR: ...", "E0000 ..."), without its prefix."""
        for line in self.text.splitlines():
            line = line.strip()
            if line.startswith("ERROR:"):
                return line.removeprefix("ERROR:").strip()
            if line[:1] == "E" and line[1:5].isdigit():
                return line.split("]", 1)[-1].strip()
        return None


@contextmanager
def captured_stderr() -> Iterator[Captured]:
    """Send file descriptor 2 to an in-memory file for the duration; yields a Captured filled in at the end.

    With verbose(), nothing is redirected (the lines appear as the library prints them). The
    redirection is process-wide: keep the block to the one call that prints.
    """
    captured = Captured()
    if verbose():
        yield captured
        return
    sys.stderr.flush()
    sink = _memory_file()
    saved = os.dup(2)
    os.dup2(sink, 2)
    try:
        yield captured
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.lseek(sink, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(sink, 65536):
            chunks.append(chunk)
        os.close(sink)
        captured.text = b"".join(chunks).decode("utf-8", errors="replace")


def _memory_file() -> int:
    """A file descriptor of an anonymous file: memfd on Linux (no temp-file module to import), else a temp file."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("catdog-stderr")
    import tempfile

    fd, path = tempfile.mkstemp(prefix="catdog-stderr-")
    os.unlink(path)
    return fd
