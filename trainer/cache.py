"""fit's photo cache on disk: each photo set decoded once by edge.preprocess into a uint8 array file,
keyed by the photos' content hashes, the preprocessing settings and what decodes (Pillow's version and
edge.preprocess's source), reused across runs, read by rows.

A cache folder holds, per (photo set, size, colour, resize method, crop, decoder):
- <key>.npy: a .npy uint8 array (photos, height, width, channels), memory-mappable
  (np.load(path, mmap_mode="r")); rows of photos that could not be decoded are zeros and left out;
- <key>.json, written last: the settings, each photo's sha256, label and row CRC-32, and the photos
  left out. Without it the array is not a cache: an interrupted build leaves nothing that looks valid.
A changed or added photo changes the key; the new file copies every row whose photo it already holds
(same hash, same settings, its CRC checked) and decodes only the rest, then removes each file it copied
from that held no other paths (superseded); a cache of other photos (the whole folder's, say) stays. Opening a cache reads it once to check every row's CRC-32 and the file's length, so a
truncated or corrupt file is found (and rebuilt) before any training step reads it.
One process builds a key at a time (<key>.lock, an flock released when the process dies); another
one waits, saying so, and reuses what the first built. cache_usage and clear_cache show and empty a
folder (catdog-train cache).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator

import numpy as np
import PIL

from catdog.edge import preprocess
from catdog.edge.errors import ImageError
from catdog.edge.files import atomic_write_bytes, leftovers, replacing
from catdog.edge.preprocess import prepare

from .data import PhotoSet
from .errors import CacheError

#: Bumped when the file layout or the meaning of a row changes: older caches are then not reused.
CACHE_FORMAT = 1
#: Photos decoded (and written) per chunk while building: the builder's memory does not grow with the set.
CHUNK_ROWS = 256
#: Bytes read per call when checking a cache.
READ_BYTES = 1 << 24
#: The names of a cache's files: <key>.npy, <key>.json, <key>.lock, and .tmp-<key>-<pid>.npy while it is built.
_KEY = r"[0-9a-f]{40}"
_OWN_FILE = re.compile(rf"(\.tmp-)?({_KEY})(-\d+)?\.(npy|json|lock)")


@dataclass(frozen=True)
class Preprocessing:
    """How the photos of a cache were prepared (edge.preprocess.prepare's arguments)."""

    hw: tuple[int, int]
    """(height, width) of each row."""
    color: str = "RGB"
    """"RGB" (3 channels) or "L" (1)."""
    method: str = "bilinear"
    """Resize method."""
    crop: float = 1.0
    """Centre crop, a fraction of each side."""

    @property
    def channels(self) -> int:
        return 3 if self.color == "RGB" else 1

    def prepare_args(self) -> tuple[tuple[int, int], str, str, float]:
        """(hw, color, method, crop): the arguments of edge.preprocess.prepare and trainer.data.load_photos."""
        return self.hw, self.color, self.method, self.crop

    def record(self) -> dict[str, object]:
        """JSON-ready values (part of the key and of the .json)."""
        return {"hw": list(self.hw), "color": self.color, "method": self.method, "crop": self.crop}


@dataclass(frozen=True)
class PhotoCache:
    """An opened, checked cache: the photos that could be decoded, read by rows from the file."""

    path: Path
    """The .npy array file."""
    labels: np.ndarray
    """int64 (N,): the label of each usable photo, in photo-set order."""
    paths: tuple[Path, ...]
    """The usable photos' paths."""
    skipped: tuple[tuple[str, str], ...]
    """(path, reason) of photos that could not be decoded."""
    hit: bool
    """Whether the cache was already there (False: built by this call)."""
    rows: np.ndarray = field(repr=False)
    """int64 (N,): each usable photo's row in the file."""
    file: IO[bytes] = field(repr=False)
    """The open file: a cache replaced after opening is still read whole."""
    offset: int = field(repr=False)
    """Bytes before the first row (the .npy header)."""
    row_shape: tuple[int, int, int] = field(repr=False)
    """(height, width, channels) of a row."""

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, height, width, channels) of the usable photos."""
        return (len(self.rows), *self.row_shape)

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Photos by index (0..N-1), uint8 (len(indices), height, width, channels), by positional reads of
        the rows: pages of a memory mapping that training touched would count in the process's RSS, and
        an epoch touches them all.

        Raises:
            CacheError: the file is shorter than its rows (changed after it was checked).
        """
        out = np.empty((len(indices), *self.row_shape), np.uint8)
        size = out[0].nbytes if len(out) else 0
        fd = self.file.fileno()
        for k, row in enumerate(self.rows[np.asarray(indices, dtype=np.int64)]):
            if os.preadv(fd, [memoryview(out[k]).cast("B")], self.offset + int(row) * size) != size:
                raise CacheError(f"{self.path}: shorter than its rows; delete it and run again")
        return out


