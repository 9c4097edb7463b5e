"""The model contract inside the .tflite file: embed and read it in the flatbuffer's metadata, without TensorFlow.

A TFLite file is a flatbuffer (schema: tensorflow/compiler/mlir/lite/schema/schema.fbs) whose root
``Model`` table has ``buffers: [Buffer]`` (field 4) and ``metadata: [Metadata]`` (field 6), where
``Metadata {name: string; buffer: uint}`` names a buffer and ``Buffer {data: [ubyte]; ...}`` holds bytes.
The contract is stored as UTF-8 JSON in one such buffer, under the name ``CONTRACT_NAME``.

Reading needs only the few tables above, so it is written by hand (here and in _flatbuffer.py: no flatbuffers package, no
generated schema code, nothing beyond the standard library): it works wherever the TFLite runtime does.

Writing inserts a block right after the file's 8-byte header (root offset + "TFL3") holding a new root
``Model`` table, new ``metadata`` and ``buffers`` vectors, and the new entry. Flatbuffer offsets are
relative and point forward, so every old table keeps pointing at its old children when the old bytes
move back as a whole; the block's length is a multiple of 16 so tensor data keeps its alignment. Every
old field, metadata entry and buffer is kept as it was; an older catdog contract entry is dropped from
the metadata list (its bytes stay in the file, unreferenced). embed_entry does the same for any
named entry (edge.std_metadata stores the standard TFLITE_METADATA with it).
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
from pathlib import Path
from typing import Any

from ._flatbuffer import ALIGN, HEADER, IDENTIFIER, Reader, open_model
from .errors import ModelError

#: Metadata name of the embedded contract (the TFLite converter uses names such as "min_runtime_version").
CONTRACT_NAME = "catdog_contract"
#: Largest contract JSON read (a real one is about 3 KB; training and metrics are free form).
MAX_CONTRACT_BYTES = 1 << 20

# Model table fields (schema.fbs): 0 version: uint, then offsets to strings, vectors and tables.
_MODEL_FIELDS = 10
_BUFFERS, _METADATA, _EXTERNAL_GROUPS, _EXTERNAL_BUFFERS = 4, 6, 8, 9


def _buffer_span(reader: Reader, buffers: range, index: int) -> tuple[int, int]:
    """(start, length) in the file of buffer index's bytes."""
    if index >= len(buffers):
        raise reader.fail(f"metadata points at buffer {index} of {len(buffers)}")
    buffer = reader.deref(buffers[index])
    data_pos = reader.field_pos(buffer, 0)
    if data_pos is not None:
        return reader.span(data_pos)
    offset_pos, size_pos = reader.field_pos(buffer, 1), reader.field_pos(buffer, 2)
    if offset_pos is None or size_pos is None:
        return 0, 0
    # Large models keep buffer bytes after the flatbuffer, at an offset from the start of the file.
    offset, size = reader.u64(offset_pos), reader.u64(size_pos)
    if offset + size > len(reader.data):
        raise reader.fail("buffer runs past the end of the file")
    return offset, size


def _metadata_spans(model: bytes, source: str) -> dict[str, tuple[int, int]]:
    """Every metadata entry, name -> (start, length) of its bytes in the file (nothing copied)."""
    reader, root = open_model(model, source)
    buffers = reader.vector(root, _BUFFERS)
    entries: dict[str, tuple[int, int]] = {}
    for slot in reader.vector(root, _METADATA):
        table = reader.deref(slot)
        name_pos, buffer_pos = reader.field_pos(table, 0), reader.field_pos(table, 1)
        if name_pos is None:
            continue
        name = reader.string(name_pos).decode("utf-8", errors="replace")
        entries[name] = _buffer_span(reader, buffers, reader.u32(buffer_pos) if buffer_pos is not None else 0)
    return entries


def read_metadata(model: bytes, source: str = "model") -> dict[str, bytes]:
    """Every metadata entry of a TFLite model, name -> bytes (e.g. "min_runtime_version").

    Raises:
        ModelError: the bytes are not a TFLite flatbuffer, or its entries together hold more bytes
            than the file (entries sharing one large buffer: copying each would use memory out of
            proportion to the file).
    """
    spans = _metadata_spans(model, source)
    if sum(length for _, length in spans.values()) > len(model):
        raise ModelError(f"{source}: not a valid TFLite flatbuffer (its metadata entries overlap); export it with catdog-train export")
    return {name: bytes(model[start : start + length]) for name, (start, length) in spans.items()}


