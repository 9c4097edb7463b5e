"""Sink settings and the sinks' life cycle: what is checked at start-up (usage errors, exit 2), one spool
folder per receiver, the flush time on close, the summary sent when the camera stops (also when the sender
found the spool empty just before), and a disk that fails: an acknowledged event sent once and counted, a
read error retried, and every event that never reached the spool counted as lost."""

from __future__ import annotations

import errno
import json
import os
import threading

import pytest
from click.testing import CliRunner

from catdog.edge.camera import SinkConfig, open_sinks
from catdog.edge.camera import spool as spool_module
from catdog.edge.camera.spool import Spool
from catdog.edge.camera.webhook import WebhookTarget
from catdog.edge.cli import app
from catdog.edge.errors import SinkSetupError
from tests.edge.camera.helpers import PATIENCE_S, wait_for
from tests.edge.camera.receivers import Receiver, encoded, fast, free_port, label
from tests.edge.test_files import refusing


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def test_config_checks_at_start_up():
    assert not SinkConfig().enabled and SinkConfig(webhook="http://h/x").enabled
    for fields, message in (({"mqtt_discovery": "door"}, "needs --mqtt"), ({"webhook": "nope"}, "--webhook"),
                            ({"spool_max": 0}, "at least 1"), ({"retry_s": 5.0, "retry_max_s": 1.0}, "retry waits"),
                            ({"send_timeout_s": 0}, "send timeout")):
        with pytest.raises(SinkSetupError, match=message) as info:
            SinkConfig(**fields)
        assert info.value.exit_code == 2


def test_each_receiver_has_its_own_spool_folder_and_a_busy_one_is_a_usage_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/hook"
    folder = tmp_path / "spool" / WebhookTarget.parse(url).key
    other = Spool(folder, 10, print)  # another camera holds this receiver's spool
    try:
        with pytest.raises(SinkSetupError, match="another catdog-edge camera"):
            open_sinks(SinkConfig(webhook=url, spool=tmp_path / "spool"), print)
        result = CliRunner().invoke(app, ["camera", "-s", str(tmp_path), "--webhook", url, "--spool", str(tmp_path / "spool")])
        assert result.exit_code == 2 and "another catdog-edge camera" in result.stderr
    finally:
        other.close()
    second = open_sinks(SinkConfig(webhook=url.replace("/hook", "/other"), spool=tmp_path / "spool"), print)
    assert second.sinks[0].spool.folder != folder  # another URL, another folder
    second.close()


def test_close_keeps_what_the_flush_time_could_not_deliver(tmp_path, receiver):
    # The receiver is never started: refused.
    warnings: list[str] = []
    sinks = open_sinks(SinkConfig(webhook=receiver.url, spool=tmp_path / "spool", retry_s=0.05, flush_s=0.3),
                       warnings.append)
    for n in range(3):
        sinks.emit({"event": "label", "frame": n})
    (report,) = sinks.close()  # returns once the flush time is over
    assert (report.delivered, report.kept, report.lost) == (0, 3, 0) and report.label == f"webhook {receiver.url}"
    assert len(list(report.spool.glob("*.event"))) == 3
    assert warnings and all(w.startswith(f"webhook {receiver.url}: cannot reach it") for w in warnings)


def test_cli_sends_the_summary_and_says_what_it_kept(tmp_path, camera_model, confident_frames):
    from tests.edge.camera.helpers import write_folder

    receiver = Receiver()  # down for the whole run
    folder = write_folder(tmp_path / "frames", confident_frames["dog"][:2])
    result = CliRunner().invoke(app, ["camera", "-s", str(folder), "-m", str(camera_model), "-f", "json",
                                      "--webhook", receiver.url, "--spool", str(tmp_path / "spool")])
    assert result.exit_code == 0, result.output  # a receiver that is down never stops the camera
    lines = result.stdout.splitlines()
    assert json.loads(lines[-1])["event"] == "summary"
    kept = [w for w in result.stderr.splitlines() if "kept in" in w]
    assert kept == [f"warning: webhook {receiver.url}: {len(lines)} event(s) kept in "
                    f"{tmp_path / 'spool' / WebhookTarget.parse(receiver.url).key}, sent on the next run"]
    assert all(line.startswith("warning: ") for line in result.stderr.splitlines())
    receiver.start()
    try:
        sinks = open_sinks(SinkConfig(webhook=receiver.url, spool=tmp_path / "spool"), print)
        assert wait_for(lambda: len(receiver.accepted) == len(lines))
        sinks.close()
    finally:
        receiver.stop()
    assert receiver.accepted == [line.encode() for line in lines]


