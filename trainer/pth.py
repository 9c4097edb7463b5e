"""Read a PyTorch state dict saved in the legacy (pre-1.6) format into numpy arrays, without PyTorch.

The legacy format is a run of pickles followed by raw tensor data:
  1. the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001 and a dict of system info;
  2. the state dict, whose tensors are torch._utils._rebuild_tensor_v2(storage, offset, size,
     stride, ...) calls over storages referred to by persistent id
     ("storage", StorageClass, key, location, element_count, view_metadata);
  3. the list of storage keys, in the order their data follows;
  4. for each storage: its element count (little-endian int64), then its elements (little-endian).

Unpickling runs code named by the file, and even pickle's own opcodes can be turned against the
reader (BUILD rewrites objects' attributes, a dict key made of shared nested tuples takes 2**depth
steps to hash). So the pickles are not given to pickle.Unpickler: a small stack machine over
pickletools.genops builds only plain values (None, bools, numbers, strings, tuples, lists, dicts
with string keys) and the few globals a state dict needs (the tensor rebuild function, the storage
classes, OrderedDict), and refuses every other global and opcode. The reading is linear in the
file's size: the pickles may take at most WORK_PER_BYTE steps per byte of the file (see
_state_pickle.Work), the tensors at most VIEW_BUDGET times the elements of the data, and nothing is
allocated by a count the file declares before the count is checked against the bytes that are there.
"""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path

import numpy as np

from ._state_pickle import Refused, Storage, TensorRef, Work, load, show
from .errors import WeightsError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: The tensors may hold at most this many times the elements of their storages. Views overlap a little
#: in real files (a transposed view, tied weights); a file naming one storage thousands of times only
#: wants the reader to allocate, and this keeps memory linear in the file's size.
VIEW_BUDGET = 4
#: The pickles may take this many steps (opcodes, and the lengths of the strings and runs of items they touch)
#: per byte of the file. A real state dict takes under 2 (tests/trainer/test_pth.py measures it); a file that
#: asks for more is crafted to make the reader slow, and is refused.
WORK_PER_BYTE = 16


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
    return read_state_dict_bytes(data, str(path))


def read_state_dict_bytes(data: bytes, source: str) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format PyTorch state dict held in memory (see read_state_dict).

    Args:
        data: the bytes of the .pth file.
        source: where they came from (a path), the start of every error message.

    Returns:
        name -> array (a copy, independent of data), in file order; tensors that are one object in
        the file (tied weights) are one array.

    Raises:
        WeightsError: one line starting with source, for any bytes that are not a readable legacy state dict.
    """
    if data[:4] == b"PK\x03\x04":
        raise WeightsError(
            f"{source}: a zip-format .pth (saved by PyTorch >= 1.6) is not supported; re-save it with "
            "torch.save(state_dict, path, _use_new_zipfile_serialization=False)"
        )
    try:
        return _read(bytes(data))
    except WeightsError as exc:
        raise WeightsError(f"{source}: {exc}") from None
    except (Refused, ValueError, EOFError, struct.error, MemoryError) as exc:
        # ValueError: pickletools cannot parse an opcode, or numpy refuses a shape.
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise WeightsError(f"{source}: not a readable legacy PyTorch weights file ({reason})") from None


def _read(data: bytes) -> dict[str, np.ndarray]:
    stream = io.BytesIO(data)
    work = Work(WORK_PER_BYTE * len(data))
    no_storages: dict[str, Storage] = {}
    magic = load(stream, no_storages, work)
    if type(magic) is not int or magic != MAGIC_NUMBER:
        raise WeightsError("not a legacy PyTorch weights file (no torch.save magic number)")
    protocol = load(stream, no_storages, work)
    if type(protocol) is not int or protocol != PROTOCOL_VERSION:
        raise WeightsError(f"unsupported torch.save protocol (expected {PROTOCOL_VERSION})")
    load(stream, no_storages, work)  # system info (endianness, type sizes): the data is always little-endian
    storages: dict[str, Storage] = {}
    state = load(stream, storages, work)
    if not isinstance(state, dict) or no_storages:
        raise WeightsError("the file holds no state dict (a dict of tensors)")
    keys = load(stream, no_storages, work)
    if not isinstance(keys, list) or not all(type(key) is str for key in keys) or no_storages:
        raise WeightsError("the list of storage keys after the state dict is not a list of strings")
    blocks: dict[str, np.ndarray] = {}
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise WeightsError(f"the data section lists storage {show(key)}, which no tensor names")
        if key in blocks:
            raise WeightsError(f"the data section lists storage {show(key)} twice")
        (count,) = struct.unpack("<q", _take(stream, 8))
        dtype = np.dtype(storage.dtype)
        if count != storage.count:
            raise WeightsError(f"storage {show(key)} has {count} elements in the data section, {storage.count} in the state dict")
        start = stream.tell()
        # Checked before anything is allocated: the count comes from the file.
        if count * dtype.itemsize > len(data) - start:
            raise WeightsError(f"storage {show(key)} claims {count} elements, more than the file holds (truncated?)")
        blocks[key] = np.frombuffer(data, dtype=dtype, count=count, offset=start)
        stream.seek(start + count * dtype.itemsize)
    budget = VIEW_BUDGET * sum(block.size for block in blocks.values())
    arrays: dict[str, np.ndarray] = {}
    built: dict[int, np.ndarray] = {}  # id(TensorRef) -> its array: tied weights stay one array
    for name, ref in state.items():
        if type(name) is not str or not isinstance(ref, TensorRef):
            raise WeightsError(f"entry {show(str(name)) if type(name) is str else type(name).__name__} of the state dict is not a named tensor")
        if id(ref) not in built:
            view = _view(name, ref, blocks)
            budget -= view.size
            if budget < 0:
                raise WeightsError(f"the tensors hold more than {VIEW_BUDGET} times the elements of their storages")
            built[id(ref)] = np.array(view)  # a copy: contiguous, writable, and free of the file's buffer
        arrays[name] = built[id(ref)]
    return arrays


def _take(stream: io.BytesIO, n: int) -> bytes:
    chunk = stream.read(n)
    if len(chunk) != n:
        raise WeightsError("the file ends early (truncated?)")
    return chunk


def _view(name: str, ref: TensorRef, blocks: dict[str, np.ndarray]) -> np.ndarray:
    """ref's strided view of its storage (no copy); every size, stride and offset is checked first."""
    storage = blocks.get(ref.storage.key)
    if storage is None:
        raise WeightsError(f"tensor {show(name)} refers to storage {show(ref.storage.key)}, which has no data")
    elements = math.prod(ref.size)
    if elements == 0:
        return np.zeros(ref.size, dtype=storage.dtype)
    if elements > storage.size:
        # Stride-0 views could repeat one element a billion times; no state dict needs that.
        raise WeightsError(f"tensor {show(name)} has {elements} elements, more than its storage's {storage.size}")
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if last >= storage.size:
        raise WeightsError(f"tensor {show(name)} reaches past the end of its storage")
    # Every dimension here is >= 1 and <= elements; a stride over a dimension of 1 is never used and may be
    # anything in the file, so it is zeroed rather than multiplied into an int64 overflow.
    strides = tuple(s * storage.itemsize if n > 1 else 0 for n, s in zip(ref.size, ref.stride))
    return np.lib.stride_tricks.as_strided(storage[ref.offset:], shape=ref.size, strides=strides, writeable=False)
