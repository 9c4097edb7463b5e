"""--webhook against a real loopback HTTP receiver: a receiver that answers 500, goes away and comes back
gets every event once, in order; a hung receiver never holds up the camera; a camera killed (SIGKILL) with
events spooled delivers them when it starts again, and a SIGTERM still sends the summary."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from catdog.edge.camera import SinkConfig, open_sinks
from catdog.edge.camera.webhook import WebhookTarget
from catdog.edge.cli import app
from catdog.edge.errors import SinkSetupError
from tests.conftest import ROOT
from tests.edge.camera.helpers import PATIENCE_S, cat_dog_cat, wait_for, write_folder
from tests.edge.camera.receivers import Receiver, encoded, fast, label


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def test_webhook_url_parsing():
    target = WebhookTarget.parse("https://me:p%40ss@example.com:8443/hooks/catdog?token=abc")
    assert target.url == "https://example.com:8443/hooks/catdog?token=abc"
    assert (target.username, target.password) == ("me", "p@ss")
    assert target.label == "webhook https://example.com:8443/hooks/catdog"  # no credentials, no query (a token)
    assert WebhookTarget.parse("http://[::1]:8080").url == "http://[::1]:8080/"
    for bad in ("ftp://example.com/x", "example.com/hook", "http://", "http://host:99999/", "http://host:0/",
                "http://ho st/", "http://host/a\nb"):
        with pytest.raises(SinkSetupError, match="--webhook"):
            WebhookTarget.parse(bad)


def test_bad_webhook_url_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["camera", "-s", str(tmp_path), "--webhook", "localhost:8080/hook"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --webhook") and result.stderr.count("\n") == 1


def test_500_then_gone_then_back_every_event_once_in_order(receiver, tmp_path):
    receiver.status = 500
    receiver.start()
    warnings: list[str] = []
    sinks = open_sinks(fast(tmp_path, webhook=receiver.url), warnings.append)
    try:
        sinks.emit(label(0))
        sinks.emit(label(1))
        assert receiver.wait(lambda r: len(r.attempts) >= 2)  # event 0, refused twice; event 1 waits behind it
        assert receiver.accepted == [] and {seq for seq, _, _ in receiver.attempts} == {1}
        assert any("answered 500" in w for w in warnings)

        receiver.stop()  # gone: connections refused
        sinks.emit(label(2))
        assert wait_for(lambda: any("cannot reach it" in w for w in warnings)), warnings

        receiver.status = 200
        receiver.start()  # back, same port
        sinks.emit(label(3))
        assert receiver.wait(lambda r: len(r.accepted) == 4), warnings
    finally:
        reports = sinks.close()
    assert receiver.accepted == [encoded(label(n)) for n in range(4)]
    seqs = [seq for seq, _, status in receiver.attempts if status == 200]
    assert seqs == [1, 2, 3, 4]
    assert reports[0].delivered == 4 and reports[0].kept == 0


def test_a_hung_receiver_never_holds_up_the_camera(receiver, tmp_path):
    receiver.hold = threading.Event()  # every request waits here until released
    receiver.start()
    # A delivery may wait as long as the test does: one that timed out would be sent again (at least once).
    sinks = open_sinks(fast(tmp_path, webhook=receiver.url, send_timeout_s=2 * PATIENCE_S), print)
    (sink,) = sinks.sinks
    try:
        for n in range(50):
            sinks.emit(label(n))  # the camera thread: returns at once although the first POST hangs
        assert wait_for(lambda: len(sink.spool) == 50)  # all on disk while the receiver still holds the first
        assert receiver.attempts == []
        receiver.hold.set()
        assert receiver.wait(lambda r: len(r.accepted) == 50)
    finally:
        sinks.close()
    assert receiver.accepted == [encoded(label(n)) for n in range(50)]


def test_redirects_are_not_followed_and_credentials_go_as_basic_auth(receiver, tmp_path):
    receiver.status = 302  # urllib would turn the POST into a GET without the event and call that a success
    receiver.start()
    warnings: list[str] = []
    url = receiver.url.replace("http://", "http://camera:s%3Acret@")
    sinks = open_sinks(fast(tmp_path, webhook=url, flush_s=0), warnings.append)
    sinks.emit(label(0))
    assert wait_for(lambda: any("answered 302" in w for w in warnings)), warnings
    reports = sinks.close()
    assert reports[0].delivered == 0 and reports[0].kept == 1
    auth = receiver.headers[0]["Authorization"]
    assert auth == "Basic " + base64.b64encode(b"camera:s:cret").decode()
    assert all("s:cret" not in w and "s%3Acret" not in w for w in warnings)


def test_full_spool_drops_the_oldest_with_a_warning(receiver, tmp_path):
    warnings: list[str] = []  # the receiver is not started: every delivery is refused
    sinks = open_sinks(SinkConfig(webhook=receiver.url, spool=tmp_path / "spool", spool_max=3, flush_s=0), warnings.append)
    for n in range(5):
        sinks.emit(label(n))
    assert wait_for(lambda: sum("dropped the 1 oldest" in w for w in warnings) == 2), warnings
    reports = sinks.close()
    assert (reports[0].kept, reports[0].lost) == (3, 2) and "kept" not in " ".join(warnings)
    receiver.start()
    again = open_sinks(fast(tmp_path, webhook=receiver.url), print)  # the next run delivers what was kept
    assert receiver.wait(lambda r: len(r.accepted) == 3)
    again.close()
    assert receiver.accepted == [encoded(label(n)) for n in (2, 3, 4)]


class _Camera:
    """catdog-edge camera as a real process (the console script of this environment when installed), its stdout
    lines collected by a thread so a test can wait for each one."""

    def __init__(self, *args: str):
        script = Path(sys.executable).with_name("catdog-edge")
        command = [str(script)] if script.exists() else [sys.executable, "-c", "from catdog.edge.cli import app; app()"]
        self.proc = subprocess.Popen([*command, "camera", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.out: queue.Queue[str | None] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.out.put), daemon=True).start()
        keep = self.err.append
        self._stderr = threading.Thread(target=self._read, args=(self.proc.stderr, lambda line: line and keep(line)),
                                        daemon=True)
        self._stderr.start()

    @staticmethod
    def _read(stream, put) -> None:
        for line in stream:
            put(line.rstrip("\n"))
        put(None)

    def lines(self, n: int) -> list[str]:
        """The next n lines it prints, each waited for at most PATIENCE_S."""
        lines = []
        for _ in range(n):
            try:
                line = self.out.get(timeout=PATIENCE_S)
            except queue.Empty:
                raise AssertionError(f"no line {len(lines) + 1} from the camera within {PATIENCE_S} s") from None
            assert line is not None, f"the camera ended: {self.err}"
            lines.append(line)
        return lines

    def rest(self) -> list[str]:
        """Every line still to come, up to the end of its output."""
        lines = []
        while (line := self.out.get(timeout=PATIENCE_S)) is not None:
            lines.append(line)
        return lines

    def end(self, sig: int) -> int:
        """Send sig, wait for the exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(PATIENCE_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._stderr.join(PATIENCE_S)


def test_killed_camera_delivers_its_spool_on_the_next_start(receiver, camera_model, confident_frames, tmp_path):
    # Run 1: four label changes, then the last frame again and again (links, no copies), the receiver down.
    frames = [confident_frames["cat"][0], confident_frames["dog"][0], confident_frames["cat"][1], confident_frames["dog"][1]]
    folder = write_folder(tmp_path / "frames", frames)
    for i in range(4, 3000):
        os.symlink(folder / "frame0003.png", folder / f"frame{i:04d}.png")
    spool = tmp_path / "spool"
    common = ["-m", str(camera_model), "-f", "json", "--smooth", "1", "--webhook", receiver.url, "--spool", str(spool)]
    first = _Camera("-s", str(folder), *common)
    try:
        printed = first.lines(4)
        assert [json.loads(line)["label"] for line in printed] == ["cat", "dog", "cat", "dog"]
        assert wait_for(lambda: len(list(spool.glob("*/*.event"))) == 4)  # all four durably spooled
        assert first.proc.poll() is None, "the camera ended before it could be killed"
    finally:
        first.end(signal.SIGKILL)

    # Run 2, receiver up: the spooled events go first, in order; SIGTERM stops it and the summary still goes.
    receiver.start()
    slow = write_folder(tmp_path / "slow", [confident_frames["cat"][2]] * 3)
    second = _Camera("-s", str(slow), "--realtime", "--fps", "0.1", *common)
    try:
        again = second.lines(1)
        assert receiver.wait(lambda r: len(r.accepted) == 5)  # 4 from the killed run, then this run's first
    finally:
        code = second.end(signal.SIGTERM)
    err = "\n".join(second.err)
    out = second.rest()
    assert code == 0, err
    summary = out[-1]
    assert json.loads(summary)["stopped"] == "stopped"
    want = [line.encode() for line in (*printed, *again, summary)]
    assert receiver.accepted == want  # every event once, in order, across the kill
    assert [seq for seq, _, _ in receiver.attempts] == list(range(1, 7))
    assert list(spool.glob("*/*.event")) == []
    assert "Traceback" not in err


def test_camera_posts_the_lines_it_prints(receiver, camera_model, confident_frames, tmp_path):
    receiver.start()
    folder = write_folder(tmp_path / "frames", cat_dog_cat(confident_frames))
    result = CliRunner().invoke(app, ["camera", "-s", str(folder), "-m", str(camera_model), "-f", "json",
                                      "--webhook", receiver.url, "--spool", str(tmp_path / "spool")])
    assert result.exit_code == 0, result.output
    printed = [line.encode() for line in result.stdout.splitlines()]
    assert len(printed) == 4 and json.loads(printed[-1])["event"] == "summary"
    assert receiver.accepted == printed  # delivered before the command returned
    assert all(h["Content-Type"] == "application/json" for h in receiver.headers)
