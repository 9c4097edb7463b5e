"""edge.camera.collect: which frames are kept (label events, uncertain answers, a sparse sample), their sidecars,
the inbox's bound and its warning, writes through edge.files on the writer's thread, a full queue that drops
instead of blocking the loop, and catdog-edge camera --collect end to end."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from catdog.edge import files
from catdog.edge.camera import collect
from catdog.edge.camera.collect import INBOX, MAX_FRAMES, CollectConfig, Collector, closeness
from catdog.edge.camera.frames import Frame
from catdog.edge.camera.loop import LoopState
from catdog.edge.classify import Outputs
from catdog.edge.errors import CameraSetupError
from catdog.edge.presence import Presence
from tests.edge.camera.helpers import PATIENCE_S, write_folder

PIXELS = np.full((24, 32, 3), 90, np.uint8)


def predict(classifier, p_dog: float, presence: float | None = None):
    """The classifier's real answer for these outputs (labels cat, dog)."""
    return classifier.answer(None, Outputs(np.array([1 - p_dog, p_dog], np.float32), presence), 1.0)


def state(label, prediction) -> LoopState:
    return LoopState(label, None if prediction is None else prediction.confidence, 1, 1, 0, 1.0, prediction)


def sidecars(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / INBOX).glob("*.json"))]


def test_closeness_is_the_probability_change_that_would_change_the_answer(classifier):
    assert closeness(classifier, predict(classifier, 0.55)) == pytest.approx(0.05)  # sigmoid: |p(dog) - 0.5|
    assert closeness(classifier, predict(classifier, 0.02)) == pytest.approx(0.48)
    softmax = SimpleNamespace(contract=SimpleNamespace(activation="softmax", labels=("a", "b", "c")), threshold=0.5,
                              presence=None, presence_threshold=None)
    three = SimpleNamespace(scores={"a": 0.5, "b": 0.3, "c": 0.2}, present=None, presence=None)
    assert closeness(softmax, three) == pytest.approx(0.1)  # half the gap between the two best
    gate = Presence(output="presence", threshold=0.0, scale=1.0)
    with_presence = SimpleNamespace(contract=classifier.contract, threshold=0.5, presence=gate, presence_threshold=0.0)
    sure_dog_at_threshold = SimpleNamespace(scores={"cat": 0.0, "dog": 1.0}, present=True, presence=0.0)
    assert closeness(with_presence, sure_dog_at_threshold) == pytest.approx(0.0)  # presence probability 0.5
    none_with_even_labels = SimpleNamespace(scores={"cat": 0.5, "dog": 0.5}, present=False, presence=-10.0)
    assert closeness(with_presence, none_with_even_labels) > 0.49  # "none": the labels do not decide it


def test_keeps_event_frames_uncertain_frames_and_a_sparse_sample(classifier, tmp_path):
    config = CollectConfig(tmp_path, margin=0.1, uncertain_every_s=2.0, sample_every_s=10.0)
    collector = Collector(config, classifier, "0")
    sure, unsure = predict(classifier, 0.02), predict(classifier, 0.45)
    run = [  # (frame time, smoothed label, the frame's own answer); None: skipped by --every
        (0.0, None, sure),  # before the first label event: nothing
        (1.0, "cat", sure),  # event
        (2.0, "cat", sure),
        (3.0, "cat", unsure),  # uncertain
        (4.0, "cat", unsure),  # uncertain again within 2 s: not kept
        (5.0, "cat", unsure),  # uncertain, 2 s later
        (6.0, "cat", None),  # not classified: never kept
        (14.0, "cat", sure),  # 9 s since the last kept frame
        (15.0, "cat", sure),  # 10 s: sample
        (16.0, "none", sure),  # event (none is a label event like any other)
        (17.0, "dog", predict(classifier, 0.97)),  # event
        (26.0, "dog", predict(classifier, 0.97)),
    ]
    for index, (t, label, prediction) in enumerate(run):
        collector.observe(Frame(PIXELS, index, t, time.monotonic()), state(label, prediction))
    report = collector.close()
    kept = [(record["frame"], record["kept"]) for record in sidecars(tmp_path)]
    assert kept == [(1, "event"), (3, "uncertain"), (5, "uncertain"), (8, "sample"), (9, "event"), (10, "event")]
    assert (report.kept, report.busy, report.pruned, report.failed) == (6, 0, 0, 0)
    assert sorted(p.stem for p in (tmp_path / INBOX).glob("*.jpg")) == sorted(
        p.stem for p in (tmp_path / INBOX).glob("*.json"))


def test_a_sidecar_says_when_where_what_and_why_without_secrets(classifier, tmp_path):
    model = SimpleNamespace(contract=classifier.contract, threshold=0.5, presence=None, presence_threshold=None,
                            model_path=Path("/home/someone/models/porch.tflite"))
    collector = Collector(CollectConfig(tmp_path), model, "rtsp://admin:hunter2@cam.local/stream")
    collector.observe(Frame(PIXELS, 7, 3.5, time.monotonic()), state("dog", predict(classifier, 0.9)))
    collector.close()
    (record,) = sidecars(tmp_path)
    assert record["source"] == "rtsp://***@cam.local/stream"
    assert record["model"] == "porch.tflite"
    assert (record["frame"], record["t"], record["kept"], record["label"], record["smoothed"]) == (7, 3.5, "event",
                                                                                                  "dog", "dog")
    assert record["scores"]["dog"] == pytest.approx(0.9, abs=1e-6) and record["confidence"] == pytest.approx(0.9, abs=1e-6)
    assert record["time"][:2] == "20" and "T" in record["time"]
    text = "".join(p.read_text(errors="replace") for p in (tmp_path / INBOX).iterdir())
    assert "hunter2" not in text and "/home/someone" not in text
    (jpeg,) = (tmp_path / INBOX).glob("*.jpg")
    assert jpeg.name.endswith("_f0000007_dog.jpg") and jpeg.read_bytes()[:2] == b"\xff\xd8"


