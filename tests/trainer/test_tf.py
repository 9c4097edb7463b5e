"""TensorFlow imported in one place: quiet by default, --verbose shows its lines, a missing TensorFlow is one line."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catdog.edge._quiet import VERBOSE_ENV
from catdog.trainer._tf import MISSING_MESSAGE, quiet
from catdog.trainer.cli import app
from tests.conftest import ROOT

runner = CliRunner()
#: What TensorFlow prints at start-up on a machine without a GPU, unless kept quiet.
START_UP_MARKERS = ("oneDNN", "cuInit", "cuda", "absl", "WARNING: All log messages", "E0000", "I0000", "tensorflow/core")


@pytest.fixture()
def without_tensorflow(monkeypatch):
    """importlib.util.find_spec answers as on an edge-only install: no tensorflow."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None if name == "tensorflow" else real(name, *a, **k))


def test_commands_that_need_tensorflow_say_how_to_install_it(tiny_model, data_dir, without_tensorflow, tmp_path):
    val = str(data_dir / "val")
    for argv in (
        ["fit", str(data_dir / "train"), "--out", str(tmp_path / "m.keras")],
        ["export", str(tiny_model.keras)],
        ["parity", str(tiny_model.keras), str(tiny_model.tflite), "--data", val],
        ["evaluate", str(tiny_model.keras), "--data", val],
    ):
        result = runner.invoke(app, argv)
        assert (result.exit_code, result.stderr) == (2, f"error: {MISSING_MESSAGE}\n"), argv
    assert not (tmp_path / "m.keras").exists()
    # A .tflite model needs only the edge runtime.
    result = runner.invoke(app, ["evaluate", str(tiny_model.tflite), "--data", val, "--limit-per-class", "2"])
    assert result.exit_code == 0 and "accuracy" in result.stdout, result.output


def test_help_does_not_import_tensorflow():
    code = "import sys, catdog.trainer.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


def test_evaluate_prints_no_tensorflow_start_up_lines(data_dir):
    env = {k: v for k, v in os.environ.items() if k not in (VERBOSE_ENV, "TF_CPP_MIN_LOG_LEVEL")}
    command = [str(Path(sys.executable).with_name("catdog-train")), "evaluate", str(ROOT / "models" / "catdog.keras"),
               "--data", str(data_dir / "val"), "--limit-per-class", "3"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0 and "accuracy" in result.stdout, result.stderr
    assert [m for m in START_UP_MARKERS if m in result.stderr] == [] and result.stderr == "", result.stderr


def _print_like_tensorflow() -> None:
    os.write(2, b"E0000 00:00:1.0 cuda_platform.cc:52] failed call to cuInit: no device\n")
    warnings.warn("Statistics for quantized inputs were expected", UserWarning)


def test_quiet_keeps_library_lines_and_warnings_for_the_error_message(monkeypatch, capfd):
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with quiet() as printed:
            _print_like_tensorflow()
    assert capfd.readouterr().err == "" and shown == []
    assert "failed call to cuInit" in printed.text
    assert printed.reason(RuntimeError("conversion failed\nmore")) == "conversion failed: failed call to cuInit: no device"
    assert printed.reason(RuntimeError("")) == "RuntimeError: failed call to cuInit: no device"


def test_verbose_shows_library_lines_and_warnings(monkeypatch, capfd):
    monkeypatch.setenv(VERBOSE_ENV, "1")
    with pytest.warns(UserWarning, match="Statistics"), quiet():
        _print_like_tensorflow()
    assert "failed call to cuInit" in capfd.readouterr().err


def test_the_verbose_option_turns_verbose_on_for_the_command(monkeypatch, tmp_path):
    monkeypatch.setenv(VERBOSE_ENV, "0")  # restored after the test
    result = runner.invoke(app, ["--verbose", "evaluate", str(tmp_path / "m.onnx"), "--data", str(tmp_path)])
    assert result.exit_code == 2 and "expected a .keras or .tflite model" in result.stderr
    assert os.environ[VERBOSE_ENV] == "1"
