"""The camera loop: classify frames from a source, smooth the decisions, emit label events and a summary."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from ..bench import latency_stats
from ..classify import Classifier, Prediction
from ..errors import CameraSetupError, SourceError
from .frames import Frame
from .smoothing import Smoother, check_smoothing
from .streams import FrameStream
from .swap import ModelInfo, ModelSwitch

#: Latency percentiles cover at most this many recent frames, so a loop left running for weeks
#: keeps a fixed memory footprint.
LATENCY_WINDOW = 10_000

#: How long the loop waits for a frame before checking for a stop request, the duration limit,
#: and warnings from the source.
POLL_S = 0.1


@dataclass(frozen=True)
class WatchConfig:
    """How the camera loop classifies, smooths and reports."""

    every: int = 1
    """Classify every Nth frame the loop receives (the others are counted as skipped)."""
    smooth: int = 5
    """K: the reported label is decided by votes of the last K classified frames."""
    agree: float = 2 / 3
    """Fraction of the K votes a new label needs before it is reported (hysteresis)."""
    min_confidence: float = 0.0
    """A label is reported only when its mean probability over the K frames is at least this."""
    heartbeat_s: float | None = None
    """Also emit the current label every this many seconds of frame time; None for changes only."""
    duration_s: float | None = None
    """Stop after this many seconds of wall time; None for no limit."""
    save_dir: Path | None = None
    """Save a JPEG snapshot of the frame on each label event here; None saves nothing."""
    snapshot_quality: int = 90
    """JPEG quality of snapshots, 1..95."""

    def __post_init__(self) -> None:
        if self.every < 1:
            raise CameraSetupError(f"--every must be at least 1, got {self.every}")
        check_smoothing(self.smooth, self.agree, self.min_confidence)
        if self.heartbeat_s is not None and self.heartbeat_s <= 0:
            raise CameraSetupError(f"--heartbeat must be above 0 seconds, got {self.heartbeat_s}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise CameraSetupError(f"--duration must be above 0 seconds, got {self.duration_s}")
        if not 1 <= self.snapshot_quality <= 95:
            raise CameraSetupError(f"snapshot quality must be 1..95, got {self.snapshot_quality}")


@dataclass(frozen=True)
class LabelEvent:
    """The smoothed label changed ("label"), or is restated on the heartbeat ("heartbeat")."""

    event: str
    """"label" or "heartbeat"."""
    frame: int
    """Index of the frame that caused it (source order, 0-based)."""
    t: float
    """The frame's time in seconds (media time for files, since the start for live sources)."""
    label: str | None
    """The smoothed label; None on a heartbeat before any label was reported."""
    confidence: float | None
    """Mean probability of the label over the smoothing window."""
    snapshot: Path | None = None
    """The saved JPEG, when --save-dir is given (label events only)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"event", "frame", "t", "label", "confidence"} (+ "snapshot" when saved)."""
        record: dict[str, Any] = {
            "event": self.event,
            "frame": self.frame,
            "t": round(self.t, 3),
            "label": self.label,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
        }
        if self.snapshot is not None:
            record["snapshot"] = str(self.snapshot)
        return record


@dataclass(frozen=True)
class Notice:
    """A one-line warning from the source or the loop (reconnecting, a photo skipped, a snapshot not saved)."""

    message: str
    """What happened and what is being done about it."""


@dataclass(frozen=True)
class ModelNotice(Notice):
    """The loop switched to another model between two frames (edge.camera.swap); a Notice, but not a warning."""

    classifier: Any = field(default=None, repr=False, compare=False)
    """The classifier now running (for observers that use it on the loop's thread, such as the collector)."""
    carried: bool = True
    """True when the smoothed label carried on (the same answers); False when smoothing restarted."""


