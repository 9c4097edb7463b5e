"""A pickle reader that builds only what a legacy PyTorch state dict holds, and refuses everything else.

The pickles of a weights file are not given to pickle.Unpickler: its opcodes can be turned against
the reader (BUILD rewrites objects' attributes, a dict key made of shared nested tuples takes
2**depth steps to hash), and find_class sees only globals. This small stack machine over
pickletools.genops builds plain values (None, bools, numbers, strings, tuples, lists, dicts with
string keys) and the few globals a state dict needs (the tensor rebuild function, the storage
classes, OrderedDict); any other global or opcode is refused. trainer.pth reads the file around it.

The work is bounded by the file's size, whatever the file asks for. Nothing the file chooses is
hashed except strings, whose hashes are salted per process (int keys k * (2**61 - 1) all hash alike,
so a dict of them takes quadratic time to build); the memo is a list, indexed in order. What is left
grows with the values an opcode touches (a long string compared again and again, the items a MARK
gathers): each opcode spends one step and each such value its length from a Work budget, and the
file is refused once the budget, a multiple of its size, is spent.
"""

from __future__ import annotations

import io
import pickletools
from collections import OrderedDict
from dataclasses import dataclass

#: torch.<Name>Storage -> the numpy dtype of its elements (stored little-endian).
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
    "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}

#: numpy 1.x handles at most 32 dimensions; a weight never has more than a handful.
MAX_DIMS = 32
#: Offsets, sizes, strides and counts are int64 in PyTorch; bigger numbers are refused before any arithmetic.
_INT64_MAX = 2**63 - 1



class Refused(Exception):
    """The pickle does something a state dict never does (the message says what)."""


class Work:
    """The steps reading one file may take: one per opcode, plus the length of each string hashed or compared and
    of each run of items gathered. Spending past the limit refuses the file, so reading it is linear in its size."""

    def __init__(self, limit: int):
        self.limit = limit
        """Steps allowed (trainer.pth: a multiple of the file's size)."""
        self.spent = 0
        """Steps taken so far."""

    def spend(self, steps: int) -> None:
        """Take steps.

        Raises:
            Refused: more than limit steps in all (a crafted file: real state dicts take a few per byte).
        """
        if self.spent + steps > self.limit:
            raise Refused(f"reading it takes more than {self.limit} steps, many times its size (a crafted file?)")
        self.spent += steps


@dataclass(frozen=True)
class _Global:
    """A global the file may name: OrderedDict or the tensor rebuild function (a token, never the callable)."""

    name: str


_ORDERED_DICT = _Global("collections.OrderedDict")
_REBUILD_TENSOR = _Global("torch._utils._rebuild_tensor_v2")


@dataclass(frozen=True)
class _StorageType:
    """A torch storage class named by the file (only its element type matters)."""

    dtype: str


@dataclass(frozen=True)
class Storage:
    """A storage named by persistent id: its key in the data section, element type and element count."""

    key: str
    dtype: str
    count: int


@dataclass(frozen=True)
class TensorRef:
    """A tensor as the state dict describes it: a strided view of a storage, filled in once data is read."""

    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def show(text: str) -> str:
    """A name from the file, safe to put in a one-line message (quoted, escaped and short)."""
    return repr(text[:60])


def _find_class(module: object, name: object) -> object:
    if not isinstance(module, str) or not isinstance(name, str):
        raise Refused("a global is named by something that is not a string")
    if module == "collections" and name == "OrderedDict":
        return _ORDERED_DICT
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
        return _REBUILD_TENSOR
    if module == "torch" and name in STORAGE_DTYPES:
        return _StorageType(STORAGE_DTYPES[name])
    where = f"{module[:60]}.{name[:60]}".encode("unicode_escape").decode("ascii")  # STACK_GLOBAL names may hold newlines
    raise Refused(f"refused to load {where}: only tensors and storages may be in a weights file")


def _is_int64(value: object) -> bool:
    return type(value) is int and 0 <= value <= _INT64_MAX


def _persistent_load(pid: object, storages: dict[str, Storage], work: Work) -> Storage:
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
        raise Refused(f"unexpected persistent id (a {type(pid).__name__}, not a storage tuple)")
    _, storage_type, key, _location, count = pid[:5]
    if len(pid) > 5 and pid[5] is not None:
        raise Refused("storage views (torch < 0.4 files) are not supported")
    if type(key) is not str or not _is_int64(count):
        raise Refused("a storage has an invalid key or size")
    work.spend(len(key))  # hashed once, then compared with the key already there
    storage = storages.setdefault(key, Storage(key, storage_type.dtype, count))
    if storage != Storage(key, storage_type.dtype, count):
        raise Refused(f"storage {show(key)} is named with two element types or sizes")
    return storage


def _rebuild_tensor(args: tuple) -> TensorRef:
    if len(args) < 4:
        raise Refused("a tensor is rebuilt from too few arguments")
    storage, offset, size, stride = args[:4]
    if not isinstance(storage, Storage):
        raise Refused("a tensor refers to something that is not a storage")
    if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride) <= MAX_DIMS):
        raise Refused(f"a tensor's size and stride are not two tuples of the same length (at most {MAX_DIMS})")
    if not all(_is_int64(v) for v in (offset, *size, *stride)):
        raise Refused("a tensor's offset, size or stride is not a non-negative 64-bit integer")
    return TensorRef(storage, offset, size, stride)


def _reduce(func: object, args: object) -> object:
    if not isinstance(args, tuple):
        raise Refused("a call's arguments are not a tuple")
    if func is _ORDERED_DICT and args == ():
        return OrderedDict()
    if func is _REBUILD_TENSOR:
        return _rebuild_tensor(args)
    raise Refused(f"refused to call a {type(func).__name__}: only OrderedDict() and tensors may be built")


