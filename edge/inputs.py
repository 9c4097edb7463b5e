"""Expand command-line inputs (files, directories, glob patterns, "-" for stdin) into photo paths."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, TextIO

from .classify import Failure
from .preprocess import IMAGE_SUFFIXES

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ExpandedInputs:
    """Photos to classify, in order, and the inputs that gave none."""

    photos: tuple[Path, ...]
    """Files named directly (any suffix) and image files found in directories (sorted by name)."""
    failures: tuple[Failure, ...]
    """Inputs that yield no photo at all (missing paths, directories without photos, patterns matching
    nothing): Failure(input as given, one line saying what is wrong), as a photo that fails is reported."""


def _is_photo(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _directory(path: Path, recursive: bool) -> list[Path]:
    found = path.rglob("*") if recursive else path.iterdir()
    return sorted(p for p in found if _is_photo(p))


def expand_inputs(inputs: Iterable[str | Path], recursive: bool = False, stdin: TextIO | None = None) -> ExpandedInputs:
    """Expand files, directories, glob patterns and "-" into photo paths, in the order given.

    A file named directly is kept whatever its suffix, so that a bad file gets its own error.
    Directories give their photo files (by suffix), sorted; with recursive, sub-directories too.
    "-" reads one path per line from stdin (blank lines skipped).
    """
    photos: list[Path] = []
    failures: list[Failure] = []
    queue = list(inputs)
    for item in queue:
        text = str(item)
        if text == "-":
            lines = (stdin or sys.stdin).read().splitlines()
            paths = [line.strip() for line in lines if line.strip()]
            photos_before = len(photos)
            sub = expand_inputs(paths, recursive)
            photos.extend(sub.photos)
            failures.extend(sub.failures)
            if not paths and len(photos) == photos_before:
                failures.append(Failure("-", "-: no paths on standard input; pipe one path per line"))
            continue
        path = Path(text)
        if path.is_dir():
            found = _directory(path, recursive)
            if not found:
                hint = "" if recursive else " (use --recursive for sub-directories)"
                failures.append(Failure(text, f"{text}: directory has no photos{hint}"))
            photos.extend(found)
        elif path.exists() or path.is_symlink():
            photos.append(path)
        elif _GLOB_CHARS & set(text):
            import glob  # only patterns need it (with fnmatch, ~1M instructions of every start)

            matches = sorted(Path(m) for m in glob.glob(text, recursive=recursive))
            matched = [m for m in matches if m.is_file()]
            if not matched:
                failures.append(Failure(text, f"{text}: pattern matches no files"))
            photos.extend(matched)
        else:
            failures.append(Failure(text, f"{text}: no such file or directory; check the path"))
    return ExpandedInputs(photos=tuple(photos), failures=tuple(failures))
