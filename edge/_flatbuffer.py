"""Bounds-checked reads of the flatbuffer primitives a TFLite file is made of (tables, vectors, strings).

Only what edge.metadata needs to find and rewrite the Model table's metadata and buffers; every
read checks its offset against the file, so a damaged file gives a ModelError, not an IndexError.
"""

from __future__ import annotations

import struct

from .errors import ModelError

IDENTIFIER = b"TFL3"
HEADER = 8  # root uoffset (4 bytes) + file identifier (4 bytes)
ALIGN = 16  # Buffer.data is force_align: 16 in the schema


class Reader:
    """Bounds-checked reads of flatbuffer primitives from a TFLite file."""

    def __init__(self, data: bytes, source: str):
        self.data = data
        self.source = source

    def fail(self, what: str) -> ModelError:
        return ModelError(f"{self.source}: not a valid TFLite flatbuffer ({what}); export it with catdog-train export")

    def _unpack(self, fmt: str, pos: int) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise self.fail(f"offset {pos} outside the {len(self.data)}-byte file")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def u16(self, pos: int) -> int:
        return self._unpack("<H", pos)

    def u32(self, pos: int) -> int:
        return self._unpack("<I", pos)

    def i32(self, pos: int) -> int:
        return self._unpack("<i", pos)

    def u64(self, pos: int) -> int:
        return self._unpack("<Q", pos)

    def field_pos(self, table: int, field: int) -> int | None:
        """Absolute position of a table field, None when the field is absent (default)."""
        vtable = table - self.i32(table)
        vtable_size = self.u16(vtable)
        slot = 4 + 2 * field
        if slot + 2 > vtable_size:
            return None
        offset = self.u16(vtable + slot)
        return table + offset if offset else None

    def field_count(self, table: int) -> int:
        """How many field slots the table's vtable has."""
        return (self.u16(table - self.i32(table)) - 4) // 2

    def deref(self, pos: int) -> int:
        """Follow the uoffset stored at pos."""
        return pos + self.u32(pos)

    def vector(self, table: int, field: int) -> list[int]:
        """Absolute positions of the elements' uoffset slots of a vector-of-tables field ([] when absent)."""
        pos = self.field_pos(table, field)
        if pos is None:
            return []
        start = self.deref(pos)
        length = self.u32(start)
        if start + 4 + 4 * length > len(self.data):
            raise self.fail("vector runs past the end of the file")
        return [start + 4 + 4 * i for i in range(length)]

    def string(self, pos: int) -> bytes:
        """The bytes of the string (or ubyte vector) whose uoffset is at pos."""
        start = self.deref(pos)
        length = self.u32(start)
        if start + 4 + length > len(self.data):
            raise self.fail("string runs past the end of the file")
        return self.data[start + 4 : start + 4 + length]


def open_model(data: bytes, source: str) -> tuple[Reader, int]:
    """A Reader over a TFLite file's bytes and the position of its root Model table.

    Raises:
        ModelError: the bytes do not carry the TFL3 file identifier.
    """
    reader = Reader(data, source)
    if len(data) < HEADER + 4 or data[4:8] != IDENTIFIER:
        raise reader.fail("no TFL3 file identifier")
    return reader, reader.u32(0)