def test_the_summary_is_delivered_although_the_sender_found_the_spool_empty_just_before(tmp_path, receiver):
    # The race at close: the sender finds the spool empty, then the writer spools the summary and says it is
    # done, then the sender decides. Forced here: the writer's put() waits until the sender has seen the
    # spool empty, and the sender's head() returns only once the writer has finished.
    receiver.start()
    sinks = open_sinks(fast(tmp_path, webhook=receiver.url, flush_s=PATIENCE_S), print)
    (sink,) = sinks.sinks
    put, head = sink.spool.put, sink.spool.head
    emitted, saw_empty = threading.Event(), threading.Event()

    def late_put(payload):
        assert saw_empty.wait(PATIENCE_S)
        return put(payload)

    def paused_head():
        record = head()
        if record is None and emitted.is_set() and not saw_empty.is_set():
            saw_empty.set()
            sink._writer.join(PATIENCE_S)  # the summary is spooled and the writer has said it is done
            assert not sink._writer.is_alive()
        return record

    sink.spool.put, sink.spool.head = late_put, paused_head
    summary = {"event": "summary", "frames": 3, "stopped": "end"}
    emitted.set()
    sinks.emit(summary)
    sink.spool.interrupt()  # the sender looks at the spool now rather than after its idle wait
    (report,) = sinks.close()
    assert saw_empty.is_set()
    assert (report.delivered, report.kept) == (1, 0)
    assert receiver.accepted == [encoded(summary)]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_an_acknowledged_event_is_sent_once_and_counted_when_the_disk_cannot_record_it(
    tmp_path, monkeypatch, receiver, code
):
    warnings: list[str] = []  # the receiver is down until the disk fails
    sinks = open_sinks(fast(tmp_path, webhook=receiver.url), warnings.append)
    (sink,) = sinks.sinks
    try:
        for n in range(3):
            sinks.emit(label(n))
        assert wait_for(lambda: len(sink.spool) == 3)
        with monkeypatch.context() as disk:  # full or read-only: no file can be written, synced or removed
            disk.setattr(os, "fsync", refusing(code))
            disk.setattr(os, "unlink", refusing(code))
            receiver.start()
            assert receiver.wait(lambda r: len(r.accepted) == 3), warnings
            assert wait_for(lambda: sink.delivered == 3), warnings
            refusals = [w for w in warnings if os.strerror(code) in w]
        sinks.emit(label(3))  # the disk is back
        assert receiver.wait(lambda r: len(r.accepted) == 4), warnings
    finally:
        reports = sinks.close()
    assert receiver.accepted == [encoded(label(n)) for n in range(4)]  # the third never again
    assert [seq for seq, _, _ in receiver.attempts] == [1, 2, 3, 4]
    assert (reports[0].delivered, reports[0].kept, reports[0].lost) == (4, 0, 0)
    assert refusals and all(w.startswith(f"{sink.spool.folder}: event ") and "was delivered" in w for w in refusals)
    assert list(sink.spool.folder.glob("*.event")) == []  # the files the full disk kept went with the next removal


def test_a_read_error_keeps_the_event_and_blames_the_disk_not_the_receiver(tmp_path, monkeypatch, receiver):
    receiver.start()
    opened: list[str] = []

    def flaky_open(path, mode="r", *args, **kwargs):  # the spool's open(): its first read fails as a worn SD card's can
        if mode == "rb":
            opened.append(str(path))
            if len(opened) == 1:
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(spool_module, "open", flaky_open, raising=False)
    warnings: list[str] = []
    sinks = open_sinks(fast(tmp_path, webhook=receiver.url), warnings.append)
    try:
        sinks.emit(label(0))
        sinks.emit(label(1))
        assert receiver.wait(lambda r: len(r.accepted) == 2), warnings
    finally:
        (report,) = sinks.close()
    assert receiver.accepted == [encoded(label(0)), encoded(label(1))] and report.delivered == 2
    assert warnings == [f"{opened[0]}: cannot read this spooled event (Input/output error); it is kept, retrying in 0.05 s"]


@pytest.mark.parametrize("failure", [OSError(errno.EROFS, os.strerror(errno.EROFS)), RuntimeError("a bug")])
def test_events_that_never_reached_the_spool_are_counted_as_lost(tmp_path, monkeypatch, receiver, failure):
    def put(self, payload):
        raise failure

    monkeypatch.setattr(Spool, "put", put)  # read-only until the end, or a writer that fails
    warnings: list[str] = []
    sinks = open_sinks(fast(tmp_path, webhook=receiver.url, flush_s=0), warnings.append)
    for n in range(5):
        sinks.emit(label(n))
    (report,) = sinks.close()
    assert (report.delivered, report.kept, report.lost) == (0, 0, 5)
    assert f"{report.label}: 5 event(s) lost: not written to {report.spool} in time (full or read-only?), " \
           "or dropped from it when it was full" in warnings
