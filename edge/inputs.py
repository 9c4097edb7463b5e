"""Expand command-line inputs (files and directories) into the photo paths to classify."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from edge.preprocess import IMAGE_SUFFIXES


@dataclass(frozen=True)
class InputProblem:
    """An input that yields no photo at all (missing path, empty directory)."""

    path: str
    """The input as given."""
    error: str
    """One line saying what is wrong and what to do."""


@dataclass(frozen=True)
class ExpandedInputs:
    """Photos to classify, in order, and the inputs that gave none."""

    photos: tuple[Path, ...]
    """Files named directly (any suffix) and image files found in directories (sorted by name)."""
    problems: tuple[InputProblem, ...]
    """Missing paths and directories without photos."""


def expand_inputs(inputs: Iterable[str | Path]) -> ExpandedInputs:
    """Expand files and directories (not recursive) into photo paths.

    A file named directly is always kept, whatever its suffix, so that a bad file gets its own error.
    """
    photos: list[Path] = []
    problems: list[InputProblem] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
                problems.append(InputProblem(str(item), f"{item}: directory has no photos ({suffixes})"))
            photos.extend(found)
        elif path.exists() or path.is_symlink():
            photos.append(path)
        else:
            problems.append(InputProblem(str(item), f"{item}: no such file or directory; check the path"))
    return ExpandedInputs(photos=tuple(photos), problems=tuple(problems))
