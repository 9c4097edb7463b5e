"""catdog-edge camera and SIGHUP (edge.camera.swap through the CLI): the model file given with --model is read
again while the camera runs; a damaged file leaves the old model running with a warning line, a good one is switched
to and the next events are its answers. The test waits for lines of the camera's output, never for a time."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_model_with_contract
from tests.edge.camera.helpers import PATIENCE_S, MjpegServer, require_opencv

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is a POSIX signal")


class Output:
    """The lines a process writes (stdout and stderr together), read on a thread so that none is missed."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait(self, matches) -> str:
        """The next line for which matches(line) is true (lines before it are kept in seen)."""
        while True:
            try:
                line = self.lines.get(timeout=PATIENCE_S)
            except queue.Empty:
                raise AssertionError(f"no such line within {PATIENCE_S} s; seen: {self.seen[-20:]}") from None
            assert line is not None, f"the camera's output ended; seen: {self.seen[-20:]}"
            self.seen.append(line)
            if matches(line):
                return line


def _label(line: str) -> str | None:
    if not line.startswith("{"):
        return None
    record = json.loads(line)
    return record.get("label") if record.get("event") == "label" else None


def _replace(path: Path, data: bytes) -> None:
    staged = path.with_name("staged.tflite")
    staged.write_bytes(data)
    staged.replace(path)  # atomically, as catdog-edge learn and catdog-train export write


def test_sighup_reloads_the_model_file_and_a_damaged_one_keeps_the_old_model(camera_model, confident_frames, tmp_path):
    require_opencv()
    path = tmp_path / "model.tflite"
    path.write_bytes(Path(camera_model).read_bytes())
    renamed = copy_model_with_contract(path, tmp_path / "renamed.tflite", {"labels": ["kitty", "puppy"]}, sidecar=False)
    camera = MjpegServer(confident_frames["cat"], fps=15).start()
    proc = subprocess.Popen([sys.executable, "-c", "from catdog.edge.cli import app; app()", "camera", "-s",
                             camera.url, "-m", str(path), "-f", "json", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        out = Output(proc)
        out.wait(lambda line: _label(line) == "cat")
        _replace(path, Path(camera_model).read_bytes()[:5000])  # a copy that failed half-way
        proc.send_signal(signal.SIGHUP)
        warning = out.wait(lambda line: line.startswith("warning: model not reloaded"))
        assert "model.tflite" in warning and "old one keeps running" in warning
        assert proc.poll() is None  # still running, on the old model
        _replace(path, renamed.read_bytes())
        proc.send_signal(signal.SIGHUP)
        switched = out.wait(lambda line: line.startswith("model: now"))
        assert "model.tflite (answers kitty, puppy; new answers: smoothing restarts)" in switched, switched
        assert out.wait(lambda line: _label(line) is not None) and _label(out.seen[-1]) == "kitty", out.seen
        proc.send_signal(signal.SIGTERM)
        summary = json.loads(out.wait(lambda line: '"summary"' in line))
        assert proc.wait(timeout=PATIENCE_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        camera.stop()
    assert summary["stopped"] == "stopped" and summary["events"] == 2
    assert [_label(line) for line in out.seen if _label(line)] == ["cat", "kitty"]
