"""edge.camera.loop: the loop on real-photo videos, folders, an MJPEG stream that drops, a model slower than
its camera, and the Pi camera adapter; events in the right order at the right frames, and summary counts
that add up. Where threads meet, the tests wait for the event they are about, never for wall time."""

from __future__ import annotations

import threading

import pytest

from catdog.edge.camera.frames import Frame, SourceConfig
from catdog.edge.camera.loop import LabelEvent, Notice, WatchConfig, snapshot_name, watch
from catdog.edge.camera.streams import open_stream
from catdog.edge.errors import CameraSetupError
from tests.edge.camera.helpers import (
    PATIENCE_S,
    RUN,
    GatedSource,
    HookedClassifier,
    MjpegServer,
    cat_dog_cat,
    require_opencv,
    wait_for,
    write_folder,
    write_video,
)

SMOOTH = 5
#: With --smooth 5 a label needs 4 of the last 5 votes: it is reported on the 4th frame of a run.
REPORTED_AFTER = 3


def _run(classifier, config: SourceConfig, watch_config: WatchConfig = WatchConfig(smooth=SMOOTH), stop=None, source=None):
    events: list = []
    summary = watch(classifier, open_stream(config, source), watch_config, events.append, stop)
    return summary, [e for e in events if isinstance(e, LabelEvent)], [e for e in events if isinstance(e, Notice)]


def _assert_cat_dog_cat(labels: list[LabelEvent], exact: bool):
    """One event per run, on the run's 4th frame (exact: lossless frames the model is sure of), else
    within the smoothing window after the run starts (lossy video: one frame may vote otherwise)."""
    assert [e.label for e in labels] == ["cat", "dog", "cat"], labels
    for event, start in zip(labels, (0, RUN, 2 * RUN)):
        if exact:
            assert event.frame == start + REPORTED_AFTER, (event, start)
        else:
            assert start <= event.frame < start + SMOOTH, (event, start)
        assert event.confidence >= 0.5 and event.event == "label"


def _counts(summary) -> tuple[int, int, int, int]:
    return summary.frames, summary.classified, summary.skipped, summary.dropped


def test_video_file_events_in_order_and_counts_add_up(classifier, confident_frames, tmp_path):
    require_opencv()
    video = write_video(tmp_path / "catdogcat.avi", cat_dog_cat(confident_frames), fps=25)
    summary, labels, notices = _run(classifier, SourceConfig(str(video)))
    _assert_cat_dog_cat(labels, exact=False)
    assert [e.t for e in labels] == pytest.approx([e.frame / 25 for e in labels])
    assert _counts(summary) == (3 * RUN, 3 * RUN, 0, 0)
    assert summary.events == 3 and summary.stopped == "end" and summary.error is None and not notices
    # every latency falls inside the run: milliseconds, from reading a frame to its decision
    assert 0 < summary.latency_ms["p50"] <= summary.latency_ms["p95"] <= summary.seconds * 1000


