"""Bounds-checked reads of the flatbuffer primitives a TFLite file is made of (tables, vectors, strings).

Only what edge.metadata and edge.modelcheck need; every read checks its offset against the file, so
a damaged or hostile file gives a ModelError, never an IndexError, a hang or a large allocation:
vectors are ranges (no list is built), their lengths are capped by the bytes left in the file, and
a walk may visit at most a few vector elements (or copy a few string bytes) per byte of the file in
total (WORK_PER_BYTE), so tables that share children or point back at each other cannot make it
loop for long.
"""

from __future__ import annotations

import struct

from .errors import ModelError

IDENTIFIER = b"TFL3"
HEADER = 8  # root uoffset (4 bytes) + file identifier (4 bytes)
ALIGN = 16  # Buffer.data is force_align: 16 in the schema
#: Vector elements a walk may visit per byte of the file (a valid model visits well under one).
WORK_PER_BYTE = 4

_U16, _U32, _I32, _I64, _U64, _F32 = (struct.Struct(f).unpack_from for f in ("<H", "<I", "<i", "<q", "<Q", "<f"))


class Reader:
    """Bounds-checked reads of flatbuffer primitives from a TFLite file."""

    def __init__(self, data: bytes, source: str):
        self.data = data
        self.size = len(data)
        self.source = source
        # Field offsets per vtable and per table, read once: at most one entry per table in the file.
        self._vtables: dict[int, tuple[int, ...]] = {}
        self._tables: dict[int, tuple[int, ...]] = {}
        self.work_left = WORK_PER_BYTE * len(data) + 1024

    def fail(self, what: str) -> ModelError:
        return ModelError(f"{self.source}: not a valid TFLite flatbuffer ({what}); export it with catdog-train export")

    def _outside(self, pos: int) -> ModelError:
        return self.fail(f"offset {pos} outside the {self.size}-byte file")

    # One struct.Struct per primitive and one call per read: a model check makes tens of thousands.
    def u8(self, pos: int) -> int:
        if pos < 0 or pos + 1 > self.size:
            raise self._outside(pos)
        return self.data[pos]

    def u16(self, pos: int) -> int:
        if pos < 0 or pos + 2 > self.size:
            raise self._outside(pos)
        return _U16(self.data, pos)[0]

    def u32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > self.size:
            raise self._outside(pos)
        return _U32(self.data, pos)[0]

    def i32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > self.size:
            raise self._outside(pos)
        return _I32(self.data, pos)[0]

    def i64(self, pos: int) -> int:
        if pos < 0 or pos + 8 > self.size:
            raise self._outside(pos)
        return _I64(self.data, pos)[0]

    def u64(self, pos: int) -> int:
        if pos < 0 or pos + 8 > self.size:
            raise self._outside(pos)
        return _U64(self.data, pos)[0]

    def f32(self, pos: int) -> float:
        if pos < 0 or pos + 4 > self.size:
            raise self._outside(pos)
        return _F32(self.data, pos)[0]

    def field_pos(self, table: int, field: int) -> int | None:
        """Absolute position of a table field, None when the field is absent (default)."""
        offsets = self._tables.get(table)
        if offsets is None:
            offsets = self._tables[table] = self._field_offsets(table)
        offset = offsets[field] if field < len(offsets) else 0
        return table + offset if offset else None

    def _field_offsets(self, table: int) -> tuple[int, ...]:
        """The field offsets of a table's vtable, read once per vtable (tables often share one)."""
        vtable = table - self.i32(table)
        offsets = self._vtables.get(vtable)
        if offsets is None:
            count = max(self.u16(vtable) - 4, 0) // 2
            if vtable + 4 + 2 * count > self.size:
                raise self.fail(f"a vtable at {vtable} runs past the end of the file")
            offsets = self._vtables[vtable] = struct.unpack_from(f"<{count}H", self.data, vtable + 4)
        return offsets

    def field_count(self, table: int) -> int:
        """How many field slots the table's vtable has."""
        return (self.u16(table - self.i32(table)) - 4) // 2

    def table(self, pos: int) -> int:
        """Follow the uoffset at pos to a table, after checking that its vtable and its fields lie in the file."""
        table = self.deref(pos)
        vtable = table - self.i32(table)
        vtable_size, table_size = self.u16(vtable), self.u16(vtable + 2)
        if vtable_size < 4 or vtable + vtable_size > self.size or table + max(table_size, 4) > self.size:
            raise self.fail(f"a table at {table} runs past the end of the file")
        return table

    def deref(self, pos: int) -> int:
        """Follow the uoffset stored at pos."""
        return pos + self.u32(pos)

    def vector(self, table: int, field: int, width: int = 4) -> range:
        """Absolute positions of a vector field's elements, each width bytes (empty when absent).

        For a vector of tables the elements are uoffset slots (follow them with deref).
        """
        pos = self.field_pos(table, field)
        if pos is None:
            return range(0)
        start = self.deref(pos)
        length = self.u32(start)
        if start + 4 + width * length > self.size:
            raise self.fail("vector runs past the end of the file")
        self._charge(length)
        return range(start + 4, start + 4 + width * length, width)

    def string(self, pos: int) -> bytes:
        """A copy of the bytes of the string (or ubyte vector) whose uoffset is at pos."""
        start, length = self.span(pos)
        self._charge(length // 4)  # a copy of 4 bytes costs about one vector element
        return self.data[start : start + length]

    def _charge(self, work: int) -> None:
        self.work_left -= work
        if self.work_left < 0:
            raise self.fail("its tables share or repeat vectors and strings far more than a model does")

    def span(self, pos: int) -> tuple[int, int]:
        """(start, length) of the string or ubyte vector whose uoffset is at pos, without copying it."""
        start = self.deref(pos)
        length = self.u32(start)
        if start + 4 + length > self.size:
            raise self.fail("string runs past the end of the file")
        return start + 4, length


def open_model(data: bytes, source: str) -> tuple[Reader, int]:
    """A Reader over a TFLite file's bytes and the position of its root Model table.

    Raises:
        ModelError: the bytes do not carry the TFL3 file identifier.
    """
    reader = Reader(data, source)
    if len(data) < HEADER + 4 or data[4:8] != IDENTIFIER:
        raise reader.fail("no TFL3 file identifier")
    return reader, reader.u32(0)