def parse_contract_json(raw: bytes, source: str) -> dict[str, Any]:
    """The one strict reader of contract JSON, embedded or sidecar: a JSON object or a ModelError.

    Refuses what Python's json accepts but a contract never holds, each with one clear error: more
    than MAX_CONTRACT_BYTES, invalid UTF-8, NaN or Infinity (and numbers too large for a float),
    duplicate keys, integers of thousands of digits, nesting deeper than the interpreter's recursion
    limit.

    Raises:
        ModelError: raw is not such a JSON object.
    """
    if len(raw) > MAX_CONTRACT_BYTES:
        raise ModelError(f"{source}: the contract is {len(raw)} bytes, over {MAX_CONTRACT_BYTES}; re-export the model")
    try:
        data = json.loads(
            bytes(raw).decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise ModelError(f"{source}: the contract is not valid JSON ({reason}); re-export the model") from None
    if not isinstance(data, dict):
        raise ModelError(f"{source}: the contract is not a JSON object; re-export the model")
    return data


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return data


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too large for a float")
    return value


def read_embedded_contract(model: str | Path | bytes, source: str | None = None) -> dict[str, Any] | None:
    """The contract embedded in a .tflite file, as the dict ModelContract.from_dict takes.

    Args:
        model: a .tflite path, or the file's bytes.
        source: the name errors give the file (default: its path, or "model" for bytes).

    Returns:
        The contract dict, or None when the model has no embedded contract (e.g. exported by an
        older catdog, or by another tool).

    Raises:
        ModelError: the file is missing, is not a TFLite flatbuffer, or its contract is not JSON.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        return _embedded_contract(bytes(model), source or "model")
    path = Path(model)
    try:
        with path.open("rb") as file:
            if os.fstat(file.fileno()).st_size == 0:
                return _embedded_contract(b"", str(path))
            # Mapped, not read: only the few pages the contract's entry is on are read (a model is megabytes).
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _embedded_contract(data, str(path))
    except FileNotFoundError:
        raise ModelError(f"{path}: model not found; pass a .tflite file made by catdog-train export") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model ({exc.strerror})") from None


def _embedded_contract(data: bytes | mmap.mmap, source: str) -> dict[str, Any] | None:
    span = _metadata_spans(data, source).get(CONTRACT_NAME)
    if span is None:
        return None
    start, length = span
    return parse_contract_json(data[start : start + length], f"{source} (embedded contract)")


def embed_contract(tflite_bytes: bytes, contract_json: bytes) -> bytes:
    """A copy of a TFLite model with the contract JSON embedded in its metadata (replacing an older one).

    Args:
        tflite_bytes: the .tflite file's bytes.
        contract_json: UTF-8 JSON of the contract (ModelContract.to_dict()).

    Returns:
        The new file's bytes; the graph, weights and other metadata are unchanged.

    Raises:
        ModelError: the bytes are not a TFLite flatbuffer, or the model keeps its weights outside the
            flatbuffer (models over 2 GB), whose absolute offsets this cannot move.
        ValueError: contract_json is not a JSON object.
    """
    if not isinstance(json.loads(contract_json), dict):
        raise ValueError("contract_json must be a JSON object")
    return embed_entry(tflite_bytes, CONTRACT_NAME, contract_json)


def embed_entry(tflite_bytes: bytes, entry_name: str, payload: bytes) -> bytes:
    """A copy of a TFLite model with a metadata entry entry_name holding payload (replacing an older one
    of that name). Bytes after the flatbuffer (a zip archive of associated files) move back with it.

    Raises:
        ModelError: as embed_contract.
    """
    reader, root = open_model(tflite_bytes, "model")
    if reader.field_count(root) > _MODEL_FIELDS:
        raise reader.fail(f"its Model table has {reader.field_count(root)} fields, newer than this reader knows")
    if reader.vector(root, _EXTERNAL_GROUPS) or reader.vector(root, _EXTERNAL_BUFFERS):
        raise ModelError("the model keeps its weights in external buffers; embed the contract before splitting it")
    buffer_slots = reader.vector(root, _BUFFERS)
    for slot in buffer_slots:
        offset_pos = reader.field_pos(reader.deref(slot), 1)
        if offset_pos is not None and reader.u64(offset_pos) > 1:
            raise ModelError("the model keeps buffer data after the flatbuffer (over 2 GB?); cannot embed a contract")
    kept_metadata = []
    for slot in reader.vector(root, _METADATA):
        name_pos = reader.field_pos(reader.deref(slot), 0)
        if name_pos is None or reader.string(name_pos) != entry_name.encode():
            kept_metadata.append(slot)
    old_fields = {f: reader.field_pos(root, f) for f in range(_MODEL_FIELDS)}
    name = entry_name.encode()

    # Lay the block out first (sizes do not depend on where the old bytes go), then fill it in.
    block = _Block()
    model_vtable = block.take(4 + 2 * _MODEL_FIELDS, 2)
    model_table = block.take(4 + 4 * _MODEL_FIELDS, 4)
    metadata_vector = block.take(4 + 4 * (len(kept_metadata) + 1), 4)
    buffers_vector = block.take(4 + 4 * (len(buffer_slots) + 1), 4)
    entry_vtable = block.take(8, 2)
    entry_table = block.take(12, 4)
    buffer_vtable = block.take(6, 2)
    buffer_table = block.take(8, 4)
    name_string = block.take(4 + len(name) + 1, 4)
    data_vector = block.take(4 + len(payload), ALIGN, prefix=4)
    shift = block.finish(ALIGN)

    out = bytearray(HEADER + shift) + bytearray(tflite_bytes[HEADER:])
    out[4:8] = IDENTIFIER

    def put(fmt: str, pos: int, value: int) -> None:
        struct.pack_into(fmt, out, pos, value)

    def point(pos: int, target: int) -> None:
        """Store at pos the uoffset to target (both absolute in the new file)."""
        put("<I", pos, target - pos)

    def moved(old_pos: int) -> int:
        return old_pos + shift

    put("<I", 0, model_table)
    # Model: a vtable slot for every known field, each 4 bytes wide in the table.
    put("<H", model_vtable, 4 + 2 * _MODEL_FIELDS)
    put("<H", model_vtable + 2, 4 + 4 * _MODEL_FIELDS)
    put("<i", model_table, model_table - model_vtable)
    for field in range(_MODEL_FIELDS):
        pos = model_table + 4 + 4 * field
        put("<H", model_vtable + 4 + 2 * field, 4 + 4 * field)
        if field == _METADATA:
            point(pos, metadata_vector)
        elif field == _BUFFERS:
            point(pos, buffers_vector)
        elif old_fields[field] is None:
            put("<H", model_vtable + 4 + 2 * field, 0)
        elif field == 0:
            put("<I", pos, reader.u32(old_fields[0]))
        else:
            point(pos, moved(reader.deref(old_fields[field])))
    # metadata: the kept entries, then ours.
    put("<I", metadata_vector, len(kept_metadata) + 1)
    for i, slot in enumerate(kept_metadata):
        point(metadata_vector + 4 + 4 * i, moved(reader.deref(slot)))
    point(metadata_vector + 4 + 4 * len(kept_metadata), entry_table)
    # buffers: all old ones, then ours.
    put("<I", buffers_vector, len(buffer_slots) + 1)
    for i, slot in enumerate(buffer_slots):
        point(buffers_vector + 4 + 4 * i, moved(reader.deref(slot)))
    point(buffers_vector + 4 + 4 * len(buffer_slots), buffer_table)
    # Metadata {name: string (field 0); buffer: uint (field 1)}.
    put("<H", entry_vtable, 8)
    put("<H", entry_vtable + 2, 12)
    put("<H", entry_vtable + 4, 4)
    put("<H", entry_vtable + 6, 8)
    put("<i", entry_table, entry_table - entry_vtable)
    point(entry_table + 4, name_string)
    put("<I", entry_table + 8, len(buffer_slots))
    # Buffer {data: [ubyte] (field 0)}.
    put("<H", buffer_vtable, 6)
    put("<H", buffer_vtable + 2, 8)
    put("<H", buffer_vtable + 4, 4)
    put("<i", buffer_table, buffer_table - buffer_vtable)
    point(buffer_table + 4, data_vector)
    put("<I", name_string, len(name))
    out[name_string + 4 : name_string + 4 + len(name)] = name
    put("<I", data_vector, len(payload))
    out[data_vector + 4 : data_vector + 4 + len(payload)] = payload
    return bytes(out)


class _Block:
    """Positions of the objects in the inserted block (absolute positions in the new file)."""

    def __init__(self) -> None:
        self.end = HEADER

    def take(self, size: int, align: int, prefix: int = 0) -> int:
        """Reserve size bytes so that position + prefix is a multiple of align; return the position."""
        self.end += (-(self.end + prefix)) % align
        pos = self.end
        self.end += size
        return pos

    def finish(self, align: int) -> int:
        """Pad to align and return the block's length."""
        self.end += (-self.end) % align
        return self.end - HEADER
