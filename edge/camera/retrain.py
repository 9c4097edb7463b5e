"""Retrain the running camera from its labelled frames (the preview's "Retrain"): run edge.learn on the collect
folder off the loop's thread, with the model the camera runs now as the base, write the new model into
DIR/.models/ (a hidden folder: learn and catdog-train skip it) and switch the camera to it (edge.camera.swap).

One retrain at a time. A failed run (too few photos, one class, a base learn refuses) leaves the old model running
and says why, in status() (the preview's /api/state) and to the loop as a Notice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract import sidecar_path
from .swap import ModelSwitch

#: Where the learned models go, inside the collect folder.
MODELS = ".models"
#: Learned models kept there after a retrain: the one now running and the ones before it, to go back to
#: (each is about 4 MB; without a bound every retrain would take more of a Pi's SD card).
KEEP = 3


@dataclass(frozen=True)
class RetrainStatus:
    """The last retrain's progress or result, as /api/state shows it under "retrain"."""

    state: str
    """"idle" (none yet), "running", "done" or "failed"."""
    message: str
    """One line: "running", "done: now <file> (labels ...)" or "failed: <why>"."""
    started: float | None = None
    """Unix time the run started."""
    finished: float | None = None
    """Unix time it ended (None while running)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"state", "message", "started", "finished"}."""
        return {"state": self.state, "message": self.message,
                "started": None if self.started is None else round(self.started, 3),
                "finished": None if self.finished is None else round(self.finished, 3)}


class Retrainer:
    """Learns a new model from a collect folder and hands it to a running camera's ModelSwitch.

    start() returns at once; the work runs on a thread of its own. status() and wait() may be called from any thread.
    """

    def __init__(self, switch: ModelSwitch, data_dir: Path, seed: int = 1337):
        """switch: the camera's (its running model is the base, its options load the result); data_dir: DIR of
        --collect (DIR/<class>/ photos); seed: learn's seed."""
        self.switch = switch
        self.data_dir = Path(data_dir)
        self.seed = seed
        self._lock = threading.Lock()
        self._status = RetrainStatus("idle", "no retrain yet")
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self) -> RetrainStatus:
        """The running retrain's progress, or the last one's result."""
        with self._lock:
            return self._status

    def start(self) -> bool:
        """Start a retrain on a thread of its own and return True; False (nothing started) while one runs."""
        with self._lock:
            if self._status.state == "running":
                return False
            self._status = RetrainStatus("running", "running", time.time())
            self._done.clear()
            self._thread = threading.Thread(target=self._run, name="catdog-retrain", daemon=True)
            self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> RetrainStatus | None:
        """The result once the running retrain ends (at once when none runs); None when timeout seconds pass first."""
        with self._lock:
            running = self._status.state == "running"
        if running and not self._done.wait(timeout):
            return None
        return self.status()

    def _run(self) -> None:
        try:
            ok, message = self._retrain()
        except Exception as exc:  # any failure: the old model keeps running, and the page and the loop say why
            ok, message = False, f"failed: {str(exc) or type(exc).__name__}"
            self.switch.note(f"retrain {message}; the old model keeps running")
        with self._lock:
            self._status = RetrainStatus("done" if ok else "failed", message, self._status.started, time.time())
        self._done.set()

    def _retrain(self) -> tuple[bool, str]:
        from ..learn import LearnConfig, learn

        out = self.data_dir / MODELS / f"learned-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}.tflite"
        out.parent.mkdir(parents=True, exist_ok=True)
        threads = self.switch.options.threads if self.switch.options is not None else None
        result = learn(LearnConfig(self.data_dir, out, model=self.switch.running_path(), seed=self.seed,
                                   threads=threads))
        loaded = self.switch.switch_to(result.out_path)  # a failure here is already the loop's Notice
        if not loaded.ok:
            return False, f"failed: {loaded.message}"
        for path in prune_learned(out.parent, KEEP, keep_also=self.switch.running_path()):
            self.switch.note(f"retrain removed the older learned model {path.name} (the newest {KEEP} are kept)")
        return True, f"done: now {result.out_path.name} (labels {', '.join(result.labels)})"


def prune_learned(folder: Path, keep: int, keep_also: Path | None = None) -> list[Path]:
    """Delete all but the keep newest learned-*.tflite models in folder (their names sort by time), with their
    JSON sidecars; never keep_also (the running model). Returns the models deleted; one that cannot be deleted
    is left for the next retrain."""
    learned = sorted(folder.glob("learned-*.tflite"), key=lambda p: p.name)
    running = Path(keep_also).resolve() if keep_also is not None else None
    removed = []
    for path in learned[:-keep] if keep > 0 else learned:
        if path.resolve() == running:
            continue
        try:
            path.unlink()
            sidecar_path(path).unlink(missing_ok=True)
        except OSError:
            continue
        removed.append(path)
    return removed
