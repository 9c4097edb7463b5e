"""Runtime selection: ai-edge-litert first, tflite-runtime second, a clear error when neither exists."""

from __future__ import annotations

import importlib
import importlib.util

import pytest

from catdog.edge.errors import RuntimeMissingError
from catdog.edge.runtime import RuntimeName, find_runtime


def test_auto_prefers_litert_and_falls_back_to_tflite_runtime():
    runtime = find_runtime("auto")
    has_litert = importlib.util.find_spec("ai_edge_litert") is not None
    assert runtime.name == ("litert" if has_litert else "tflite-runtime")
    assert runtime.version[0].isdigit()


def test_missing_runtimes_give_an_install_hint(monkeypatch):
    real_import = importlib.import_module

    def no_tflite(name, *args):
        if name.startswith(("ai_edge_litert", "tflite_runtime")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_tflite)
    with pytest.raises(RuntimeMissingError, match=r"install ai-edge-litert or tflite-runtime \(pip install ai-edge-litert"):
        find_runtime(RuntimeName.auto)
    with pytest.raises(RuntimeMissingError, match="install tflite-runtime"):
        find_runtime("tflite-runtime")
