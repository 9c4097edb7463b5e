"""Keep camera frames worth labelling (catdog-edge camera --collect DIR): the first frame of every label event,
uncertain decisions and a sparse sample of the steady state go to DIR/inbox/ as a JPEG and a JSON sidecar, written
on a thread of their own so the camera loop never waits, the inbox bounded.

A frame is kept, with the first reason that applies ("kept" in its sidecar):

- "event": the smoothed label changed on this frame ("none" too): the first frame of a label event;
- "uncertain": its own answer was near the threshold, closeness() < margin, and no uncertain frame was kept in the
  last uncertain_every_s seconds of frame time;
- "sample": the label has held for sample_every_s seconds of frame time since the last frame kept.

DIR itself is the class-per-folder layout catdog-train reads (DIR/<class>/<photo>); the review view of the preview
(edge.camera.review) moves frames from the inbox into it. catdog-train skips the inbox folder.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import CameraSetupError
from ..files import atomic_write_bytes

if TYPE_CHECKING:
    from ..classify import Classifier, Prediction
    from .frames import Frame
    from .loop import LoopState

#: The folder of DIR that holds frames waiting for a label; never a class (catdog-train skips it).
INBOX = "inbox"
#: A frame's sidecar: the JPEG's name with this suffix instead of .jpg.
SIDECAR = ".json"
#: The inbox's bound unless --collect-max says otherwise.
MAX_FRAMES = 500


@dataclass(frozen=True)
class CollectConfig:
    """Which camera frames are kept for labelling, and where."""

    folder: Path
    """DIR: frames go to DIR/inbox/; labelled ones end up in DIR/<class>/."""
    max_frames: int = MAX_FRAMES
    """The inbox holds at most this many frames; the oldest are removed to make room (with a warning)."""
    margin: float = 0.1
    """A decision is uncertain when a probability would have to move by less than this to change it (closeness)."""
    uncertain_every_s: float = 2.0
    """At most one uncertain frame per this many seconds of frame time (a hovering decision would fill the inbox)."""
    sample_every_s: float = 60.0
    """While a label holds, keep a frame when none was kept for this many seconds of frame time."""
    queue_size: int = 16
    """Frames waiting for the writer; when it is full, a frame to keep is dropped (and counted), never waited for."""
    quality: int = 90
    """JPEG quality of the kept frames, 1..95."""

    def __post_init__(self) -> None:
        if self.max_frames < 1:
            raise CameraSetupError(f"--collect-max must be at least 1, got {self.max_frames}")
        if not 0 <= self.margin <= 0.5:
            raise CameraSetupError(f"the collect margin must be 0..0.5, got {self.margin}")
        if self.uncertain_every_s < 0 or self.sample_every_s <= 0:
            raise CameraSetupError("the collect intervals must be at least 0 (uncertain) and above 0 (sample) seconds")
        if self.queue_size < 1:
            raise CameraSetupError(f"the collect queue must hold at least 1 frame, got {self.queue_size}")
        if not 1 <= self.quality <= 95:
            raise CameraSetupError(f"collect JPEG quality must be 1..95, got {self.quality}")

    @property
    def inbox(self) -> Path:
        """DIR/inbox."""
        return Path(self.folder) / INBOX


@dataclass(frozen=True)
class CollectReport:
    """What a collector did over a run."""

    kept: int
    """Frames written to the inbox."""
    busy: int
    """Frames to keep that were dropped because the writer's queue was full."""
    pruned: int
    """Oldest inbox frames removed to stay within max_frames."""
    failed: int
    """Frames that could not be written (disk full, folder gone)."""


def closeness(classifier: "Classifier", prediction: "Prediction") -> float:
    """How far a frame's answer is from changing: the smallest probability change that would change it.

    - The labels (unless the answer is the presence label, which they do not decide): for a sigmoid model,
      |p(labels[1]) - threshold|; otherwise half the gap between the two best scores (each moving that far
      meets the other; for two labels at threshold 0.5 both rules agree).
    - The presence score, when in use: |its soft probability - 0.5| (edge.presence: 0.5 at its threshold).

    Returns 1.0 when nothing can be measured (a one-label model without a presence score).
    """
    found = [1.0]
    if prediction.present is not False:
        scores = [prediction.scores[label] for label in classifier.contract.labels]
        if classifier.contract.activation == "sigmoid":
            found.append(abs(scores[1] - classifier.threshold))
        elif len(scores) >= 2:
            best, second = sorted(scores, reverse=True)[:2]
            found.append((best - second) / 2)
    if classifier.presence is not None and prediction.presence is not None:
        found.append(abs(classifier.presence.probability(prediction.presence, classifier.presence_threshold) - 0.5))
    return min(found)