def _pop(stack: list, marks: list[int]) -> object:
    if len(stack) <= (marks[-1] if marks else 0):
        raise Refused("a pickle opcode finds no value on the stack")
    return stack.pop()


def _pop_mark(stack: list, marks: list[int], work: Work) -> list:
    if not marks:
        raise Refused("a pickle opcode finds no MARK on the stack")
    start = marks.pop()
    work.spend(len(stack) - start)
    items = stack[start:]
    del stack[start:]
    return items


def _top(stack: list, marks: list[int], kind: type) -> object:
    if len(stack) <= (marks[-1] if marks else 0) or not isinstance(stack[-1], kind):
        raise Refused(f"a pickle opcode expects a {kind.__name__} on the stack")
    return stack[-1]


def _set_items(target: dict, items: list, work: Work) -> None:
    if len(items) % 2:
        raise Refused("a dict is given a key without a value")
    for key, value in zip(items[::2], items[1::2]):
        # Only strings are hashed (a state dict needs no other key): their hashes are salted, while int keys
        # k * (2**61 - 1) all hash alike, and a tuple key can be a DAG of shared tuples that takes 2**depth steps.
        if type(key) is not str:
            raise Refused(f"a dict key is a {type(key).__name__}, not a string")
        work.spend(len(key))  # a key equal to one already there (another object) is compared in full
        target[key] = value


_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_VALUES = frozenset({
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES",
    "BINBYTES8",
})
_TUPLE_SIZES = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}


def load(stream: io.BytesIO, storages: dict[str, Storage], work: Work) -> object:
    """The next pickle in stream, built by the restricted stack machine; storages collects its persistent ids.

    Args:
        stream: the file, at the start of a pickle.
        storages: key -> Storage of the persistent ids read so far (filled in).
        work: the budget of the whole file, spent by this pickle's steps.

    Raises:
        Refused: an opcode or global a state dict never needs, a malformed stack, or work past its limit.
        ValueError: pickletools.genops cannot parse an opcode (unknown, truncated, bad literal).
    """
    stack: list = []
    marks: list[int] = []
    memo: list = []  # pickle writes entries 0, 1, 2, ... in order: a list, and no file-chosen int is hashed
    for opcode, arg, _pos in pickletools.genops(stream):
        work.spend(1)
        name = opcode.name
        if name in _VALUES:
            stack.append(arg)
        elif name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name in ("PROTO", "FRAME"):
            pass
        elif name == "STOP":
            return _pop(stack, marks)
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "POP":
            if marks and len(stack) == marks[-1]:
                marks.pop()  # as pickle does: POP right after MARK drops the mark
            else:
                _pop(stack, marks)
        elif name == "POP_MARK":
            _pop_mark(stack, marks, work)
        elif name == "DUP":
            value = _pop(stack, marks)
            stack += [value, value]
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            value = _pop(stack, marks)
            stack.append(value)
            index = len(memo) if name == "MEMOIZE" else arg
            if not (type(index) is int and 0 <= index <= len(memo)):
                raise Refused(f"a pickle writes memo entry {str(index)[:20]} out of order")
            if index == len(memo):
                memo.append(value)
            else:
                memo[index] = value
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if not (type(arg) is int and 0 <= arg < len(memo)):
                raise Refused(f"a pickle reads memo entry {str(arg)[:20]}, which was never written")
            stack.append(memo[arg])
        elif name in _TUPLE_SIZES:
            items = [_pop(stack, marks) for _ in range(_TUPLE_SIZES[name])]
            stack.append(tuple(reversed(items)))
        elif name == "TUPLE":
            stack.append(tuple(_pop_mark(stack, marks, work)))
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "LIST":
            stack.append(_pop_mark(stack, marks, work))
        elif name == "APPEND":
            value = _pop(stack, marks)
            _top(stack, marks, list).append(value)  # type: ignore[attr-defined]
        elif name == "APPENDS":
            items = _pop_mark(stack, marks, work)
            _top(stack, marks, list).extend(items)  # type: ignore[attr-defined]
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "DICT":
            target: dict = {}
            _set_items(target, _pop_mark(stack, marks, work), work)
            stack.append(target)
        elif name == "SETITEM":
            value, key = _pop(stack, marks), _pop(stack, marks)
            _set_items(_top(stack, marks, dict), [key, value], work)  # type: ignore[arg-type]
        elif name == "SETITEMS":
            items = _pop_mark(stack, marks, work)
            _set_items(_top(stack, marks, dict), items, work)  # type: ignore[arg-type]
        elif name == "BUILD":
            # torch's state dicts carry a _metadata attribute (per-module versions): set by BUILD on the
            # OrderedDict. Not needed here, so it is dropped; BUILD on anything else is refused.
            state = _pop(stack, marks)
            _top(stack, marks, dict)
            if not isinstance(state, dict):
                raise Refused("BUILD gives a dict state that is not a dict")
        elif name == "GLOBAL":
            module, _, qualname = arg.partition(" ")
            stack.append(_find_class(module, qualname))
        elif name == "STACK_GLOBAL":
            qualname, module = _pop(stack, marks), _pop(stack, marks)
            stack.append(_find_class(module, qualname))
        elif name == "REDUCE":
            args, func = _pop(stack, marks), _pop(stack, marks)
            stack.append(_reduce(func, args))
        elif name in ("PERSID", "BINPERSID"):
            stack.append(_persistent_load(arg if name == "PERSID" else _pop(stack, marks), storages, work))
        else:
            raise Refused(f"pickle opcode {name} is not allowed in a weights file")
    raise Refused("a pickle ends without STOP")  # pragma: no cover - genops raises first
