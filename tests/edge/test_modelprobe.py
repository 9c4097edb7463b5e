"""The child-process probe: a model that crashes, hangs or fails in the runtime is one ModelError; survival is
remembered by content hash, so each file is probed once; bundled models are never probed."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catdog.edge import modelprobe
from catdog.edge.classify import Classifier
from catdog.edge.errors import ModelError
from catdog.edge.modelprobe import cache_dir, check_survives
from catdog.edge.runtime import find_runtime, load_interpreter
from fuzz.mutate_models import mutate
from tests.conftest import BUNDLED, COMPACT

RUNTIME = find_runtime()
CONTENT = COMPACT.read_bytes()


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """An empty verdict cache per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "catdog" / "models"


def _child(monkeypatch, code: str) -> None:
    """Make the probe's child run this Python code instead of loading the model."""
    monkeypatch.setattr(modelprobe, "_command", lambda module, xnnpack: [sys.executable, "-c", code])


def test_a_model_that_runs_is_probed_once_then_remembered(own_cache, monkeypatch):
    assert cache_dir() == own_cache
    check_survives(CONTENT, RUNTIME, True, "m.tflite")
    assert len(list(own_cache.iterdir())) == 1
    _child(monkeypatch, "import os; os.abort()")  # were it probed again, it would now be refused
    check_survives(CONTENT, RUNTIME, True, "m.tflite")
    with pytest.raises(ModelError, match="SIGABRT"):  # another file, or the same under other kernels: probed afresh
        check_survives(CONTENT + b"\0", RUNTIME, True, "m.tflite")
    with pytest.raises(ModelError, match="SIGABRT"):
        check_survives(CONTENT, RUNTIME, False, "m.tflite")


def test_a_crash_in_the_child_is_one_line_naming_the_signal_and_is_not_remembered(own_cache, monkeypatch):
    _child(monkeypatch, "import os, sys; sys.stderr.write('double free or corruption (!prev)\\n'); os.abort()")
    with pytest.raises(ModelError) as refused:
        check_survives(CONTENT, RUNTIME, True, "m.tflite")
    message = str(refused.value)
    assert message.startswith("m.tflite: the TFLite runtime crashed") and "\n" not in message
    assert "SIGABRT: " in message and "catdog-train export" in message
    # the child's last line on stderr; under qemu-user (make test-pi) qemu's own report of the signal comes last
    assert "double free or corruption (!prev)" in message or "qemu: uncaught target signal 6" in message
    assert not own_cache.exists()


def test_a_child_that_hangs_is_refused_after_the_timeout(own_cache, monkeypatch):
    _child(monkeypatch, "import time; time.sleep(600)")
    with pytest.raises(ModelError, match="did not finish loading and running the model within 0.5 s"):
        check_survives(CONTENT, RUNTIME, True, "m.tflite", timeout=0.5)
    assert not own_cache.exists()


def test_a_model_the_runtime_refuses_in_the_child_reads_as_a_refusal_in_this_process(own_cache, tmp_path):
    """The runtime's own error (here: a well-formed file whose Model table is empty) gives the same line
    as loading it here would."""
    empty = struct.pack("<I4sHHi", 12, b"TFL3", 4, 4, 4)
    with pytest.raises(ModelError) as in_child:
        check_survives(empty, RUNTIME, True, "m.tflite")
    with pytest.raises(ModelError) as in_process:
        load_interpreter(Path("m.tflite"), RUNTIME, content=empty)
    assert str(in_child.value) == str(in_process.value)
    assert str(in_child.value).startswith("m.tflite: not a valid TFLite model (") and "\n" not in str(in_child.value)
    assert not own_cache.exists()


def test_a_child_that_fails_otherwise_is_refused_with_its_last_line(own_cache, monkeypatch):
    _child(monkeypatch, "import sys; print('Traceback (most recent call last):', file=sys.stderr); "
                        "sys.exit('ModuleNotFoundError: No module named numpy')")
    with pytest.raises(ModelError, match=r"failed to load and run the model \(ModuleNotFoundError: No module named numpy\)"):
        check_survives(CONTENT, RUNTIME, True, "m.tflite")


def test_an_unwritable_cache_only_means_probing_again(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    check_survives(CONTENT, RUNTIME, True, "m.tflite")  # survives; the verdict cannot be kept
    _child(monkeypatch, "import os; os.abort()")
    with pytest.raises(ModelError, match="SIGABRT"):
        check_survives(CONTENT, RUNTIME, True, "m.tflite")


def test_loading_a_model_of_ones_own_probes_it_and_a_bundled_model_never(tmp_path, monkeypatch):
    probed = []
    real = modelprobe.check_survives
    monkeypatch.setattr(modelprobe, "check_survives", lambda content, *a, **k: probed.append(len(content)) or real(content, *a, **k))
    Classifier.load("compact")  # by name: the bundled file, in the checkout or installed with the wheel
    assert probed == []
    copy = tmp_path / COMPACT.name
    shutil.copy(COMPACT, copy)
    shutil.copy(COMPACT.with_suffix(".json"), copy.with_suffix(".json"))
    scores = Classifier.load(copy).predict(np.zeros((96, 96, 3), np.uint8))
    assert probed == [len(CONTENT)] and scores.shape == (2,)


def test_a_model_the_probe_refuses_is_never_loaded_in_process(tmp_path, monkeypatch):
    copy = tmp_path / COMPACT.name
    shutil.copy(COMPACT, copy)
    shutil.copy(COMPACT.with_suffix(".json"), copy.with_suffix(".json"))
    _child(monkeypatch, "import os; os.abort()")
    monkeypatch.setattr("catdog.edge.classify.load_interpreter", lambda *a, **k: pytest.fail("loaded in process"))
    with pytest.raises(ModelError, match="crashed"):
        Classifier.load(copy)


#: Recipes of fuzz/mutate_models.py, (seed, operation), that made catdog-edge info and classify abort
#: (glibc's "double free or corruption (!prev)" in ai-edge-litert) on the default model as shipped at
#: efb06f2, whose SHA-256 is RECIPE_BASE; edge.modelcheck let both through then.
CRASHING_RECIPES = [(5240, "flip"), (5941, "flip_tables")]
RECIPE_BASE = "ed6528326a463614245827306aa2808137801930fd902ce70781b1099a49a61e"


@pytest.mark.parametrize("seed, operation", CRASHING_RECIPES)
def test_damaged_default_models_that_crashed_catdog_edge_are_one_line_and_exit_2(tmp_path, seed, operation):
    """Each recipe applied to models/catdog.tflite, through the real console script: exit 2 and one
    `error:` line, never a signal. (Once the default model is re-exported the recipes damage other
    bytes: then any exit but a signal passes, and fuzz/mutate_models.py finds new ones.)"""
    from PIL import Image

    base = BUNDLED.read_bytes()
    model = tmp_path / "catdog.tflite"
    model.write_bytes(mutate(base, seed, operation))
    shutil.copy(BUNDLED.with_suffix(".json"), model.with_suffix(".json"))
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(photo)
    edge = Path(sys.executable).with_name("catdog-edge")
    for command in (["info"], ["classify", str(photo)]):
        done = subprocess.run([str(edge), *command, "-m", str(model)], capture_output=True, text=True, timeout=600)
        assert done.returncode >= 0, f"{command[0]} died of signal {-done.returncode}: {done.stderr[-300:]}"
        if hashlib.sha256(base).hexdigest() == RECIPE_BASE or done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (command, done.stderr)
