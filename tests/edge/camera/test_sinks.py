"""Sink settings and the sinks' life cycle: what is checked at start-up (usage errors, exit 2), one spool
folder per receiver, the flush time on close, and the summary sent when the camera stops."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from catdog.edge.camera import SinkConfig, open_sinks
from catdog.edge.camera.spool import Spool
from catdog.edge.camera.webhook import WebhookTarget
from catdog.edge.cli import app
from catdog.edge.errors import SinkSetupError
from tests.edge.camera.helpers import wait_for
from tests.edge.camera.receivers import Receiver, free_port


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


def test_close_keeps_what_the_flush_time_could_not_deliver(tmp_path):
    receiver = Receiver()  # never started: refused
    warnings: list[str] = []
    sinks = open_sinks(SinkConfig(webhook=receiver.url, spool=tmp_path / "spool", retry_s=0.05, flush_s=0.3),
                       warnings.append)
    for n in range(3):
        sinks.emit({"event": "label", "frame": n})
    (report,) = sinks.close()  # returns once the flush time is over
    assert (report.delivered, report.kept) == (0, 3) and report.label == f"webhook {receiver.url}"
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
