"""catdog-edge camera through the CLI: JSON lines, exit codes, a source that is lost for good, and a
clean stop on SIGTERM and Ctrl-C (camera released, summary printed, exit 0)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from catdog.edge.cli import app
from tests.conftest import ROOT
from tests.edge.camera.helpers import PATIENCE_S, RUN, MjpegServer, cat_dog_cat, require_opencv, write_folder, write_video

runner = CliRunner()


def test_json_lines_label_events_then_summary(camera_model, confident_frames, tmp_path):
    require_opencv()
    video = write_video(tmp_path / "catdogcat.avi", cat_dog_cat(confident_frames), fps=25)
    result = runner.invoke(app, ["camera", "--source", str(video), "-m", str(camera_model), "-f", "json", "--smooth", "5"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    labels, summary = records[:-1], records[-1]
    assert [r["label"] for r in labels] == ["cat", "dog", "cat"]
    assert all(set(r) == {"event", "frame", "t", "label", "confidence"} and r["event"] == "label" for r in labels)
    assert summary["event"] == "summary" and summary["frames"] == 3 * RUN == summary["classified"]
    assert {"frames", "classified", "dropped", "fps", "latency_ms"} <= set(summary)
    assert set(summary["latency_ms"]) == {"p50", "p95"} and summary["fps"] > 0


def test_text_output_and_snapshots(camera_model, confident_frames, tmp_path):
    folder = write_folder(tmp_path / "frames", cat_dog_cat(confident_frames))
    snaps = tmp_path / "snaps"
    result = runner.invoke(app, ["camera", "-s", str(folder), "-m", str(camera_model), "--save-dir", str(snaps),
                                 "--min-confidence", "0.6"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[5] for line in lines[:-1]] == ["cat", "dog", "cat"]
    assert lines[-1].startswith(f"summary: {3 * RUN} frames, {3 * RUN} classified, 0 dropped")
    assert len(list(snaps.glob("*.jpg"))) == 3


def test_bad_source_and_options_exit_2(camera_model, tmp_path):
    missing = runner.invoke(app, ["camera", "-s", str(tmp_path / "none.mp4"), "-m", str(camera_model)])
    assert missing.exit_code == 2 and "no such file or folder" in missing.stderr
    assert missing.stderr.strip().count("\n") == 0
    assert runner.invoke(app, ["camera", "--every", "0"]).exit_code == 2
    assert runner.invoke(app, ["camera", "--resolution", "big"]).exit_code == 2
    heartbeat = runner.invoke(app, ["camera", "-s", str(tmp_path), "--heartbeat", "0"])
    assert heartbeat.exit_code == 2 and "--heartbeat" in heartbeat.stderr


def test_stream_lost_for_good_exits_1_after_the_summary(camera_model, confident_frames):
    require_opencv()
    # The camera goes down after 15 frames: the stream drops, and the one reopen attempt gets no answer.
    server = MjpegServer(confident_frames["cat"], fps=50, down_after=15).start()
    try:
        result = runner.invoke(app, ["camera", "-s", server.url, "-m", str(camera_model), "-f", "json", "--max-retries", "1"])
    finally:
        server.stop()
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["event"] == "summary" and summary["stopped"] == "source-lost" and summary["frames"] == 15
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot open it" in errors[0] and "giving up after 1 reopen attempt" in errors[0]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: {server.url}: stopped delivering frames; reopening in 0.5 s (attempt 1/1)"]


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_signal_stops_cleanly_with_summary_and_exit_0(sig, camera_model, confident_frames, tmp_path):
    # 4 frames at 0.1 fps: the first is labelled at once (--smooth 1), the next would come 10 s later, the end 30 s later.
    folder = write_folder(tmp_path / "frames", confident_frames["cat"][:4])
    code = "from catdog.edge.cli import app; app()"
    args = ["camera", "-s", str(folder), "--realtime", "--fps", "0.1", "-m", str(camera_model), "-f", "json", "--smooth", "1"]
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = _read_line(proc, timeout=PATIENCE_S)
        assert json.loads(first)["event"] == "label", first
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=PATIENCE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["event"] == "summary" and summary["stopped"] == "stopped"
    assert summary["frames"] >= 1 and json.loads(first)["label"] == "cat"
    assert summary["frames"] == summary["classified"] + summary["dropped"] + summary["skipped"]
    assert "Traceback" not in err