def default_cache_dir() -> Path:
    """The user's cache folder for catdog's decoded photos: $XDG_CACHE_HOME/catdog/photos, else ~/.cache/catdog/photos."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "catdog" / "photos"


def decoder_record() -> dict[str, str]:
    """What turns a photo into pixels besides the settings: Pillow's version and a hash of edge.preprocess's source.

    Part of every key, and rows are copied only between caches that agree on it: after a Pillow upgrade or
    any change to the preprocessing (nothing to remember to bump), photos are decoded afresh, never reused.
    """
    source = Path(preprocess.__file__).read_bytes()
    return {"pillow": PIL.__version__, "preprocess": hashlib.sha256(source).hexdigest()[:16]}


def cache_key(photos: PhotoSet, prep: Preprocessing) -> str:
    """The photo set's key: a hash of the format, the settings, the decoder (decoder_record), and every photo's
    content hash and label, in order."""
    text = json.dumps({"format": CACHE_FORMAT, "preprocessing": prep.record(), "decoder": decoder_record(),
                       "digests": list(_digests(photos)), "labels": list(photos.labels)})
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def open_cache(
    photos: PhotoSet, prep: Preprocessing, cache_dir: Path, log: Callable[[str], None] = lambda _: None
) -> PhotoCache:
    """The photo set prepared as prep says, from its cache in cache_dir: checked and reused when there,
    else built (atomically; one process at a time per key, others wait and reuse it).

    Args:
        photos: the photos, with their content hashes (trainer.scan fills them in; computed when absent).
        prep: size, colour, resize method and crop, as edge.preprocess.prepare takes them.
        cache_dir: the cache folder (created when missing).
        log: warnings (a damaged cache being rebuilt) and what is being built.

    Raises:
        CacheError: the folder cannot be written, or no photo could be decoded.
    """
    cache_dir = Path(cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot create the photo cache folder {cache_dir} ({exc.strerror}); pass --cache DIR or --no-cache") from None
    key = cache_key(photos, prep)
    npy, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    with _locked(cache_dir / f"{key}.lock", log):
        if meta_path.exists():
            try:
                return _open(npy, _read_meta(meta_path, key), photos, hit=True)
            except CacheError as exc:
                log(f"warning: the photo cache {npy} is damaged ({exc}); rebuilding it, nothing was trained on it")
                meta_path.unlink(missing_ok=True)
        for stale in leftovers(cache_dir, f"{key}.*"):  # left by a build that was killed (we hold the lock)
            stale.unlink(missing_ok=True)
        log(f"caching {len(photos)} photos at {prep.hw[0]}x{prep.hw[1]} in {npy}")
        meta = _build(photos, prep, key, npy, cache_dir)
        return _open(npy, meta, photos, hit=False)


def _digests(photos: PhotoSet) -> tuple[str, ...]:
    if photos.digests:
        return photos.digests
    return tuple(hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in photos.paths)


@contextmanager
def _locked(path: Path, log: Callable[[str], None]) -> Iterator[None]:
    """An exclusive lock on path for the block (fcntl: released when the process dies); when another process
    holds it, one line says so before waiting."""
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another catdog-train process, which holds the photo cache lock {path} (it is caching the same photos)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_meta(meta_path: Path, key: str) -> dict:
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise CacheError(f"unreadable index {meta_path.name}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT or meta.get("key") != key:
        raise CacheError(f"index {meta_path.name} is not this cache's")
    return meta


def _open(npy: Path, meta: dict, photos: PhotoSet, hit: bool) -> PhotoCache:
    """Check the array file against its index (length, every row's CRC-32) and open it for reading."""
    try:
        handle = open(npy, "rb")
    except OSError as exc:
        raise CacheError(f"cannot open {npy.name} ({exc.strerror})") from None
    try:
        if np.lib.format.read_magic(handle) != (1, 0):  # what _build writes
            raise CacheError("not a cache array")
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        offset = handle.tell()
        crcs = meta["row_crc32"]
        if dtype != np.uint8 or tuple(shape) != tuple(meta["shape"]) or len(crcs) != shape[0]:
            raise CacheError("its array does not match its index")
        row_bytes = int(np.prod(shape[1:]))
        if os.fstat(handle.fileno()).st_size != offset + shape[0] * row_bytes:
            raise CacheError(f"truncated: {os.fstat(handle.fileno()).st_size} bytes, expected {offset + shape[0] * row_bytes}")
        rows_per_read = max(1, READ_BYTES // max(row_bytes, 1))
        for start in range(0, shape[0], rows_per_read):
            data = handle.read(min(rows_per_read, shape[0] - start) * row_bytes)
            for k in range(len(data) // row_bytes):
                if zlib.crc32(data[k * row_bytes : (k + 1) * row_bytes]) != crcs[start + k]:
                    raise CacheError(f"row {start + k} does not match its checksum")
    except (ValueError, KeyError, TypeError, OSError, CacheError) as exc:
        handle.close()
        raise exc if isinstance(exc, CacheError) else CacheError(f"unreadable array {npy.name}: {exc}") from None
    skipped = {int(i): reason for i, reason in meta["skipped"]}
    rows = np.array([i for i in range(len(photos)) if i not in skipped], dtype=np.int64)
    return PhotoCache(
        path=npy, labels=np.array(photos.labels, dtype=np.int64)[rows], paths=tuple(photos.paths[i] for i in rows),
        skipped=tuple((str(photos.paths[i]), reason) for i, reason in sorted(skipped.items())), hit=hit,
        rows=rows, file=handle, offset=offset, row_shape=tuple(shape[1:]),
    )


def _reusable_rows(
    cache_dir: Path, prep: Preprocessing, own: Path
) -> tuple[dict[str, tuple[Path, int, int, int]], dict[Path, set[str]]]:
    """digest -> (array file, header bytes, row, CRC-32) of the rows other caches with these settings hold,
    and each such array file's photo paths."""
    found: dict[str, tuple[Path, int, int, int]] = {}
    paths: dict[Path, set[str]] = {}
    decoder = decoder_record()
    for meta_path in cache_dir.glob("*.json"):
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != CACHE_FORMAT or meta.get("preprocessing") != prep.record() or meta.get("decoder") != decoder:
                continue
            npy = meta_path.with_suffix(".npy")
            if npy == own:
                continue
            skipped = {int(i) for i, _ in meta["skipped"]}
            paths[npy] = set(meta["photos"])
            for row, (digest, crc) in enumerate(zip(meta["digests"], meta["row_crc32"])):
                if row not in skipped:
                    found.setdefault(digest, (npy, int(meta["offset"]), row, int(crc)))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a cache of ours, or damaged: decode instead
    return found, paths


def _build(photos: PhotoSet, prep: Preprocessing, key: str, npy: Path, cache_dir: Path) -> dict:
    """Write the array to a temporary file chunk by chunk, rename it into place, then write the index."""
    digests = _digests(photos)
    shape = (len(photos), *prep.hw, prep.channels)
    row_bytes = int(np.prod(shape[1:]))
    reuse, source_paths = _reusable_rows(cache_dir, prep, npy)
    sources: set[Path] = set()

    def one(i: int) -> np.ndarray | str:
        if digests[i] in reuse:
            src, offset, row, crc = reuse[digests[i]]
            try:
                with open(src, "rb") as f:
                    f.seek(offset + row * row_bytes)
                    data = f.read(row_bytes)
                if len(data) == row_bytes and zlib.crc32(data) == crc:
                    sources.add(src)
                    return np.frombuffer(data, np.uint8).reshape(shape[1:])
            except OSError:
                pass  # gone or unreadable: decode the photo instead
        try:
            pixels = prepare(photos.paths[i], prep.hw, prep.color, prep.method, prep.crop)
        except ImageError as exc:
            return str(exc)
        return pixels.reshape(shape[1:])

    crcs: list[int] = []
    skipped: list[tuple[int, str]] = []
    try:
        with replacing(npy) as tmp, open(tmp, "wb") as f, ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
            offset = f.tell()
            for start in range(0, len(photos), CHUNK_ROWS):
                chunk = np.zeros((min(CHUNK_ROWS, len(photos) - start), *shape[1:]), np.uint8)
                for k, result in enumerate(pool.map(one, range(start, start + len(chunk)))):
                    if isinstance(result, str):
                        skipped.append((start + k, result))
                    else:
                        chunk[k] = result
                    crcs.append(zlib.crc32(chunk[k].tobytes()))
                f.write(chunk.tobytes())
            if skipped and len(skipped) == len(photos):
                raise CacheError(f"none of the {len(photos)} photos could be read; first problem: {skipped[0][1]}")
    except OSError as exc:
        raise CacheError(f"cannot write the photo cache in {cache_dir} ({exc.strerror}); free some space, or pass --cache DIR or --no-cache") from None
    meta = {"format": CACHE_FORMAT, "key": key, "preprocessing": prep.record(), "decoder": decoder_record(), "shape": list(shape),
            "offset": offset, "digests": list(digests), "labels": list(photos.labels), "row_crc32": crcs,
            "skipped": skipped, "photos": [str(p) for p in photos.paths]}
    atomic_write_bytes(npy.with_suffix(".json"), json.dumps(meta).encode())
    ours = set(meta["photos"])
    for src in sources:
        if source_paths.get(src, {""}) <= ours:  # superseded: the same photos (or fewer), some of them changed
            src.with_suffix(".json").unlink(missing_ok=True)
            src.unlink(missing_ok=True)
    return meta


@dataclass(frozen=True)
class CacheEntry:
    """One photo set's cache in a folder."""

    key: str
    """Its key (the files' names)."""
    photos: int
    """Photos it holds rows for."""
    preprocessing: dict
    """Its Preprocessing.record(): size, colour, resize method, crop."""
    size: int
    """Bytes of its files."""


@dataclass(frozen=True)
class CacheUsage:
    """What a cache folder holds."""

    folder: Path
    """The folder."""
    entries: tuple[CacheEntry, ...]
    """The complete caches (an array and its index), largest first."""
    size: int
    """Bytes of all of catdog's cache files in it (unfinished and orphaned ones too)."""


def cache_usage(cache_dir: Path) -> CacheUsage:
    """The caches in cache_dir and the bytes its cache files take (nothing else in the folder is counted).

    Raises:
        CacheError: the folder cannot be listed.
    """
    files = _own_files(Path(cache_dir))
    entries = []
    for meta_path in (f for f in files if f.suffix == ".json"):
        try:
            meta = json.loads(meta_path.read_text())
            size = sum(f.stat().st_size for f in (meta_path, meta_path.with_suffix(".npy")) if f.exists())
            entries.append(CacheEntry(meta_path.stem, len(meta["photos"]) - len(meta["skipped"]), meta["preprocessing"], size))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # damaged or half-removed: counted in size, rebuilt when used
    return CacheUsage(Path(cache_dir), tuple(sorted(entries, key=lambda e: -e.size)), sum(_size(f) for f in files))


def clear_cache(cache_dir: Path) -> tuple[CacheUsage, tuple[str, ...]]:
    """Delete the caches in cache_dir (only catdog's cache files; the folder and anything else in it stay).

    A key another process holds (a fit building or checking it) is left alone; a fit already training on a
    cache keeps reading its open file. The empty lock files stay: deleting one while a fit waits on it
    would let a second fit build the same key at once.

    Returns:
        What was deleted (as cache_usage counted it), and the keys left because a process held them.

    Raises:
        CacheError: the folder cannot be listed.
    """
    before = cache_usage(cache_dir)
    by_key: dict[str, list[Path]] = {}
    for f in _own_files(Path(cache_dir)):
        if f.suffix != ".lock":
            by_key.setdefault(_OWN_FILE.fullmatch(f.name).group(2), []).append(f)  # type: ignore[union-attr]
    busy: list[str] = []
    removed = 0
    for key, files in sorted(by_key.items()):
        with open(Path(cache_dir) / f"{key}.lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy.append(key)
                continue
            for f in files:
                removed += _size(f)
                f.unlink(missing_ok=True)
    return CacheUsage(before.folder, tuple(e for e in before.entries if e.key not in busy), removed), tuple(busy)


def _own_files(cache_dir: Path) -> list[Path]:
    if not cache_dir.exists():
        return []
    try:
        return sorted(f for f in cache_dir.iterdir() if _OWN_FILE.fullmatch(f.name) and f.is_file())
    except OSError as exc:
        raise CacheError(f"cannot list the photo cache folder {cache_dir} ({exc.strerror})") from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