@dataclass(frozen=True)
class WatchSummary:
    """What a camera run did. frames == classified + skipped + dropped."""

    frames: int
    """Frames read from the source."""
    classified: int
    """Frames run through the model."""
    skipped: int
    """Frames passed over on purpose by --every."""
    dropped: int
    """Frames replaced by a newer one before the loop could take them (the model was busy)."""
    events: int
    """Label events emitted (heartbeats not counted)."""
    seconds: float
    """Wall time of the run."""
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    """{"p50", "p95"}: milliseconds from reading a frame to its decision (recent frames)."""
    stopped: str = "end"
    """Why it stopped: "end", "max-frames", "duration", "stopped" (signal) or "source-lost"."""
    error: str | None = None
    """Why the source was given up on (stopped == "source-lost"), else None."""

    @property
    def fps(self) -> float:
        """Frames handled per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"event": "summary", "frames", "classified", "dropped", "fps", "latency_ms", ...}."""
        record: dict[str, Any] = {
            "event": "summary",
            "frames": self.frames,
            "classified": self.classified,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "events": self.events,
            "fps": round(self.fps, 2),
            "seconds": round(self.seconds, 3),
            "latency_ms": {k: None if v is None else round(v, 3) for k, v in self.latency_ms.items()},
            "stopped": self.stopped,
        }
        if self.error is not None:
            record["error"] = self.error
        return record


Event = LabelEvent | Notice


@dataclass(frozen=True)
class LoopState:
    """Where the loop stands after a frame: what an observer (the browser preview) shows beside it."""

    label: str | None
    """The smoothed label so far; None before the first label event."""
    confidence: float | None
    """Its mean probability over the smoothing window."""
    frames: int
    """Frames read from the source so far (classified + skipped + dropped)."""
    classified: int
    """Frames run through the model so far."""
    dropped: int
    """Frames replaced by a newer one before the loop took them, so far."""
    latency_ms: float | None
    """Milliseconds from reading this frame to its decision; None when --every skipped it."""
    prediction: Prediction | None = None
    """This frame's own answer, before smoothing; None when --every skipped it."""


def snapshot_name(frame: Frame, label: str, now: datetime | None = None) -> str:
    """File name of a snapshot: local time to the millisecond, frame index and label.

    The label comes from the model file, so only letters, digits, "-" and "." of it are kept (anything
    else, "/" and NUL included, becomes "_"): a label can never name a file outside the folder.
    """
    now = now or datetime.now()
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "_" for c in label).lstrip(".") or "_"
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}_f{frame.index:07d}_{safe[:64]}.jpg"


def save_snapshot(frame: Frame, label: str, folder: Path, quality: int = 90) -> Path:
    """Save the frame as a JPEG in folder; returns its path. Raises OSError when it cannot be written."""
    from PIL import Image

    path = folder / snapshot_name(frame, label)
    Image.fromarray(frame.rgb).save(path, format="JPEG", quality=quality)
    return path


