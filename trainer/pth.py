"""Read a PyTorch state dict saved in the legacy (pre-1.6) format into numpy arrays, without PyTorch.

The legacy format is a run of pickles followed by raw tensor data:
  1. the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001 and a dict of system info;
  2. the state dict, whose tensors are torch._utils._rebuild_tensor_v2(storage, offset, size,
     stride, ...) calls over storages referred to by persistent id
     ("storage", StorageClass, key, location, element_count, view_metadata);
  3. the list of storage keys, in the order their data follows;
  4. for each storage: its element count (little-endian int64), then its elements (little-endian).

Unpickling runs code named by the file, so a restricted unpickler admits only the few globals
above (the tensor rebuild function, the storage classes, OrderedDict) and refuses everything else:
a weights file never gets to run a function of its choosing.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import WeightsError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: torch.<Name>Storage -> the numpy dtype of its elements (stored little-endian).
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
    "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


@dataclass(frozen=True)
class _StorageType:
    """A torch storage class named by the file (only its element type matters)."""

    dtype: str


@dataclass(frozen=True)
class _Storage:
    """A storage named by persistent id: its key in the data section and its element type."""

    key: str
    dtype: str
    count: int


@dataclass(frozen=True)
class _TensorRef:
    """A tensor as the state dict describes it: a strided view of a storage, filled in once data is read."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object, *_: object) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor refers to something that is not a storage")
    if not isinstance(offset, int) or not all(isinstance(v, int) for v in (*size, *stride)):  # type: ignore[union-attr]
        raise pickle.UnpicklingError("a tensor's offset, size or stride is not made of integers")
    return _TensorRef(storage, offset, tuple(size), tuple(stride))  # type: ignore[arg-type]


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only what a legacy state dict needs and refuses every other global."""

    def __init__(self, file: io.BytesIO):
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}
        """Every storage the pickle named, by key."""

    def find_class(self, module: str, name: str) -> object:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only tensors and storages may be in a weights file")

    def persistent_load(self, pid: object) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, count = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (torch < 0.4 files) are not supported")
        if not isinstance(key, str) or not isinstance(count, int) or count < 0:
            raise pickle.UnpicklingError("a storage has an invalid key or size")
        storage = self.storages.setdefault(key, _Storage(key, storage_type.dtype, count))
        if storage.dtype != storage_type.dtype:
            raise pickle.UnpicklingError(f"storage {key} is named with two element types")
        return storage


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format PyTorch state dict, by name, as numpy arrays.

    Args:
        path: a .pth file written by torch.save(state_dict) before PyTorch 1.6 (or with
            _use_new_zipfile_serialization=False).

    Returns:
        name -> array in PyTorch's layout (e.g. convolutions (out, in, height, width)), in file order.

    Raises:
        WeightsError: the file is missing, truncated, zip-format, not a state dict, or names a
            global that is not a tensor or storage.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such weights file; check the path") from None
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read the weights file ({exc.strerror})") from None
    if data[:4] == b"PK\x03\x04":
        raise WeightsError(
            f"{path}: a zip-format .pth (saved by PyTorch >= 1.6) is not supported; re-save it with "
            "torch.save(state_dict, path, _use_new_zipfile_serialization=False)"
        )
    stream = io.BytesIO(data)
    try:
        return _read(stream, len(data))
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            struct.error, RecursionError, MemoryError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"{path}: not a readable legacy PyTorch weights file ({reason})") from None


def _read(stream: io.BytesIO, size: int) -> dict[str, np.ndarray]:
    header = [_RestrictedUnpickler(stream).load() for _ in range(3)]
    if header[0] != MAGIC_NUMBER or header[1] != PROTOCOL_VERSION:
        raise WeightsError("not a legacy PyTorch weights file (no torch.save magic number)")
    unpickler = _RestrictedUnpickler(stream)
    state = unpickler.load()
    keys = _RestrictedUnpickler(stream).load()
    if not isinstance(state, dict) or not isinstance(keys, list):
        raise WeightsError("the file holds no state dict (a dict of tensors)")
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        if key not in unpickler.storages:
            raise WeightsError(f"the data section lists storage {key!r}, which no tensor names")
        (count,) = struct.unpack("<q", _take(stream, 8))
        dtype = np.dtype(unpickler.storages[key].dtype)
        if count < 0 or count * dtype.itemsize > size - stream.tell():
            raise WeightsError(f"storage {key} claims {count} elements, more than the file holds (truncated?)")
        storages[key] = np.frombuffer(_take(stream, count * dtype.itemsize), dtype=dtype)
    arrays = {}
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            raise WeightsError(f"entry {name!r} of the state dict is not a tensor")
        arrays[str(name)] = _tensor(name, ref, storages)
    return arrays


def _take(stream: io.BytesIO, n: int) -> bytes:
    chunk = stream.read(n)
    if len(chunk) != n:
        raise WeightsError("the file ends early (truncated?)")
    return chunk


def _tensor(name: str, ref: _TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    storage = storages.get(ref.storage.key)
    if storage is None:
        raise WeightsError(f"tensor {name!r} refers to storage {ref.storage.key}, which has no data")
    if len(ref.size) != len(ref.stride) or min((*ref.size, *ref.stride, ref.offset), default=0) < 0:
        raise WeightsError(f"tensor {name!r} has an invalid size {ref.size} or stride {ref.stride}")
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride)) if all(ref.size) else ref.offset - 1
    if last >= len(storage):
        raise WeightsError(f"tensor {name!r} reaches past the end of its storage")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[ref.offset:], shape=ref.size, strides=tuple(s * item for s in ref.stride), writeable=False
    )
    return np.array(view)  # a copy: contiguous, writable, and free of the file's buffer
