"""edge.camera: the loop on real-photo videos, folders, an MJPEG stream that drops, a slow model, and the
Pi camera adapter; events in the right order at the right frames, and summary counts that add up."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest

from catdog.edge.camera import LabelEvent, Notice, WatchConfig, snapshot_name, watch
from catdog.edge.classify import Classifier
from catdog.edge.errors import CameraSetupError
from catdog.edge.sources import Frame, SourceConfig, open_stream
from tests.edge.camera_fixtures import (
    RUN,
    MjpegServer,
    cat_dog_cat,
    wait_for,
    write_folder,
    write_video,
)

SMOOTH = 5


def _run(classifier, config: SourceConfig, watch_config: WatchConfig = WatchConfig(smooth=SMOOTH), stop=None):
    events: list = []
    summary = watch(classifier, open_stream(config), watch_config, events.append, stop)
    return summary, [e for e in events if isinstance(e, LabelEvent)], [e for e in events if isinstance(e, Notice)]


def _assert_cat_dog_cat(labels: list[LabelEvent]):
    """One event per run, each within the smoothing window after the run starts (in source frames)."""
    assert [e.label for e in labels] == ["cat", "dog", "cat"], labels
    for event, start in zip(labels, (0, RUN, 2 * RUN)):
        assert start <= event.frame < start + SMOOTH, (event, start)
        assert event.confidence >= 0.5 and event.event == "label"


def test_video_file_events_in_order_and_counts_add_up(classifier, confident_frames, tmp_path):
    pytest.importorskip("cv2", reason="OpenCV (the camera extra) is not installed in this environment")
    video = write_video(tmp_path / "catdogcat.avi", cat_dog_cat(confident_frames), fps=25)
    summary, labels, notices = _run(classifier, SourceConfig(str(video)))
    _assert_cat_dog_cat(labels)
    assert [e.t for e in labels] == pytest.approx([e.frame / 25 for e in labels])
    assert (summary.frames, summary.classified, summary.skipped, summary.dropped) == (3 * RUN, 3 * RUN, 0, 0)
    assert summary.events == 3 and summary.stopped == "end" and summary.error is None and not notices
    assert 0 < summary.latency_ms["p50"] <= summary.latency_ms["p95"] < 5000


def test_every_nth_frame_and_max_frames(classifier, confident_frames, tmp_path):
    pytest.importorskip("cv2", reason="OpenCV (the camera extra) is not installed in this environment")
    video = write_video(tmp_path / "catdogcat.avi", cat_dog_cat(confident_frames), fps=25)
    summary, labels, _ = _run(classifier, SourceConfig(str(video)), WatchConfig(every=2, smooth=3))
    assert [e.label for e in labels] == ["cat", "dog", "cat"]
    assert all(e.frame % 2 == 0 for e in labels)
    assert (summary.frames, summary.classified, summary.skipped, summary.dropped) == (3 * RUN, 3 * RUN // 2, 3 * RUN // 2, 0)
    summary, labels, _ = _run(classifier, SourceConfig(str(video), max_frames=RUN + 2))
    assert [e.label for e in labels] == ["cat"] and summary.frames == RUN + 2 and summary.stopped == "max-frames"


def test_folder_source_snapshots_and_heartbeats(classifier, confident_frames, tmp_path):
    folder = write_folder(tmp_path / "frames", cat_dog_cat(confident_frames))
    snapshots = tmp_path / "snaps"
    config = WatchConfig(smooth=SMOOTH, heartbeat_s=0.5, save_dir=snapshots)
    summary, events, notices = _run(classifier, SourceConfig(str(folder), fps=10), config)
    labels = [e for e in events if e.event == "label"]
    beats = [e for e in events if e.event == "heartbeat"]
    _assert_cat_dog_cat(labels)
    assert summary.frames == summary.classified == 3 * RUN and not notices
    # a heartbeat restates the current label 0.5 s (5 frames at 10 fps) after the last event
    assert beats and all(b.label is not None for b in beats)
    for beat in beats:
        before = [e for e in events if e.frame < beat.frame]
        assert beat.t - before[-1].t == pytest.approx(0.5)
        assert beat.label == [e for e in before if e.event == "label"][-1].label and beat.snapshot is None
    saved = sorted(p.name for p in snapshots.iterdir())
    assert [e.snapshot.name for e in labels] == saved
    assert [name.rsplit("_", 1)[1] for name in saved] == ["cat.jpg", "dog.jpg", "cat.jpg"]
    assert labels[1].to_dict()["snapshot"] == str(labels[1].snapshot)


def test_snapshot_name_sorts_by_time_and_says_the_label():
    import datetime

    frame = Frame(rgb=None, index=42, t=1.0, captured=0.0)
    name = snapshot_name(frame, "dog", datetime.datetime(2026, 7, 1, 8, 5, 3, 120000))
    assert name == "20260701-080503-120_f0000042_dog.jpg"


def test_mjpeg_stream_drop_warns_reconnects_and_keeps_going(classifier, confident_frames):
    pytest.importorskip("cv2", reason="OpenCV (the camera extra) is not installed in this environment")
    frames = [*confident_frames["cat"], *confident_frames["dog"]]
    server = MjpegServer(frames, fps=25).start()
    config = SourceConfig(server.url, backoff_s=0.1, backoff_max_s=0.4, timeout_s=5)
    stream = open_stream(config)
    events: list = []
    stop = threading.Event()
    result: dict = {}
    loop = threading.Thread(
        target=lambda: result.update(summary=watch(classifier, stream, WatchConfig(smooth=SMOOTH), events.append, stop))
    )
    loop.start()
    try:
        assert wait_for(lambda: stream.frames >= 30, timeout=20), f"only {stream.frames} frames before the drop"
        server.stop()
        assert wait_for(lambda: any(isinstance(e, Notice) for e in events), timeout=20), "no warning when the stream dropped"
        time.sleep(0.5)  # a few reopen attempts fail while the server is down
        frames_at_restart = stream.frames
        server.start()  # same port
        assert wait_for(lambda: stream.frames >= frames_at_restart + 30, timeout=20), "did not reconnect"
        assert wait_for(
            lambda: any(isinstance(e, LabelEvent) and e.frame >= frames_at_restart for e in events), timeout=20
        ), "no label event after reconnecting"
    finally:
        stop.set()
        loop.join(timeout=20)
        server.stop()
    assert not loop.is_alive()
    summary = result["summary"]
    notices = [e.message for e in events if isinstance(e, Notice)]
    labels = [e for e in events if isinstance(e, LabelEvent)]
    assert any("stopped delivering frames" in m and "reopening in" in m for m in notices), notices
    assert all(server.url in m for m in notices)
    assert summary.stopped == "stopped" and summary.error is None
    assert summary.frames == summary.classified + summary.dropped + summary.skipped
    assert len(labels) >= 2 and all(a.label != b.label for a, b in zip(labels, labels[1:]))


class SlowClassifier(Classifier):
    """The bundled model with an artificial delay per classification."""

    delay_s = 0.1

    def predict(self, pixels):
        time.sleep(self.delay_s)
        return super().predict(pixels)


def test_slow_model_drops_frames_instead_of_queueing(bundled_model, confident_frames, tmp_path):
    # 80 frames played live at 40 fps (2 s) into a model that needs 0.1 s a frame: it can take ~20.
    # Queued, the last frames would wait ~6 s; with the newest-frame reader a frame waits at most
    # about one classification.
    folder = write_folder(tmp_path / "frames", [*confident_frames["cat"], *confident_frames["dog"]] * 3 + confident_frames["cat"][:8])
    slow = SlowClassifier.load(bundled_model)
    start = time.monotonic()
    summary, labels, _ = _run(slow, SourceConfig(str(folder), fps=40, realtime=True), WatchConfig(smooth=1))
    elapsed = time.monotonic() - start
    assert summary.frames == 80
    assert summary.frames == summary.classified + summary.dropped + summary.skipped
    assert summary.dropped > 20 and summary.classified < 60
    assert summary.latency_ms["p95"] < 2500, summary.latency_ms
    assert elapsed < 6, "the loop fell behind the source"
    assert labels  # it still reports what it sees


def test_stop_event_and_duration_end_the_loop(classifier, confident_frames, tmp_path):
    folder = write_folder(tmp_path / "frames", confident_frames["cat"])
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    try:
        summary, _, _ = _run(classifier, SourceConfig(str(folder), fps=4, realtime=True), stop=stop)
    finally:
        timer.cancel()
    assert summary.stopped == "stopped" and 1 <= summary.frames < RUN
    summary, _, _ = _run(classifier, SourceConfig(str(folder), fps=4, realtime=True), WatchConfig(duration_s=0.6))
    assert summary.stopped == "duration" and 1 <= summary.frames < RUN and summary.seconds < 5


def test_picamera_loop_through_the_stand_in(classifier, confident_frames, monkeypatch):
    """Everything above the picamera2 adapter is the code real cameras use; only Picamera2 is faked."""
    served = [*confident_frames["cat"], *confident_frames["dog"]]
    calls = []

    class Picamera2:
        def __init__(self):
            self.i = 0

        def create_video_configuration(self, main):
            return {"main": main}

        def configure(self, config):
            calls.append(("configure", config["main"]["size"]))

        def start(self):
            calls.append(("start",))

        def capture_array(self, name="main"):
            time.sleep(0.01)  # a camera delivers at its frame rate
            frame = served[min(self.i, len(served) - 1)]
            self.i += 1
            return frame.copy()

        def stop(self):
            calls.append(("stop",))

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=Picamera2))
    summary, labels, _ = _run(classifier, SourceConfig("picamera", size_hw=(240, 320), max_frames=2 * RUN + 10))
    assert [e.label for e in labels] == ["cat", "dog"]
    assert calls[0] == ("configure", (320, 240)) and calls[-2:] == [("stop",), ("close",)]
    assert summary.frames == 2 * RUN + 10 and summary.frames == summary.classified + summary.dropped


def test_config_is_validated():
    for kwargs in ({"every": 0}, {"smooth": 0}, {"min_confidence": 2.0}, {"heartbeat_s": 0}, {"duration_s": -1}):
        with pytest.raises(CameraSetupError):
            WatchConfig(**kwargs)
