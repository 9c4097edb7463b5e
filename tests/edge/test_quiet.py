"""Quiet by default: a clean classify prints its answer and nothing on stderr, in whichever runtime
this environment has; --verbose shows the libraries' lines; a failing load still says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from catdog.edge._quiet import VERBOSE_ENV, captured_stderr
from catdog.edge.runtime import find_runtime

CATDOG_EDGE = Path(sys.executable).with_name("catdog-edge")


def _run(*args: str, verbose: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != VERBOSE_ENV} | ({VERBOSE_ENV: "1"} if verbose else {})
    return subprocess.run([str(CATDOG_EDGE), *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module", autouse=True)
def console_script():
    assert CATDOG_EDGE.is_file(), f"{CATDOG_EDGE}: this environment has no catdog-edge console script"


def test_a_clean_classify_prints_one_line_and_nothing_on_stderr(bundled_model, val_photos):
    result = _run("classify", str(val_photos["cat"][0]))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 1 and result.stdout.split()[0] == "cat"


def test_verbose_shows_the_runtime_lines_again(val_photos):
    if find_runtime().name != "litert":
        pytest.skip("tflite-runtime 2.14 prints no delegate line on this platform: nothing to show")
    for args, env in ((["--verbose", "classify"], False), (["classify"], True)):
        result = _run(*args, str(val_photos["cat"][0]), verbose=env)
        assert result.returncode == 0 and "XNNPACK delegate" in result.stderr, (args, result.stderr)


def test_a_model_that_fails_to_load_still_says_why(tmp_path, val_photos):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4)  # the identifier, then garbage
    result = _run("classify", "-m", str(broken), str(val_photos["cat"][0]))
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {broken}: not a valid TFLite model ("), lines


def test_captured_stderr_keeps_what_the_descriptor_received(monkeypatch):
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    with captured_stderr() as printed:
        os.write(2, b"INFO: chatter\nERROR: the real reason\n")
    assert printed.text == "INFO: chatter\nERROR: the real reason\n"
    assert printed.first_error() == "the real reason"
    monkeypatch.setenv(VERBOSE_ENV, "1")
    with captured_stderr() as printed:
        pass
    assert printed.text == ""  # verbose: nothing redirected, nothing kept
