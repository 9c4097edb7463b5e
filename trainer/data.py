"""Photo folders for training: scan class-per-folder trees, split, and load with edge preprocessing."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from catdog.edge.camera.collect import INBOX
from catdog.edge.contract import ModelContract
from catdog.edge.errors import ImageError

from .errors import DataError
from catdog.edge.preprocess import IMAGE_SUFFIXES, prepare


@dataclass(frozen=True)
class PhotoSet:
    """Labelled photo paths. labels[i] indexes class_names."""

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    class_names: tuple[str, ...]
    digests: tuple[str, ...] = ()
    """sha256 of each file's bytes, when the data checks (trainer.scan) have read them; () otherwise."""

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: list[int]) -> "PhotoSet":
        """The photos at these indices, in that order."""
        digests = tuple(self.digests[i] for i in indices) if self.digests else ()
        return PhotoSet(
            tuple(self.paths[i] for i in indices), tuple(self.labels[i] for i in indices), self.class_names, digests
        )

    def counts(self) -> dict[str, int]:
        """Photos per class name."""
        return {name: self.labels.count(i) for i, name in enumerate(self.class_names)}


@dataclass(frozen=True)
class LoadedPhotos:
    """Photos decoded and resized by edge.preprocess, ready for a model."""

    images: np.ndarray
    """uint8 (N, height, width, channels), raw 0..255 pixels."""
    labels: np.ndarray
    """int64 (N,), indexes class_names."""
    paths: tuple[Path, ...]
    """Path of each image."""
    class_names: tuple[str, ...]
    """Label names in index order."""
    skipped: tuple[tuple[str, str], ...]
    """(path, reason) for photos that could not be read."""

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, height, width, channels) of the images."""
        return tuple(self.images.shape)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """The images at these rows, uint8 (len(rows), height, width, channels): how trainer.batches reads
        photos, from memory here and from disk in trainer.cache.PhotoCache."""
        return self.images[np.asarray(rows, dtype=np.int64)]


def scan_folder(root: Path, class_names: tuple[str, ...] | None = None) -> PhotoSet:
    """List a class-per-folder photo tree: root/<label>/<photo>. Labels are the sorted folder names (hidden
    folders and inbox/, the frames of catdog-edge camera --collect waiting for a label, are skipped).

    Args:
        root: the folder.
        class_names: expected labels (e.g. a model's); folders must match them exactly.

    Raises:
        DataError: the folder is missing, has fewer than 2 classes, an empty class, or other labels.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: photo folder not found; expected {root}/<label>/<photo>.jpg, e.g. cat/ and dog/")
    # inbox/ holds frames collected by catdog-edge camera --collect that wait for a label: never a class.
    names = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != INBOX))
    if class_names is not None and names != tuple(class_names):
        raise DataError(f"{root}: class folders {list(names)} do not match the model's labels {list(class_names)}")
    if len(names) < 2:
        raise DataError(f"{root}: found {len(names)} class folder(s); need at least 2, e.g. {root}/cat and {root}/dog")
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(names):
        found = sorted(
            p for p in (root / name).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not found:
            raise DataError(f"{root / name}: class folder has no photos; add some or remove the folder")
        paths.extend(found)
        labels.extend([index] * len(found))
    return PhotoSet(tuple(paths), tuple(labels), names)


def per_class_sample(photos: PhotoSet, per_class: int, seed: int) -> PhotoSet:
    """At most per_class photos of each class, drawn with a seed, in a stable order."""
    rng = random.Random(seed)
    chosen: list[int] = []
    for index in range(len(photos.class_names)):
        members = [i for i, label in enumerate(photos.labels) if label == index]
        chosen.extend(sorted(rng.sample(members, min(per_class, len(members)))))
    return photos.subset(chosen)


def stratified_sample(photos: PhotoSet, count: int, seed: int) -> PhotoSet:
    """About count photos drawn with a seed, each class in proportion to its share (at least one each).

    Quotas are rounded by largest remainder, so they add up to count (when the classes hold that many).
    """
    sizes = [photos.labels.count(i) for i in range(len(photos.class_names))]
    total = sum(sizes)
    if count >= total:
        return photos
    exact = [count * size / total for size in sizes]
    quota = [max(1, int(e)) for e in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    for i in by_remainder[: max(0, count - sum(quota))]:
        quota[i] += 1
    rng = random.Random(seed)
    chosen: list[int] = []
    for index, want in enumerate(quota):
        members = [i for i, label in enumerate(photos.labels) if label == index]
        chosen.extend(sorted(rng.sample(members, min(want, len(members)))))
    return photos.subset(chosen)


def stratified_split(photos: PhotoSet, val_fraction: float, seed: int) -> tuple[PhotoSet, PhotoSet]:
    """Split each class with a seed into (train, val); every class keeps at least one photo in each.

    Raises:
        DataError: a class has fewer than 2 photos.
    """
    rng = random.Random(seed)
    train: list[int] = []
    val: list[int] = []
    for index, name in enumerate(photos.class_names):
        members = [i for i, label in enumerate(photos.labels) if label == index]
        if len(members) < 2:
            raise DataError(f"class {name!r} has {len(members)} photo(s); a train/val split needs at least 2")
        rng.shuffle(members)
        n_val = min(max(1, round(len(members) * val_fraction)), len(members) - 1)
        val.extend(sorted(members[:n_val]))
        train.extend(sorted(members[n_val:]))
    return photos.subset(train), photos.subset(val)


def load_photos(
    photos: PhotoSet, input_hw: tuple[int, int], color: str = "RGB", method: str = "bilinear", crop: float = 1.0
) -> LoadedPhotos:
    """Decode and resize every photo with edge.preprocess.prepare (in threads; Pillow releases the GIL).

    Unreadable photos are skipped and listed in the result.

    Raises:
        DataError: no photo could be read.
    """

    def one(path: Path) -> np.ndarray | str:
        try:
            return prepare(path, input_hw, color, method, crop)
        except ImageError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(one, photos.paths))
    keep = [i for i, r in enumerate(results) if not isinstance(r, str)]
    skipped = tuple((str(photos.paths[i]), r) for i, r in enumerate(results) if isinstance(r, str))
    if not keep:
        raise DataError(f"none of the {len(photos)} photos could be read; first problem: {skipped[0][1]}")
    channels = 3 if color == "RGB" else 1
    images = np.stack([results[i] for i in keep]) if keep else np.zeros((0, *input_hw, channels), np.uint8)
    return LoadedPhotos(
        images=images,
        labels=np.array([photos.labels[i] for i in keep], dtype=np.int64),
        paths=tuple(photos.paths[i] for i in keep),
        class_names=photos.class_names,
        skipped=skipped,
    )


def load_labelled(
    data_dir: Path, contract: ModelContract, limit_per_class: int | None = None, seed: int = 1337
) -> LoadedPhotos:
    """A class-per-folder tree (folder names = the model's labels), optionally at most limit_per_class
    photos per class drawn with seed, prepared as the model's contract says.

    Raises:
        DataError: the folder is unusable or its labels differ from the contract's.
    """
    photos = scan_folder(data_dir, class_names=contract.labels)
    if limit_per_class is not None:
        photos = per_class_sample(photos, limit_per_class, seed)
    return load_for(photos, contract)


def load_for(photos: PhotoSet, contract: ModelContract) -> LoadedPhotos:
    """load_photos with the contract's size, colour, resize method and centre crop: the pixels the
    model is fed on the edge (validation, calibration, parity, evaluation)."""
    return load_photos(photos, contract.input_hw, contract.color, contract.resize, contract.crop)


def load_unlabelled(folder: Path, contract: ModelContract) -> LoadedPhotos:
    """Every photo under folder (any layout, sub-folders included), prepared as the contract says, with
    label 0 of the one class "photos": e.g. a user's photos of the empty scene (fit --none, evaluate
    --negatives).

    Raises:
        DataError: the folder is missing or holds no readable photo.
    """
    from catdog.edge.inputs import expand_inputs

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder of photos")
    found = expand_inputs([folder], recursive=True).photos
    if not found:
        raise DataError(f"{folder}: no photos found (.jpg, .png, ...); put the photos of the empty scene there")
    paths = tuple(Path(p) for p in found)
    return load_for(PhotoSet(paths, (0,) * len(paths), ("photos",)), contract)


def select_photos(
    data_dir: Path, val_dir: Path | None, val_split: float, seed: int, limit_per_class: int | None = None
) -> tuple[PhotoSet, PhotoSet]:
    """The (train, val) photo sets: val_dir's photos, or a seeded stratified split of data_dir.

    Args:
        data_dir: training photos, data_dir/<label>/<photo>.
        val_dir: validation photos in the same layout, or None to split val_split off data_dir.
        val_split: fraction of each class held out when val_dir is None.
        seed: seed of the split and of the per-class limit.
        limit_per_class: keep at most this many photos per class in each set.

    Raises:
        DataError: folders missing, empty or with different labels.
    """
    train = scan_folder(data_dir)
    if val_dir is not None:
        val = scan_folder(val_dir)
        if val.class_names != train.class_names:
            raise DataError(
                f"--val {val_dir} has classes {list(val.class_names)}, "
                f"{data_dir} has {list(train.class_names)}; they must match"
            )
    else:
        train, val = stratified_split(train, val_split, seed)
    if limit_per_class is not None:
        train = per_class_sample(train, limit_per_class, seed)
        val = per_class_sample(val, limit_per_class, seed)
    return train, val
