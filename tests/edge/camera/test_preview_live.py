"""edge.camera.live: what the preview keeps from the loop (newest frame and state, recent events, snapshots by
event id only), and its encoder: nothing encoded while nobody watches, at most --preview-fps while someone does,
and every viewer gets the newest JPEG."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from catdog.edge.camera import live as live_module
from catdog.edge.camera.frames import Frame
from catdog.edge.camera.live import LiveView, public_source
from catdog.edge.camera.loop import LabelEvent, LoopState, Notice
from catdog.edge.camera.preview_config import PreviewConfig
from tests.edge.camera.helpers import PATIENCE_S, wait_for


@pytest.fixture
def drawn(monkeypatch) -> list[float]:
    """Times (monotonic) at which the encoder drew a preview frame."""
    times: list[float] = []
    real = live_module.preview_image

    def spy(*args, **kwargs):
        times.append(time.monotonic())
        return real(*args, **kwargs)

    monkeypatch.setattr(live_module, "preview_image", spy)
    return times


def _feed(view: LiveView, frames, start: int = 0, label: str | None = "cat") -> None:
    for i, rgb in enumerate(frames, start=start):
        view.observe(Frame(rgb, i, i / 25, time.monotonic()), LoopState(label, 0.9, i + 1, i + 1, 0, 5.0))


def test_state_and_events_follow_the_loop(confident_frames):
    view = LiveView(PreviewConfig(events_kept=2), {"labels": ["cat", "dog"]})
    try:
        assert view.state()["label"] is None and view.state()["frames"] == 0 and view.events_after(0) == []
        _feed(view, confident_frames["cat"][:3])
        for i, label in enumerate(("cat", "dog", "cat")):
            view.on_event(LabelEvent("label", i, i / 25, label, 0.9))
        view.on_event(LabelEvent("heartbeat", 5, 0.2, "cat", 0.9))  # not a change: not listed
        view.on_event(Notice("reconnecting"))
        state = view.state()
        assert (state["label"], state["frames"], state["latency_ms"], state["last_event"]) == ("cat", 3, 5.0, 3)
        assert state["since"] == pytest.approx(time.time(), abs=PATIENCE_S)
        assert [(e["id"], e["label"]) for e in view.events_after(0)] == [(2, "dog"), (3, "cat")]  # the last 2 kept
        assert [e["id"] for e in view.events_after(2)] == [3] and view.events_after(3) == []
    finally:
        view.close()


def test_snapshots_are_served_by_event_id_from_the_save_dir_only(tmp_path):
    saves = tmp_path / "snaps"
    saves.mkdir()
    (saves / "a.jpg").write_bytes(b"jpeg")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"secret")
    (saves / "link.jpg").symlink_to(outside)
    view = LiveView(PreviewConfig(events_kept=5), {}, save_dir=saves)
    try:
        for path in (saves / "a.jpg", outside, saves / "link.jpg", saves / "gone.jpg", saves / ".." / "secret.jpg"):
            view.on_event(LabelEvent("label", 0, 0.0, "cat", 0.9, path))
        assert view.event_snapshot(1) == (saves / "a.jpg").resolve()
        assert [view.event_snapshot(i) for i in (2, 3, 4, 5, 6, 0, -1)] == [None] * 7
        assert view.events_after(0)[0]["snapshot"] == "events/1.jpg"  # the page links by id, never by path
        for _ in range(5):
            view.on_event(LabelEvent("label", 0, 0.0, "dog", 0.9, saves / "a.jpg"))
        assert view.event_snapshot(1) is None and view.event_snapshot(6) is not None  # forgotten once not kept
    finally:
        view.close()
    nowhere = LiveView(PreviewConfig(), {})
    nowhere.on_event(LabelEvent("label", 0, 0.0, "cat", 0.9, saves / "a.jpg"))
    assert nowhere.event_snapshot(1) is None  # no --save-dir, nothing served
    nowhere.close()


def test_nothing_is_encoded_while_nobody_watches(confident_frames, drawn):
    view = LiveView(PreviewConfig(preview_fps=50), {})
    try:
        _feed(view, confident_frames["cat"])
        assert not wait_for(lambda: drawn, timeout=0.5)
        with view.watching():
            assert view.next_jpeg(0, PATIENCE_S) is not None and len(drawn) == 1
        assert view.state()["viewers"] == 0
    finally:
        view.close()


def test_encoding_is_at_most_preview_fps_and_viewers_get_the_newest(confident_frames, drawn):
    fps = 8.0
    view = LiveView(PreviewConfig(preview_fps=fps), {})
    frames = confident_frames["cat"] + confident_frames["dog"]
    feeding = threading.Event()

    def feed() -> None:  # a camera much faster than the preview: a new frame each millisecond
        i = 0
        while not feeding.is_set():
            _feed(view, [frames[i % len(frames)]], start=i)
            i += 1
            time.sleep(0.001)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        with view.watching():
            seen = 0
            got = []
            while len(got) < 5:
                newest = view.next_jpeg(seen, PATIENCE_S)
                assert newest is not None
                seen, jpeg = newest
                got.append(seen)
                assert jpeg[:2] == b"\xff\xd8"
    finally:
        feeding.set()
        feeder.join()
        view.close()
    gaps = [b - a for a, b in zip(drawn, drawn[1:])]
    assert gaps and min(gaps) >= 1 / fps - 0.005, gaps  # never faster than --preview-fps
    assert got == sorted(set(got))  # each viewer sees newer frames only, never a backlog


def test_snapshot_is_the_newest_frame_and_rate_limited(confident_frames):
    view = LiveView(PreviewConfig(preview_fps=1), {})
    try:
        assert view.snapshot_jpeg() is None
        _feed(view, confident_frames["cat"][:1])
        first = view.snapshot_jpeg()
        _feed(view, confident_frames["dog"][:1], start=1)
        assert view.snapshot_jpeg() == first  # within 1 s of the last encoding: the same bytes
    finally:
        view.close()


def test_close_wakes_waiting_viewers_and_stops_the_encoder(confident_frames):
    view = LiveView(PreviewConfig(), {})
    results = []
    waiter = threading.Thread(target=lambda: results.append(view.next_jpeg(10**9, PATIENCE_S)))
    waiter.start()
    view.close()
    waiter.join(PATIENCE_S)
    assert results == [None] and not waiter.is_alive()
    assert not any(t.name == "catdog-preview-encoder" and t.is_alive() for t in threading.enumerate())


def test_public_source_hides_credentials():
    assert public_source("rtsp://user:pw@cam.local:554/s1") == "rtsp://***@cam.local:554/s1"
    assert public_source("http://cam.local/mjpg") == "http://cam.local/mjpg"
    assert public_source(str(Path("/dev/video0"))) == "/dev/video0"