class Collector:
    """Keeps frames worth labelling in DIR/inbox/. observe() is the camera loop's on_frame hook: it decides on the
    loop's thread and hands a frame to keep to a writer thread through a bounded queue, never waiting; the writer
    encodes the JPEG and writes it and its sidecar through edge.files (sidecar first, so a listed .jpg always has
    one), then removes the oldest frames beyond max_frames. close() writes what is queued and stops the writer."""

    def __init__(self, config: CollectConfig, classifier: "Classifier", source: str,
                 on_warning: Callable[[str], None] = lambda message: None):
        """source: the --source (shown in sidecars without a URL's password); on_warning: called with one line,
        from the writer's thread, when the inbox first overflows or a frame first fails to be written.

        Raises:
            CameraSetupError: the inbox cannot be created.
        """
        from .live import public_source

        self.config = config
        self.classifier = classifier
        self.source = public_source(source)
        self.model = Path(classifier.model_path).name  # the file name only: a path says where this machine keeps it
        self.on_warning = on_warning
        try:
            config.inbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CameraSetupError(f"--collect {config.folder}: cannot create {config.inbox} ({exc.strerror})") from None
        self.kept = self.busy = self.pruned = self.failed = 0
        self._label: str | None = None
        self._kept_t: float | None = None
        self._uncertain_t: float | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=config.queue_size)
        self._closed = False
        self._thread = threading.Thread(target=self._write_loop, name="catdog-collect-writer", daemon=True)
        self._thread.start()

    # --- the camera loop's side: decide, hand over, never wait ---

    def use(self, classifier: "Classifier") -> None:
        """The loop switched to another model (edge.camera.swap): judge and record frames with it from now on."""
        self.classifier = classifier
        self.model = Path(classifier.model_path).name

    def observe(self, frame: "Frame", state: "LoopState") -> None:
        """The loop's on_frame hook: queue the frame for the writer when it is worth labelling."""
        prediction = state.prediction
        if prediction is None or self._closed:
            return
        why = self._why(frame.t, state.label, prediction)
        if why is None:
            return
        from .loop import snapshot_name

        now = datetime.now()
        record = {
            "time": now.astimezone().isoformat(timespec="milliseconds"),
            "t": round(frame.t, 3),
            "frame": frame.index,
            "source": self.source,
            "model": self.model,
            "kept": why,
            "smoothed": state.label,
            **{k: v for k, v in prediction.to_dict().items() if k not in ("path", "ms")},
        }
        try:
            self._queue.put_nowait((frame.rgb, snapshot_name(frame, prediction.label, now), record))
        except queue.Full:
            self.busy += 1

    def _why(self, t: float, label: str | None, prediction: "Prediction") -> str | None:
        why = None
        if label != self._label:
            self._label = label
            why = "event" if label is not None else None
        if why is None and closeness(self.classifier, prediction) < self.config.margin:
            if self._uncertain_t is None or t - self._uncertain_t >= self.config.uncertain_every_s:
                self._uncertain_t = t
                why = "uncertain"
        if why is None and label is not None and self._kept_t is not None:
            if t - self._kept_t >= self.config.sample_every_s:
                why = "sample"
        if why is not None:
            self._kept_t = t
        return why

    # --- the writer's thread ---

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            rgb, name, record = item
            try:
                self._write(rgb, name, record)
            except OSError as exc:
                self.failed += 1
                if self.failed == 1:
                    self.on_warning(f"--collect: {self.config.inbox / name} not written ({exc}); check free space "
                                    "(the count of frames lost comes when the camera stops)")
                continue
            self.kept += 1
            self._prune()

    def _write(self, rgb: Any, name: str, record: dict[str, Any]) -> None:
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=self.config.quality)
        inbox = self.config.inbox
        atomic_write_bytes(inbox / (Path(name).stem + SIDECAR), json.dumps(record, ensure_ascii=True).encode())
        atomic_write_bytes(inbox / name, buffer.getvalue())

    def _prune(self) -> None:
        """Remove the oldest frames (and their sidecars) beyond max_frames; names sort by the time they were kept."""
        try:
            frames = sorted(p for p in self.config.inbox.glob("*.jpg") if not p.name.startswith("."))
        except OSError:
            return
        excess = frames[: max(0, len(frames) - self.config.max_frames)]
        for path in excess:
            path.with_suffix(SIDECAR).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        if excess and self.pruned == 0:
            self.on_warning(f"--collect: the inbox holds {self.config.max_frames} frames (--collect-max): dropped the "
                            f"{len(excess)} oldest to make room; label some in the preview's review view, or raise "
                            "--collect-max (the total comes when the camera stops)")
        self.pruned += len(excess)

    def close(self, timeout: float = 30.0) -> CollectReport:
        """Write the frames still queued, stop the writer (waiting at most timeout seconds) and say what was done."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)  # after every frame queued: they are written first
            self._thread.join(timeout)
        return CollectReport(kept=self.kept, busy=self.busy, pruned=self.pruned, failed=self.failed)

    def warnings(self, report: CollectReport) -> list[str]:
        """The lines to show when the camera stops: frames dropped or lost over the run."""
        lines = []
        if report.pruned:
            lines.append(f"--collect: dropped the {report.pruned} oldest frame(s) from {self.config.inbox} to stay within "
                         f"--collect-max {self.config.max_frames}")
        if report.busy:
            lines.append(f"--collect: {report.busy} frame(s) not kept: the writer was busy (a slow disk?)")
        if report.failed:
            lines.append(f"--collect: {report.failed} frame(s) could not be written to {self.config.inbox}")
        return lines