def test_the_inbox_is_bounded_and_dropping_says_how_many(classifier, tmp_path):
    warnings: list[str] = []
    collector = Collector(CollectConfig(tmp_path, max_frames=3), classifier, "0", warnings.append)
    for index in range(5):  # every frame a label event
        collector.observe(Frame(PIXELS, index, float(index), time.monotonic()),
                          state(("cat", "dog")[index % 2], predict(classifier, 0.02)))
    report = collector.close()
    assert sorted(record["frame"] for record in sidecars(tmp_path)) == [2, 3, 4]  # the newest kept
    assert len(list((tmp_path / INBOX).iterdir())) == 6
    assert report.pruned == 2 and report.kept == 5
    assert len(warnings) == 1 and "dropped the 1 oldest" in warnings[0]  # the first overflow, at once
    assert any("dropped the 2 oldest" in line for line in collector.warnings(report))  # the total, at the end


def test_frames_are_written_through_the_durable_helper_on_the_writer_thread(classifier, tmp_path, monkeypatch):
    writes: list[tuple[str, str]] = []

    def spy(path, data):
        writes.append((Path(path).name, threading.current_thread().name))
        files.atomic_write_bytes(path, data)

    monkeypatch.setattr(collect, "atomic_write_bytes", spy)
    collector = Collector(CollectConfig(tmp_path), classifier, "0")
    for index in range(3):
        collector.observe(Frame(PIXELS, index, float(index), time.monotonic()),
                          state(("cat", "dog")[index % 2], predict(classifier, 0.02)))
    collector.close()
    on_disk = sorted(p.name for p in (tmp_path / INBOX).iterdir())
    assert len(on_disk) == 6 and sorted(name for name, _ in writes) == on_disk
    assert {thread for _, thread in writes} == {"catdog-collect-writer"}
    assert files.leftovers(tmp_path / INBOX) == []


def test_a_full_queue_drops_frames_and_never_blocks_the_loop(classifier, tmp_path, monkeypatch):
    entered, gate = threading.Event(), threading.Event()

    def stalled(path, data):  # a disk that takes forever: the writer is stuck in its first write
        entered.set()
        assert gate.wait(PATIENCE_S)
        files.atomic_write_bytes(path, data)

    monkeypatch.setattr(collect, "atomic_write_bytes", stalled)
    collector = Collector(CollectConfig(tmp_path, queue_size=2), classifier, "0")

    def observe(index: int) -> None:
        collector.observe(Frame(PIXELS, index, float(index), time.monotonic()),
                          state(("cat", "dog")[index % 2], predict(classifier, 0.02)))

    observe(0)
    assert entered.wait(PATIENCE_S)  # the writer holds frame 0
    loop = threading.Thread(target=lambda: [observe(i) for i in range(1, 10)], name="test-camera-loop")
    loop.start()
    loop.join(PATIENCE_S)
    assert not loop.is_alive(), "observe() waited for the writer"
    assert collector.busy == 7  # frames 1 and 2 wait in the queue; 3..9 are dropped
    gate.set()
    report = collector.close()
    assert (report.kept, report.busy) == (3, 7)
    assert sorted(record["frame"] for record in sidecars(tmp_path)) == [0, 1, 2]
    assert any("7 frame(s) not kept" in line for line in collector.warnings(report))


def test_a_frame_that_cannot_be_written_is_counted_and_said_once(classifier, tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(collect, "atomic_write_bytes", full)
    warnings: list[str] = []
    collector = Collector(CollectConfig(tmp_path), classifier, "0", warnings.append)
    for index in range(3):
        collector.observe(Frame(PIXELS, index, float(index), time.monotonic()),
                          state(("cat", "dog")[index % 2], predict(classifier, 0.02)))
    report = collector.close()
    assert (report.kept, report.failed) == (0, 3)
    assert len(warnings) == 1 and "No space left" in warnings[0]
    assert any("3 frame(s) could not be written" in line for line in collector.warnings(report))


def test_settings_are_checked(tmp_path, classifier):
    for bad in ({"max_frames": 0}, {"margin": 0.6}, {"sample_every_s": 0}, {"queue_size": 0}, {"quality": 96}):
        with pytest.raises(CameraSetupError):
            CollectConfig(tmp_path, **bad)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(CameraSetupError, match="cannot create"):
        Collector(CollectConfig(tmp_path / "file"), classifier, "0")


def test_the_camera_command_collects_into_the_inbox(confident_frames, camera_model, tmp_path):
    from catdog.edge.cli import app
    from catdog.edge.cli_camera import camera

    assert next(p for p in camera.params if p.name == "collect_max").default == MAX_FRAMES  # one default
    source = write_folder(tmp_path / "frames", [*confident_frames["cat"], *confident_frames["dog"]])
    result = CliRunner().invoke(app, ["camera", "--source", str(source), "--model", str(camera_model), "--smooth",
                                      "3", "--collect", str(tmp_path / "door"), "--format", "json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines() if '"label"' in line]
    kept = sidecars(tmp_path / "door")
    assert [r["smoothed"] for r in kept if r["kept"] == "event"] == [e["label"] for e in events] == ["cat", "dog"]
    assert [r["frame"] for r in kept if r["kept"] == "event"] == [e["frame"] for e in events]
    assert all(r["model"] == Path(camera_model).name for r in kept)