def watch(
    classifier: Classifier,
    stream: FrameStream,
    config: WatchConfig,
    on_event: Callable[[Event], None],
    stop: threading.Event | None = None,
    on_frame: Callable[[Frame, LoopState], None] | None = None,
    switch: ModelSwitch | None = None,
) -> WatchSummary:
    """Classify frames from stream until it ends, a limit is reached, stop is set, or the source is lost.

    Each frame goes through classifier.classify, the same path as photos (preprocessing, model,
    threshold); its decisions are smoothed (camera.smoothing.Smoother) and each change of the smoothed
    label is passed to on_event as a LabelEvent, as are the source's warnings as Notices. on_event
    runs on this thread. The stream is closed (the camera released) whatever happens.

    Args:
        classifier: a loaded model.
        stream: from camera.streams.open_stream; this function closes it.
        config: loop settings.
        on_event: called with each LabelEvent and Notice, in order.
        stop: set it (e.g. from a signal handler) to end the loop cleanly.
        on_frame: called on this thread after each frame is handled (classified or skipped), after its
            events; it must return at once (keep a reference, never encode or send here).
        switch: hands over a new model (edge.camera.swap), taken before the next frame and reported as a
            ModelNotice; a reload that failed is reported as a Notice. The smoothed label carries on when the
            new model has the same answers; otherwise smoothing restarts with the new ones.

    Returns:
        The run's WatchSummary; a lost source ends the run with stopped="source-lost" and its error.

    Raises:
        CameraSetupError: save_dir cannot be created.
    """
    stop = stop or threading.Event()
    # "none" (the model's presence score says none of its labels is there) is a state like any label.
    smoother = Smoother(classifier.answers, config.smooth, config.agree, config.min_confidence)
    if config.save_dir is not None:
        try:
            config.save_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            stream.close()
            raise CameraSetupError(f"{config.save_dir}: cannot create the snapshot folder ({exc.strerror})") from None
    latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
    received = classified = skipped = events = 0
    last_beat: float | None = None
    stopped, error = "end", None
    start = time.monotonic()

    def notify() -> None:
        for message in stream.drain_warnings():
            on_event(Notice(message))
        if switch is not None:
            for message in switch.drain_messages():
                on_event(Notice(message))

    def take_model() -> None:
        nonlocal classifier, smoother
        new = switch.take() if switch is not None else None
        if new is None:
            return
        carried = tuple(new.answers) == tuple(classifier.answers)
        classifier = new
        if not carried:
            smoother = Smoother(classifier.answers, config.smooth, config.agree, config.min_confidence)
        info = ModelInfo.of(classifier)
        how = ("the same answers: the smoothed label carries on" if carried
               else "new answers: smoothing restarts")
        on_event(ModelNotice(f"model: now {info.file} (answers {', '.join(info.answers)}; {how})", classifier, carried))

    try:
        while True:
            notify()
            take_model()
            if stop.is_set():
                stopped = "stopped"
                break
            if config.duration_s is not None and time.monotonic() - start >= config.duration_s:
                stopped = "duration"
                break
            try:
                frame = stream.get(timeout=POLL_S)
            except SourceError as exc:
                stopped, error = "source-lost", str(exc)
                break
            if frame is None:
                if stream.ended:
                    limit = stream.config.max_frames
                    stopped = "max-frames" if limit is not None and stream.frames >= limit else "end"
                    break
                continue
            received += 1
            if last_beat is None:
                last_beat = frame.t
            latency = prediction = None
            if (received - 1) % config.every:
                skipped += 1
            else:
                prediction = classifier.classify(frame.rgb)
                latency = (time.monotonic() - frame.captured) * 1000.0
                latencies.append(latency)
                classified += 1
                change = smoother.update(prediction.index, classifier.answer_probabilities(prediction))
                if change is not None:
                    snapshot = None
                    if config.save_dir is not None:
                        try:
                            snapshot = save_snapshot(frame, change.label, config.save_dir, config.snapshot_quality)
                        except OSError as exc:
                            on_event(Notice(f"{config.save_dir}: snapshot not saved ({exc}); check free space"))
                    events += 1
                    last_beat = frame.t
                    on_event(LabelEvent("label", frame.index, frame.t, change.label, change.confidence, snapshot))
            if config.heartbeat_s is not None and frame.t - last_beat >= config.heartbeat_s:
                last_beat = frame.t
                now = smoother.current
                on_event(LabelEvent("heartbeat", frame.index, frame.t, now and now.label, now and now.confidence))
            if on_frame is not None:
                now = smoother.current
                on_frame(frame, LoopState(now and now.label, now and now.confidence, stream.frames, classified,
                                          stream.frames - received, latency, prediction))
    finally:
        stream.close()
    notify()
    seconds = time.monotonic() - start
    if latencies:
        stats = latency_stats(latencies)
        p50, p95 = stats.p50, stats.p95
    else:
        p50 = p95 = None
    return WatchSummary(
        frames=stream.frames,
        classified=classified,
        skipped=skipped,
        dropped=stream.frames - received,
        events=events,
        seconds=seconds,
        latency_ms={"p50": p50, "p95": p95},
        stopped=stopped,
        error=error,
    )

