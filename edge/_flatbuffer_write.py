"""New flatbuffer objects written into a TFLite file, in a block inserted after its 8-byte header, without TensorFlow.

The way edge.metadata embeds the contract, generalised: the new objects (a new root Model table, and what it
points to) are laid out in a block between the header and the old bytes, which move by the block's length
(a multiple of 16, so Buffer data stays aligned). Offsets inside the old bytes are relative, so they still
hold; a new object points at an old one with `Old(position in the original file)`. A flatbuffer offset
(uoffset) points forward only, so the objects are laid out parents first (a pre-order walk from the root),
and every old object lies after the block.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from ._flatbuffer import ALIGN, HEADER, IDENTIFIER
from .errors import ModelError


@dataclass(frozen=True)
class Old:
    """An object of the original file: its absolute position there."""

    pos: int


@dataclass(eq=False)
class String:
    """A string (or a ubyte vector without alignment needs)."""

    data: bytes


@dataclass(eq=False)
class Scalars:
    """A vector of numbers, its data aligned to `align` bytes (Buffer.data needs 16)."""

    values: np.ndarray
    align: int = 4


@dataclass(eq=False)
class Refs:
    """A vector of tables or strings (uoffsets)."""

    items: list["Ref"]


@dataclass(eq=False)
class Table:
    """A table: {field number: value}, a value either a reference or a (struct format, number) scalar."""

    fields: dict[int, Union["Ref", tuple[str, float]]] = field(default_factory=dict)


Ref = Union[Old, String, Scalars, Refs, Table]


def insert(original: bytes, root: Table) -> bytes:
    """The original file with root as its new root Model table and the new objects in a block after the header.

    Args:
        original: a TFLite file's bytes (nothing after the flatbuffer that holds absolute offsets).
        root: the new root table; its references reach the other new objects and old ones.

    Returns:
        The new file's bytes.
    """
    order: list[Ref] = []
    placed: dict[int, int] = {}
    _walk(root, order, placed)
    end = HEADER
    positions: dict[int, int] = {}
    vtables: dict[int, int] = {}
    for node in order:
        if isinstance(node, Table):
            end += end % 2
            vtables[id(node)] = end
            end += 4 + 2 * (max(node.fields, default=-1) + 1)
            end += (-end) % 4
            positions[id(node)] = end
            end += 4 + 4 * len(node.fields)
        elif isinstance(node, String):
            end += (-end) % 4
            positions[id(node)] = end
            end += 4 + len(node.data) + 1
        elif isinstance(node, Scalars):
            align = max(node.values.dtype.itemsize, node.align, 4)
            end += (-(end + 4)) % align
            positions[id(node)] = end
            end += 4 + node.values.nbytes
        else:
            end += (-end) % 4
            positions[id(node)] = end
            end += 4 + 4 * len(node.items)
    end += (-end) % ALIGN
    shift = end - HEADER
    out = bytearray(end) + bytearray(original[HEADER:])
    out[4:8] = IDENTIFIER

    def target(ref: Ref) -> int:
        return ref.pos + shift if isinstance(ref, Old) else positions[id(ref)]

    def point(pos: int, ref: Ref) -> None:
        to = target(ref)
        if to <= pos:
            raise ModelError("a new flatbuffer object would point backwards; please report this")
        struct.pack_into("<I", out, pos, to - pos)

    point(0, root)
    for node in order:
        pos = positions[id(node)]
        if isinstance(node, Table):
            vtable, slots = vtables[id(node)], max(node.fields, default=-1) + 1
            struct.pack_into("<HH", out, vtable, 4 + 2 * slots, 4 + 4 * len(node.fields))
            struct.pack_into("<i", out, pos, pos - vtable)
            for i, (number, value) in enumerate(sorted(node.fields.items())):
                struct.pack_into("<H", out, vtable + 4 + 2 * number, 4 + 4 * i)
                if isinstance(value, tuple):
                    struct.pack_into("<" + value[0], out, pos + 4 + 4 * i, value[1])
                else:
                    point(pos + 4 + 4 * i, value)
        elif isinstance(node, String):
            struct.pack_into("<I", out, pos, len(node.data))
            out[pos + 4 : pos + 4 + len(node.data)] = node.data
        elif isinstance(node, Scalars):
            struct.pack_into("<I", out, pos, len(node.values))
            data = np.ascontiguousarray(node.values).astype(node.values.dtype.newbyteorder("<")).tobytes()
            out[pos + 4 : pos + 4 + len(data)] = data
        else:
            struct.pack_into("<I", out, pos, len(node.items))
            for i, item in enumerate(node.items):
                point(pos + 4 + 4 * i, item)
    return bytes(out)


def _walk(node: Ref, order: list[Ref], placed: dict[int, int]) -> None:
    """Pre-order: a node before everything it points to (each new node once)."""
    if isinstance(node, Old) or id(node) in placed:
        return
    placed[id(node)] = len(order)
    order.append(node)
    children = node.items if isinstance(node, Refs) else (
        [v for _, v in sorted(node.fields.items()) if not isinstance(v, tuple)] if isinstance(node, Table) else [])
    for child in children:
        _walk(child, order, placed)
