"""Switch the running camera to another model without a restart: load and check it off the loop's thread, hand it
over between two frames, and keep the old model running when the new one cannot be used."""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runtime import RuntimeName

if TYPE_CHECKING:
    from ..classify import Classifier


@dataclass(frozen=True)
class ModelOptions:
    """How the camera loads its model: the --model given and the options it runs with, so that a reload reads the
    same file again (replaced meanwhile, e.g. by catdog-edge learn or an export) with the same options."""

    path: Path | None = None
    """The .tflite file (or a bundled model's name); None for $CATDOG_MODEL or the default model, looked up again."""
    runtime: RuntimeName | str = RuntimeName.auto
    """The TFLite runtime: "auto", "litert" or "tflite-runtime"."""
    threads: int | None = None
    """Interpreter threads; None for the runtime's default."""
    threshold: float | None = None
    """The decision threshold given on the command line; None for each model's own (its contract's)."""
    xnnpack: bool = True
    """Use the runtime's XNNPACK delegate."""
    presence: bool = True
    """Use the model's presence score, if it has one, to answer "none"."""
    presence_threshold: float | None = None
    """The presence threshold given on the command line; None for each model's own."""

    def load(self) -> "Classifier":
        """Load and check the model (edge.classify.Classifier.load).

        Raises:
            ModelError: the model or its contract is missing, damaged or does not match.
            RuntimeMissingError: no TFLite runtime is installed.
        """
        from ..classify import Classifier

        return Classifier.load(self.path, runtime=self.runtime, threads=self.threads, threshold=self.threshold,
                               xnnpack=self.xnnpack, presence=self.presence, presence_threshold=self.presence_threshold)


@dataclass(frozen=True)
class ModelInfo:
    """Which model the camera runs, as the page and /api/state show it."""

    file: str
    """The model's file name (not its folder: a path says where this machine keeps it)."""
    answers: tuple[str, ...]
    """Its answers: the labels, and "none" while its presence score is in use."""
    since: float
    """Unix time it went into use (the start, or the frame it was switched at)."""

    @classmethod
    def of(cls, classifier: "Classifier", since: float | None = None) -> "ModelInfo":
        """The info of a classifier going into use now (or at since)."""
        return cls(Path(classifier.model_path).name, tuple(classifier.answers), time.time() if since is None else since)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"file", "labels", "since"}."""
        return {"file": self.file, "labels": list(self.answers), "since": round(self.since, 3)}


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: a new model is waiting for the loop's next frame (ok), or the old one keeps running."""

    ok: bool
    """True when the new model loaded and was handed to the loop."""
    message: str
    """One line: what was loaded, or why it could not be (the old model keeps running)."""
    model: ModelInfo | None = None
    """The loaded model (ok), else None."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"ok", "message", "model"}."""
        return {"ok": self.ok, "message": self.message, "model": None if self.model is None else self.model.to_dict()}


class ModelSwitch:
    """Hands a new classifier to a running camera loop (edge.camera.loop.watch takes it between two frames).

    swap() may be called from any thread; the classifier handed over is then used by the loop's thread only.
    reload() loads the model of options again on the calling thread (never the loop's), one load at a time;
    request_reload() asks a thread of this switch to do it, and is safe to call from a signal handler.
    A load that fails leaves the running model alone: reload() returns why, and the loop reports it as a Notice.
    """

    def __init__(self, classifier: "Classifier", options: ModelOptions | None = None):
        """classifier: the model running now; options: how to load it again (None: reload() is refused)."""
        self.options = options
        self._lock = threading.Lock()
        self._pending: "Classifier | None" = None
        self._messages: list[str] = []
        self._running = ModelInfo.of(classifier)
        self._running_path = Path(classifier.model_path)
        self._loading = threading.Lock()  # one load at a time: two at once only cost the loop CPU
        self._requested = threading.Event()  # wakes the reload thread: a reload is wanted, or closing
        self._wanted = False
        self._closed = False
        self._worker: threading.Thread | None = None

    # --- any thread ---

    def swap(self, classifier: "Classifier") -> None:
        """Hand classifier to the loop: it classifies with it from its next frame on (a newer swap before then
        replaces this one, which is never used)."""
        with self._lock:
            self._pending = classifier

    def running(self) -> ModelInfo:
        """The model the loop runs now."""
        with self._lock:
            return self._running

    def running_path(self) -> Path:
        """The file of the model the loop runs now (the base of a retrain, edge.camera.retrain)."""
        with self._lock:
            return self._running_path

    def reload(self) -> ReloadResult:
        """Load the model of options again (same file, same options) on this thread and swap() it in when it loads
        and passes its checks; otherwise keep the running model and say why (also to the loop, as a Notice)."""
        if self.options is None:
            return self._failed("no model file to reload: this camera was given its model in code")
        return self._load(self.options)

    def switch_to(self, path: Path) -> ReloadResult:
        """Load the model at path with the camera's options (path replaced) and swap() it in, as reload() does; when
        it loads, later reloads (SIGHUP, the page's button) read path (e.g. a model edge.camera.retrain learned)."""
        options = dataclasses.replace(self.options or ModelOptions(), path=Path(path))
        result = self._load(options)
        if result.ok:
            self.options = options
        return result

    def note(self, message: str) -> None:
        """Pass a one-line message to the loop, reported as a Notice before its next frame."""
        with self._lock:
            self._messages.append(message)

    def _load(self, options: ModelOptions) -> ReloadResult:
        with self._loading:
            try:
                # One load at a time, so these never nest: the warnings (e.g. a contract written by a newer catdog)
                # reach the loop as Notices, one line each, as at the start.
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    classifier = options.load()
            except Exception as exc:  # any failure (a damaged file can fail inside the runtime): the old model stays
                text = str(exc) or type(exc).__name__
                return self._failed(f"model not reloaded, the old one keeps running: {text}")
        with self._lock:
            self._messages.extend(str(warning.message) for warning in caught)
        self.swap(classifier)
        info = ModelInfo.of(classifier)
        return ReloadResult(True, f"model: loaded {info.file} (answers {', '.join(info.answers)}); "
                                  "the camera switches at its next frame", info)

    def request_reload(self) -> None:
        """Ask for a reload on this switch's own thread (started on the first request) and return at once: safe in
        a signal handler, which must never wait for a model to load."""
        self._wanted = True
        self._requested.set()

    def start(self) -> "ModelSwitch":
        """Start the thread that serves request_reload() (before any signal handler may call it)."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._serve_requests, name="catdog-model-reload", daemon=True)
            self._worker.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Stop the reload thread once a reload already asked for is done (waited for up to timeout seconds)."""
        self._closed = True
        self._requested.set()
        if self._worker is not None:
            self._worker.join(timeout)

    # --- the loop's thread ---

    def take(self) -> "Classifier | None":
        """The classifier handed over since the last call, or None; the loop calls this between two frames."""
        with self._lock:
            classifier, self._pending = self._pending, None
            if classifier is not None:
                self._running = ModelInfo.of(classifier)
                self._running_path = Path(classifier.model_path)
            return classifier

    def drain_messages(self) -> list[str]:
        """Why reloads failed, and the warnings of those that worked, since the last call (one line each), for the
        loop's Notices."""
        with self._lock:
            messages, self._messages = self._messages, []
            return messages

    # --- private ---

    def _failed(self, message: str) -> ReloadResult:
        self.note(message)
        return ReloadResult(False, message)

    def _serve_requests(self) -> None:
        while True:
            self._requested.wait()
            self._requested.clear()
            if self._wanted:
                self._wanted = False
                self.reload()
            if self._closed:
                return
