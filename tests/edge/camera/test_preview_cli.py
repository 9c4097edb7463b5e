"""catdog-edge camera --http through the CLI: the preview serves while the camera runs, SIGTERM stops both
cleanly (open streams ended, summary printed, exit 0), and bad --http, --http-token and --preview-fps values are
usage errors (one line, exit 2)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from catdog.edge.cli import app
from tests.conftest import ROOT
from tests.edge.camera.helpers import PATIENCE_S, MjpegServer, require_opencv, wait_for
from tests.edge.camera.preview_helpers import TOKEN, MjpegReader, get

runner = CliRunner()


def _stderr_line(proc: subprocess.Popen, starts: str) -> str:
    while True:
        ready, _, _ = select.select([proc.stderr], [], [], PATIENCE_S)
        assert ready, f"no {starts!r} line on stderr"
        line = proc.stderr.readline()
        assert line, f"stderr ended before a {starts!r} line"
        if line.startswith(starts):
            return line


def test_preview_serves_while_the_camera_runs_and_sigterm_stops_both(camera_model, confident_frames):
    require_opencv()
    camera = MjpegServer(confident_frames["cat"], fps=30).start()
    args = ["camera", "-s", camera.url, "-m", str(camera_model), "-f", "json", "--http", "0.0.0.0:0",
            "--preview-fps", "5"]
    proc = subprocess.Popen([sys.executable, "-c", "from catdog.edge.cli import app; app()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "CATDOG_HTTP_TOKEN": TOKEN})
    stream = None
    try:
        line = _stderr_line(proc, "preview: ")
        assert "every interface" in line and TOKEN not in line
        port = int(line.split()[1].rstrip("/").rpartition(":")[2])
        base = f"http://127.0.0.1:{port}/"
        assert get(base + "api/state").status == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert wait_for(lambda: json.loads(get(base + "api/state", auth).body)["label"] == "cat")
        stream = MjpegReader(base + "stream.mjpg", auth)
        assert stream.next_part()[:2] == b"\xff\xd8"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=PATIENCE_S)
        stream.response.read()  # returns: the stream was ended, not left hanging
    finally:
        if stream is not None:
            stream.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        camera.stop()
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["label"] == "cat" and records[-1]["event"] == "summary" and records[-1]["stopped"] == "stopped"
    assert "Traceback" not in err
    with pytest.raises(OSError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=PATIENCE_S).close()


@pytest.mark.parametrize("args,message", [
    (["--http", "0.0.0.0:8080"], "other machines could watch this camera; give --http-token"),
    (["--http", "192.168.1.20:8080"], "other machines could watch this camera; give --http-token"),
    (["--http", "8080x"], "give PORT or HOST:PORT"),
    (["--http", "70000"], "give PORT or HOST:PORT"),
    (["--http", "mypi.local:8080"], "IP address"),
    (["--http", "0.0.0.0:8080", "--http-token", "short"], "secrets.token_urlsafe(16)"),
    (["--http", "0.0.0.0:8080", "--http-token", "password"], "--http-token must be 16-256"),
    (["--http", "0.0.0.0:8080", "--http-token", "passwordpassword"], "--http-token must mix at least two kinds"),
    (["--http", "8080", "--preview-fps", "0"], "--preview-fps"),
])
def test_bad_preview_options_are_usage_errors(args, message, tmp_path):
    result = runner.invoke(app, ["camera", "-s", str(tmp_path), *args], env={"CATDOG_HTTP_TOKEN": None})
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert result.stderr.strip().count("\n") == 0


def test_listening_on_every_interface_prints_addresses_other_machines_can_open(camera_model, confident_frames,
                                                                                 tmp_path):
    from tests.edge.camera.helpers import write_folder

    folder = write_folder(tmp_path / "frames", confident_frames["cat"][:2])
    result = runner.invoke(app, ["camera", "-s", str(folder), "-m", str(camera_model), "--http", "0.0.0.0:0",
                                 "--http-token", TOKEN])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stderr.splitlines() if line.startswith("preview: "))
    assert "0.0.0.0" not in line and "listening on every interface" in line and TOKEN not in line
    name = socket.gethostname()
    assert name == "localhost" or f"http://{name}:" in line, line
    loopback = runner.invoke(app, ["camera", "-s", str(folder), "-m", str(camera_model), "--http", "0"])
    assert "preview: http://127.0.0.1:" in loopback.stderr and "(this machine only)" in loopback.stderr


def test_a_port_in_use_is_a_usage_error(camera_model, confident_frames, tmp_path):
    from tests.edge.camera.helpers import write_folder

    folder = write_folder(tmp_path / "frames", confident_frames["cat"][:2])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["camera", "-s", str(folder), "-m", str(camera_model), "--http", str(port)])
    assert result.exit_code == 2 and "cannot listen there" in result.stderr, result.output