def test_every_nth_frame_and_max_frames(classifier, confident_frames, tmp_path):
    require_opencv()
    video = write_video(tmp_path / "catdogcat.avi", cat_dog_cat(confident_frames), fps=25)
    summary, labels, _ = _run(classifier, SourceConfig(str(video)), WatchConfig(every=2, smooth=3))
    assert [e.label for e in labels] == ["cat", "dog", "cat"]
    assert all(e.frame % 2 == 0 for e in labels)
    assert _counts(summary) == (3 * RUN, 3 * RUN // 2, 3 * RUN // 2, 0)
    summary, labels, _ = _run(classifier, SourceConfig(str(video), max_frames=RUN + 2))
    assert [e.label for e in labels] == ["cat"] and summary.frames == RUN + 2 and summary.stopped == "max-frames"


def test_folder_source_snapshots_and_heartbeats(classifier, confident_frames, tmp_path):
    folder = write_folder(tmp_path / "frames", cat_dog_cat(confident_frames))
    snapshots = tmp_path / "snaps"
    config = WatchConfig(smooth=SMOOTH, heartbeat_s=0.5, save_dir=snapshots)
    summary, events, notices = _run(classifier, SourceConfig(str(folder), fps=10), config)
    labels = [e for e in events if e.event == "label"]
    beats = [e for e in events if e.event == "heartbeat"]
    _assert_cat_dog_cat(labels, exact=True)
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


def test_loop_feeds_the_smoother_from_the_classifiers_prediction(classifier, confident_frames, tmp_path):
    # One inference path: the events agree frame for frame with Classifier.classify on the same frames.
    frames = [*confident_frames["cat"][:3], confident_frames["dog"][0], *confident_frames["cat"][3:5]]
    folder = write_folder(tmp_path / "frames", frames)
    _, labels, _ = _run(classifier, SourceConfig(str(folder)), WatchConfig(smooth=1))
    expected = [classifier.classify(frame) for frame in frames]
    assert [(e.frame, e.label) for e in labels] == [(0, "cat"), (3, "dog"), (4, "cat")]
    assert [e.confidence for e in labels] == pytest.approx([expected[i].confidence for i in (0, 3, 4)], abs=1e-6)


def test_on_frame_sees_every_frame_after_its_events_with_the_state_so_far(classifier, confident_frames, tmp_path):
    folder = write_folder(tmp_path / "frames", cat_dog_cat(confident_frames))
    seen: list = []
    events: list = []

    def on_frame(frame, state):
        seen.append((frame.index, state, len(events)))

    summary = watch(classifier, open_stream(SourceConfig(str(folder))), WatchConfig(every=2, smooth=3), events.append,
                    on_frame=on_frame)
    assert [index for index, _, _ in seen] == list(range(3 * RUN))
    assert [state.frames for _, state, _ in seen] == list(range(1, 3 * RUN + 1))
    assert [state.classified for _, state, _ in seen] == [i // 2 + 1 for i in range(3 * RUN)]
    assert all((state.latency_ms is None) == (index % 2 == 1) for index, state, _ in seen)
    assert all(state.dropped == 0 for _, state, _ in seen)
    for event in events:  # the state of an event's frame already carries the event's label
        index, state, known = next(item for item in seen if item[0] == event.frame)
        assert (state.label, state.confidence) == (event.label, event.confidence) and known == events.index(event) + 1
    assert seen[0][1].label is None and summary.frames == 3 * RUN


def test_mjpeg_stream_drop_warns_reconnects_and_keeps_going(classifier, confident_frames):
    require_opencv()
    frames = [*confident_frames["cat"], *confident_frames["dog"]]
    server = MjpegServer(frames, fps=25, down_after=30).start()  # the camera goes down after 30 frames
    config = SourceConfig(server.url, backoff_s=0.1, backoff_max_s=0.4, timeout_s=5)
    stream = open_stream(config)
    events: list = []
    stop = threading.Event()
    result: dict = {}
    loop = threading.Thread(
        target=lambda: result.update(summary=watch(classifier, stream, WatchConfig(smooth=SMOOTH), events.append, stop))
    )
    loop.start()

    def refused() -> bool:  # a reopen attempt failed while the server was down
        return any(isinstance(e, Notice) and "cannot open" in e.message for e in events)

    try:
        assert wait_for(refused), f"no failed reopen after the drop ({stream.frames} frames)"
        frames_at_restart = stream.frames
        server.stop()
        # Back up with frames of one label, the other one than the loop's last: a label event follows
        # however few of them the model keeps up with (an emulated Pi classifies a handful a second).
        last = next((e.label for e in reversed(events) if isinstance(e, LabelEvent)), None)
        server.show(confident_frames["cat" if last == "dog" else "dog"])
        server.down_after = None
        server.start()  # same port
        assert wait_for(lambda: stream.frames >= frames_at_restart + 30), "did not reconnect"
        assert wait_for(
            lambda: any(isinstance(e, LabelEvent) and e.frame >= frames_at_restart for e in events)
        ), "no label event after reconnecting"
    finally:
        stop.set()
        loop.join(timeout=PATIENCE_S)
        server.stop()
    assert not loop.is_alive()
    summary = result["summary"]
    notices = [e.message for e in events if isinstance(e, Notice)]
    labels = [e for e in events if isinstance(e, LabelEvent)]
    assert frames_at_restart == 30, "every frame before the drop is read"
    assert notices[0] == f"{server.url}: stopped delivering frames; reopening in 0.1 s (attempt 1)", notices
    assert all(server.url in m and "reopening in" in m for m in notices) and refused()
    assert summary.stopped == "stopped" and summary.error is None
    assert summary.frames == summary.classified + summary.dropped + summary.skipped
    assert labels[-1].frame >= frames_at_restart and all(a.label != b.label for a, b in zip(labels, labels[1:]))


def test_slow_model_drops_frames_instead_of_queueing(classifier, confident_frames):
    # While the model is busy with frame 0 the camera delivers five more: the loop then takes the newest
    # (frame 5) and the four in between are dropped, not queued.
    cat, dogs = confident_frames["cat"][0], confident_frames["dog"][:5]
    source = GatedSource([cat, *dogs], fps=1000)
    stream = open_stream(SourceConfig("gated", realtime=True), source)

    def busy_with_frame_0(n: int) -> None:
        if n == 1:
            source.allow(5)
            assert wait_for(lambda: stream.frames == 6), f"the camera delivered {stream.frames} frames"

    source.allow(1)
    events: list = []
    summary = watch(HookedClassifier(classifier, busy_with_frame_0), stream, WatchConfig(smooth=1), events.append)
    assert _counts(summary) == (6, 2, 0, 4) and summary.stopped == "end"
    assert [(e.frame, e.label) for e in events] == [(0, "cat"), (5, "dog")]


def test_stop_event_ends_the_loop(classifier, confident_frames, tmp_path):
    folder = write_folder(tmp_path / "frames", confident_frames["cat"])
    stop = threading.Event()
    stop_on_second = HookedClassifier(classifier, lambda n: n == 2 and stop.set())
    summary, _, _ = _run(stop_on_second, SourceConfig(str(folder), fps=20, realtime=True), stop=stop)
    assert summary.stopped == "stopped" and summary.classified == 2 and summary.error is None
    assert summary.frames == summary.classified + summary.dropped + summary.skipped


def test_duration_ends_the_loop(classifier, confident_frames, fake_picamera2):
    fake_picamera2.frames = confident_frames["cat"][:1]  # a camera that never ends
    summary, _, _ = _run(classifier, SourceConfig("picamera"), WatchConfig(duration_s=0.3))
    assert summary.stopped == "duration" and summary.seconds >= 0.3 and summary.error is None
    assert summary.frames == summary.classified + summary.dropped + summary.skipped


def test_picamera_loop_through_the_stand_in(classifier, confident_frames, fake_picamera2):
    """Everything above the picamera2 adapter is the code real cameras use; only Picamera2 is faked."""
    fake_picamera2.frames = [*confident_frames["cat"], *confident_frames["dog"]]
    fake_picamera2.turns = threading.Semaphore(1)  # the camera delivers a frame once the loop took the one before
    taking = HookedClassifier(classifier, lambda n: fake_picamera2.turns.release())
    config = SourceConfig("picamera", size_hw=(240, 320), max_frames=2 * RUN + 10)
    summary, labels, _ = _run(taking, config)
    assert [(e.frame, e.label) for e in labels] == [(REPORTED_AFTER, "cat"), (RUN + REPORTED_AFTER, "dog")]
    assert fake_picamera2.calls[2] == ("configure", {"main": {"size": (320, 240), "format": "BGR888"}})
    assert fake_picamera2.calls[-2:] == [("stop",), ("close",)]
    assert _counts(summary) == (2 * RUN + 10, 2 * RUN + 10, 0, 0) and summary.stopped == "max-frames"


def test_config_is_validated():
    for kwargs in ({"every": 0}, {"smooth": 0}, {"min_confidence": 2.0}, {"heartbeat_s": 0}, {"duration_s": -1}):
        with pytest.raises(CameraSetupError):
            WatchConfig(**kwargs)


def test_a_hostile_label_never_leaves_the_snapshot_folder():
    import datetime

    frame = Frame(rgb=None, index=7, t=0.0, captured=0.0)
    at = datetime.datetime(2026, 7, 1, 8, 5, 3, 120000)
    for label in ("../../etc/passwd", "a/b", "nul\x00byte", "\x1b[31mred", "..", "", "chat \u00e9"):
        name = snapshot_name(frame, label, at)
        assert "/" not in name and "\x00" not in name and "\x1b" not in name and name.endswith(".jpg"), name
        assert name.startswith("20260701-080503-120_f0000007_") and not name.split("_f0000007_")[1].startswith(".")


def test_an_empty_scene_is_the_state_none_and_only_the_visits_are_events(bundled_model, val_photos, nothing_photos, tmp_path):
    """The default model's presence score makes "none" a state like any label: a porch that empties reads
    dog -> none, and empty frames before, between and after the visits give no cat or dog event at all.
    Frames are taken as the model answers them alone, so the test is about the loop, not the model."""
    from catdog.edge.classify import Classifier
    from tests.edge.camera.helpers import to_frame

    default = Classifier.load(bundled_model)

    def frames_answered(paths, answer, n):
        chosen = [f for f in map(to_frame, paths[:4 * n]) if default.classify(f).label == answer][:n]
        assert len(chosen) == n, f"only {len(chosen)} frames answered {answer}"
        return chosen

    empty = frames_answered(nothing_photos, "none", 3 * SMOOTH)
    cats, dogs = frames_answered(val_photos["cat"], "cat", SMOOTH), frames_answered(val_photos["dog"], "dog", SMOOTH)
    frames = [*empty[:SMOOTH], *cats, *empty[SMOOTH:2 * SMOOTH], *dogs, *empty[2 * SMOOTH:]]
    _, labels, _ = _run(default, SourceConfig(str(write_folder(tmp_path / "porch", frames))))
    assert [e.label for e in labels] == ["none", "cat", "none", "dog", "none"], labels
    assert [e.frame for e in labels] == [REPORTED_AFTER + i * SMOOTH for i in range(5)]
    assert all(e.confidence > 0.5 for e in labels)
    # --no-presence: the forced choice of old, every empty frame is a cat or a dog
    forced = Classifier.load(bundled_model, presence=False)
    _, labels, _ = _run(forced, SourceConfig(str(write_folder(tmp_path / "forced", frames))))
    assert "none" not in [e.label for e in labels]
