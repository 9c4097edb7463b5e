"""What the browser preview shows, handed from the camera loop to the server's threads without slowing the loop:
the newest frame and state (kept by reference), the recent label events, and the preview JPEGs, encoded on a
thread of their own at most --preview-fps times a second and only while someone watches."""

from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

from .frames import Frame
from .loop import Event, LabelEvent, LoopState
from .overlay import jpeg_bytes, preview_image
from .preview_config import PreviewConfig

#: The fps shown is measured over the frames of about the last FPS_WINDOW_S seconds.
FPS_WINDOW_S = 2.0
_FPS_SAMPLES = 8


def public_source(spec: str) -> str:
    """The --source as the page may show it: a URL's user name and password replaced by ***."""
    parts = urlsplit(spec)
    if "@" not in parts.netloc:
        return spec
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


class LiveView:
    """The preview's view of a running camera loop.

    observe() and on_event() run on the loop's thread and only keep references and counters; everything else
    runs on the server's threads. Encoding happens on one thread, started here, that sleeps while nobody
    watches the stream.
    """

    def __init__(self, config: PreviewConfig, info: dict[str, Any], save_dir: Path | None = None):
        """info: what the page shows about the model and source (JSON-ready); save_dir: where the loop saves snapshots."""
        self.config = config
        self.info = info
        self.save_dir = None if save_dir is None else save_dir.resolve()
        self.started = time.time()
        self.model: Callable[[], Any] | None = None
        """Which model runs now (edge.camera.swap.ModelSwitch.running), shown as "model" in /api/state; None: not
        shown."""
        self.retrain: Callable[[], Any] | None = None
        """The last retrain's progress or result (edge.camera.retrain.Retrainer.status), shown as "retrain" in
        /api/state; None: not shown."""
        self._latest: tuple[Frame, LoopState] | None = None  # replaced whole by the loop: one atomic assignment
        self._latency_ms: float | None = None
        self._samples: deque[tuple[float, int]] = deque(maxlen=_FPS_SAMPLES)
        self._events: deque[dict[str, Any]] = deque(maxlen=config.events_kept)
        self._snapshots: dict[int, Path] = {}
        self._next_id = 1
        self._since: float | None = None
        self._changed = threading.Condition()  # a label event, or closing
        self._encoded = threading.Condition()  # a new preview JPEG, a viewer came or left, or closing
        self._viewers = 0
        self._jpeg: tuple[int, bytes] = (0, b"")
        self._snapshot = (-1, 0.0, b"")  # (frame index, monotonic time, JPEG) of /snapshot.jpg
        self._snapshot_lock = threading.Lock()
        self.closed = threading.Event()
        self._encoder = threading.Thread(target=self._encode_loop, name="catdog-preview-encoder", daemon=True)
        self._encoder.start()

    # --- the camera loop's side: references and counters only ---

    def observe(self, frame: Frame, state: LoopState) -> None:
        """The loop's on_frame hook: keep the newest frame and state (no copy, no encoding)."""
        self._latest = (frame, state)
        if state.latency_ms is not None:
            self._latency_ms = state.latency_ms
        now = time.monotonic()
        if not self._samples or now - self._samples[-1][0] >= FPS_WINDOW_S / _FPS_SAMPLES:
            self._samples.append((now, state.frames))

    def on_event(self, event: Event) -> None:
        """The loop's on_event: keep label events (with their snapshot, if saved) for the page and /api/events."""
        if not isinstance(event, LabelEvent) or event.event != "label":
            return
        with self._changed:
            record = {**event.to_dict(), "id": self._next_id, "time": round(time.time(), 3), "snapshot": None}
            if event.snapshot is not None:
                self._snapshots[self._next_id] = event.snapshot
                record["snapshot"] = f"events/{self._next_id}.jpg"
            if len(self._events) == self._events.maxlen:
                self._snapshots.pop(self._events[0]["id"], None)
            self._events.append(record)
            self._next_id += 1
            self._since = record["time"]
            self._changed.notify_all()

    # --- the server's side ---

    def fps(self) -> float | None:
        """Frames per second of the loop over about the last FPS_WINDOW_S seconds (falls while it stalls)."""
        samples, latest = list(self._samples), self._latest
        if not samples or latest is None:
            return None
        t0, frames0 = samples[0]
        elapsed = time.monotonic() - t0
        return (latest[1].frames - frames0) / elapsed if elapsed > 0.05 else None

    def state(self) -> dict[str, Any]:
        """/api/state: {"label", "confidence", "since", "fps", "frames", "classified", "dropped", "latency_ms",
        "viewers", "last_event"} (and "model": {"file", "labels", "since"} when known, "retrain": {"state",
        "message", "started", "finished"} when the page can retrain); since is Unix time of the label's event."""
        latest, fps, latency = self._latest, self.fps(), self._latency_ms
        state = latest[1] if latest is not None else None
        with self._changed:
            last = self._events[-1]["id"] if self._events else 0
            since = self._since
        record = {
            "label": state and state.label,
            "confidence": None if state is None or state.confidence is None else round(state.confidence, 4),
            "since": since,
            "fps": None if fps is None else round(fps, 2),
            "frames": state.frames if state else 0,
            "classified": state.classified if state else 0,
            "dropped": state.dropped if state else 0,
            "latency_ms": None if latency is None else round(latency, 2),
            "viewers": self._viewers,
            "last_event": last,
        }
        if self.model is not None:
            record["model"] = self.model().to_dict()
        if self.retrain is not None:
            record["retrain"] = self.retrain().to_dict()
        return record

    def events_after(self, after: int) -> list[dict[str, Any]]:
        """The kept label events with an id above after, oldest first."""
        with self._changed:
            return [dict(e) for e in self._events if e["id"] > after]

    def wait_for_event(self, after: int, timeout: float) -> None:
        """Return once an event newer than after exists, the preview closes, or timeout seconds pass."""
        with self._changed:
            self._changed.wait_for(
                lambda: self.closed.is_set() or (self._events and self._events[-1]["id"] > after), timeout
            )

    def event_snapshot(self, event_id: int) -> Path | None:
        """The snapshot saved for a kept event, only if it lies in save_dir; None otherwise."""
        with self._changed:
            path = self._snapshots.get(event_id)
        if path is None or self.save_dir is None:
            return None
        resolved = path.resolve()
        return resolved if resolved.parent == self.save_dir and resolved.is_file() else None

    def snapshot_jpeg(self) -> bytes | None:
        """/snapshot.jpg: the newest frame as JPEG (no banner), encoded at most --preview-fps times a second."""
        latest = self._latest
        if latest is None:
            return None
        with self._snapshot_lock:
            index, stamp, data = self._snapshot
            now = time.monotonic()
            if index != latest[0].index and now - stamp >= 1.0 / self.config.preview_fps:
                data = jpeg_bytes(latest[0].rgb, self.config.jpeg_quality)
                self._snapshot = (latest[0].index, now, data)
            return data

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Count a stream viewer while inside: the encoder runs only while the count is above 0."""
        with self._encoded:
            self._viewers += 1
            self._encoded.notify_all()
        try:
            yield
        finally:
            with self._encoded:
                self._viewers -= 1

    def next_jpeg(self, seen: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest preview JPEG with its number, once one newer than seen exists; None on timeout or close.
        A viewer that was busy sending gets the newest and never the ones it missed."""
        with self._encoded:
            if self._encoded.wait_for(lambda: self.closed.is_set() or self._jpeg[0] > seen, timeout) and not self.closed.is_set():
                return self._jpeg
        return None

    def _encode_loop(self) -> None:
        period = 1.0 / self.config.preview_fps
        drawn = None
        while not self.closed.is_set():
            with self._encoded:
                self._encoded.wait_for(lambda: self._viewers > 0 or self.closed.is_set())
            began = time.monotonic()
            latest = self._latest
            if latest is not None and latest[0] is not drawn and not self.closed.is_set():
                frame, state = latest
                image = preview_image(frame.rgb, state.label, state.confidence, self.fps())
                data = jpeg_bytes(image, self.config.jpeg_quality)
                drawn = frame
                with self._encoded:
                    self._jpeg = (self._jpeg[0] + 1, data)
                    self._encoded.notify_all()
            self.closed.wait(max(0.0, period - (time.monotonic() - began)))

    def close(self, timeout: float = 5.0) -> None:
        """Wake every waiting viewer and stop the encoder thread."""
        self.closed.set()
        for condition in (self._changed, self._encoded):
            with condition:
                condition.notify_all()
        self._encoder.join(timeout)
