"""Check a photo folder before training: counts per class, undecodable, tiny and duplicate files, imbalance."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from catdog.edge.errors import ImageError

from .errors import DataError
from catdog.edge.preprocess import IMAGE_SUFFIXES, open_image
from .config import CheckConfig
from .data import PhotoSet, select_photos

#: Problem kinds, in the order the report lists them.
KINDS = ("unsupported", "unreadable", "too small", "duplicate")


@dataclass(frozen=True)
class Problem:
    """A file left out of training, and why."""

    path: str
    """The file."""
    kind: str
    """One of KINDS."""
    detail: str
    """What is wrong, in a few words."""


@dataclass(frozen=True)
class DataReport:
    """The photos fit_photos trains and validates on, after the checks, and what the checks found."""

    train: PhotoSet
    """Training photos that passed every check."""
    val: PhotoSet
    """Validation photos that passed every check (split off the training folder when no --val)."""
    problems: tuple[Problem, ...]
    """Files left out, in KINDS order then path order."""
    warnings: tuple[str, ...]
    """Things that do not stop training but deserve a look (class imbalance)."""

    def table(self) -> str:
        """A short text table: photos per class in train and val, then the problems by kind."""
        counts_t, counts_v = self.train.counts(), self.val.counts()
        width = max(8, *(len(name) for name in self.train.class_names))
        lines = [f"{'class':<{width}}  {'train':>6}  {'val':>6}"]
        for name in self.train.class_names:
            lines.append(f"{name:<{width}}  {counts_t[name]:>6}  {counts_v[name]:>6}")
        lines.append(f"{'total':<{width}}  {len(self.train):>6}  {len(self.val):>6}")
        by_kind = {kind: sum(p.kind == kind for p in self.problems) for kind in KINDS}
        if self.problems:
            lines.append("skipped: " + ", ".join(f"{n} {kind}" for kind, n in by_kind.items() if n))
        return "\n".join(lines)


def _unsupported(root: Path, class_names: tuple[str, ...]) -> list[Problem]:
    """Files in the class folders that no image decoder here reads (hidden files are ignored)."""
    found = []
    for name in class_names:
        for path in sorted((root / name).iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() not in IMAGE_SUFFIXES:
                found.append(Problem(str(path), "unsupported", f"suffix {path.suffix or '(none)'!r} is not an image type"))
    return found


def _inspect(path: Path) -> tuple[str, tuple[int, int] | None, str | None]:
    """(sha256 of the bytes, (height, width) or None, error or None) of one file."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return "", None, f"cannot read the file ({exc.strerror})"
    try:
        img = open_image(path)  # the edge's decoder: what it cannot read, the device could not either
    except ImageError as exc:
        return digest, None, str(exc).removeprefix(f"{path}: ")
    return digest, (img.height, img.width), None


def check_data(config: CheckConfig, progress: Callable[[int, int], None] | None = None) -> DataReport:
    """List, sample and check the photos a training run would use, before any TensorFlow work.

    Every photo is decoded with the edge's decoder and hashed. Files that cannot be decoded, are
    smaller than config.min_side, or repeat another file's bytes are left out (a validation photo that
    is also a training photo is left out of validation); config.strict turns any of them into an error.

    Args:
        config: the folders and the limits.
        progress: called as progress(done, total) after each photo is checked.

    Returns:
        The clean train and val sets, the problems found and warnings.

    Raises:
        DataError: a folder is missing, has fewer than 2 classes, an empty class, a class under
            config.min_per_class, different classes in train and val, or (strict) any problem.
    """
    train, val = select_photos(
        config.data_dir, config.val_dir, config.val_split, config.seed, config.limit_per_class
    )
    problems = _unsupported(config.data_dir, train.class_names)
    if config.val_dir is not None:
        problems += _unsupported(config.val_dir, val.class_names)

    paths = list(train.paths) + list(val.paths)
    results = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for done, result in enumerate(pool.map(_inspect, paths), start=1):
            results.append(result)
            if progress is not None:
                progress(done, len(paths))

    first_seen: dict[str, tuple[Path, str]] = {}  # hash -> (path, "train"/"val"), train first
    keep: list[bool] = []
    for index, (path, (digest, hw, error)) in enumerate(zip(paths, results)):
        split = "train" if index < len(train) else "val"
        if error is not None:
            problems.append(Problem(str(path), "unreadable", error))
        elif min(hw) < config.min_side:
            problems.append(
                Problem(str(path), "too small", f"{hw[1]}x{hw[0]} px, under --min-side {config.min_side}")
            )
        elif digest in first_seen:
            other, other_split = first_seen[digest]
            where = "a training photo" if other_split == "train" and split == "val" else "another photo"
            problems.append(Problem(str(path), "duplicate", f"same bytes as {where}, {other}"))
        else:
            first_seen[digest] = (path, split)
            keep.append(True)
            continue
        keep.append(False)
    digests = [digest for digest, _, _ in results]
    # The content hashes travel with the sets: trainer.cache keys its decoded photos by them.
    train = PhotoSet(train.paths, train.labels, train.class_names, tuple(digests[: len(train)]))
    val = PhotoSet(val.paths, val.labels, val.class_names, tuple(digests[len(train) :]))
    clean_train = train.subset([i for i in range(len(train)) if keep[i]])
    clean_val = val.subset([i for i in range(len(val)) if keep[len(train) + i]])
    problems.sort(key=lambda p: (KINDS.index(p.kind), p.path))

    if config.strict and problems:
        listed = "; ".join(f"{p.path}: {p.kind} ({p.detail})" for p in problems[:5])
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise DataError(f"--strict: {len(problems)} problem file(s): {listed}{more}; fix or remove them")
    for name, n in clean_train.counts().items():
        if n < config.min_per_class:
            raise DataError(
                f"class {name!r} has {n} usable training photo(s), under --min-per-class {config.min_per_class}; "
                "add photos to it, remove the class folder, or lower --min-per-class"
            )
    for name, n in clean_val.counts().items():
        if n == 0:
            raise DataError(f"class {name!r} has no usable validation photo; add some to its validation folder")
    counts = clean_train.counts()
    warnings = []
    if max(counts.values()) > config.imbalance_ratio * min(counts.values()):
        big, small = max(counts, key=counts.get), min(counts, key=counts.get)
        warnings.append(
            f"classes are imbalanced: {big!r} has {counts[big]} training photos, {small!r} only {counts[small]} "
            f"(over {config.imbalance_ratio:g}x); the model will lean towards {big!r}: add photos or check per-class recall"
        )
    return DataReport(train=clean_train, val=clean_val, problems=tuple(problems), warnings=tuple(warnings))
