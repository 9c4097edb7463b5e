"""Quiet by default: a clean classify prints its answer and nothing on stderr, in whichever runtime
this environment has; --verbose shows the libraries' lines; a failing load still says why."""

from __future__ import annotations

import os
import shutil
import struct
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


@pytest.mark.parametrize(
    "content,reason",
    [
        # A well-formed flatbuffer whose Model table is empty: the runtime itself refuses it.
        (struct.pack("<I4sHHi", 12, b"TFL3", 4, 4, 4), "not a valid TFLite model (Model provided is schema version 0"),
        # The identifier, then garbage: catdog's own reader refuses it before the runtime sees it.
        (b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4, "not a valid TFLite flatbuffer (offset"),
    ],
    ids=["runtime-refuses", "reader-refuses"],
)
def test_a_model_that_fails_to_load_still_says_why(content, reason, bundled_model, tmp_path, val_photos):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(content)
    shutil.copy(bundled_model.with_suffix(".json"), broken.with_suffix(".json"))  # a contract, so the load reaches the runtime
    result = _run("classify", "-m", str(broken), str(val_photos["cat"][0]))
    assert result.returncode == 2 and result.stdout == "", result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {broken}: {reason}"), lines


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
