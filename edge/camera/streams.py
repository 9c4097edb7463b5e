"""The two ways the camera loop reads a source: every frame in order, or the newest frame only (a reader thread)."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from ..errors import SourceError
from .frames import Frame, FrameSource, SourceConfig
from .sources import make_source


class FrameStream:
    """What the camera loop reads: frames in order, with counts and warnings."""

    def __init__(self, source: FrameSource, config: SourceConfig):
        self.source = source
        self.config = config
        self.frames = 0
        """Frames read from the source so far."""
        self.ended = False
        """True once the source has ended (or hit max_frames) and every frame was handed out."""
        self._warnings: deque[str] = deque()

    def get(self, timeout: float) -> Frame | None:
        """The next frame to classify, or None when none came within timeout (see ended).

        Raises:
            SourceError: the source could not be opened or was given up on.
        """
        raise NotImplementedError

    def drain_warnings(self) -> list[str]:
        """One-line warnings since the last call (reconnects, skipped photos)."""
        out = []
        while self._warnings:
            out.append(self._warnings.popleft())
        while self.source.notes:
            out.append(self.source.notes.popleft())
        return out

    def close(self) -> None:
        """Stop reading and release the source."""
        raise NotImplementedError

    def __enter__(self) -> "FrameStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _media_time(self, index: int) -> float:
        return index / (self.source.fps or self.config.fps)


class SequentialStream(FrameStream):
    """Every frame of a file or folder, read on the caller's thread: nothing is skipped."""

    def __init__(self, source: FrameSource, config: SourceConfig):
        super().__init__(source, config)
        source.open()

    def get(self, timeout: float) -> Frame | None:
        if self.ended:
            return None
        if self.config.max_frames is not None and self.frames >= self.config.max_frames:
            self.ended = True
            return None
        rgb = self.source.read()
        if rgb is None:
            self.ended = True
            return None
        frame = Frame(rgb=rgb, index=self.frames, t=self._media_time(self.frames), captured=time.monotonic())
        self.frames += 1
        return frame

    def close(self) -> None:
        self.ended = True
        self.source.close()


class LatestFrameStream(FrameStream):
    """A reader thread that keeps only the newest frame, so a slow consumer skips frames instead of
    falling behind. Live sources that stop are reopened with backoff; files and folders are paced at
    their frame rate and end normally."""

    def __init__(self, source: FrameSource, config: SourceConfig):
        super().__init__(source, config)
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._finished = False
        self._error: SourceError | None = None
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"catdog-reader {source.name}", daemon=True)
        self._thread.start()

    def get(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._slot is None and not self._finished:
                self._cond.wait(timeout)
            frame, self._slot = self._slot, None
            if frame is None and self._finished:
                if self._error is not None:
                    raise self._error
                self.ended = True
            return frame

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        # A stream read returns within timeout_s; the thread is a daemon in case a driver hangs for good.
        # The reader thread's finally releases the source.
        self._thread.join(timeout=self.config.timeout_s + 2.0)
        self.ended = True

    def _publish(self, rgb: np.ndarray) -> None:
        index = self.frames
        if self.source.live:
            t = time.monotonic() - self._start
        else:
            t = self._media_time(index)
            due = self._start + t  # pace files and folders like a camera
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
        frame = Frame(rgb=rgb, index=index, t=t, captured=time.monotonic())
        with self._cond:
            self._slot = frame  # an unconsumed older frame is dropped here
            self.frames += 1
            self._cond.notify_all()

    def _run(self) -> None:
        config = self.config
        limit = config.max_frames
        retries = config.max_retries if self.source.live else 0
        failures = 0
        opened = False
        try:
            while not self._stop.is_set():
                problem = ""
                if not opened:
                    try:
                        self.source.open()
                        opened = True
                    except SourceError as exc:
                        problem = str(exc)
                if opened:
                    rgb = self.source.read()
                    if rgb is not None:
                        failures = 0
                        self._publish(rgb)
                        if limit is not None and self.frames >= limit:
                            return
                        continue
                    if not self.source.live:
                        return  # a file or folder that ends is a normal stop
                    self.source.close()
                    opened = False
                    problem = f"{self.source.name}: stopped delivering frames"
                if self._stop.is_set():
                    return
                failures += 1
                if retries is not None and failures > retries:
                    tried = f"after {retries} reopen attempt(s)" if retries else "(--max-retries 0)"
                    self._error = SourceError(f"{problem}; giving up {tried}; check the camera or stream and restart")
                    return
                delay = config.backoff(failures)
                of = f"/{retries}" if retries is not None else ""
                self._warnings.append(f"{problem}; reopening in {delay:.1f} s (attempt {failures}{of})")
                self._stop.wait(delay)
        except Exception as exc:  # never die silently: the loop reports it and stops
            self._error = SourceError(f"{self.source.name}: reader failed ({type(exc).__name__}: {exc})")
        finally:
            self.source.close()
            with self._cond:
                self._finished = True
                self._cond.notify_all()


def open_stream(config: SourceConfig, source: FrameSource | None = None) -> FrameStream:
    """Open the source config names (or the one given) the right way: live sources and --realtime
    through the newest-frame reader thread, files and folders frame by frame.

    Raises:
        CameraSetupError: the spec names nothing usable, or a needed package is missing.
        SourceError: a file could not be opened.
    """
    source = source if source is not None else make_source(config)
    if source.live or config.realtime:
        return LatestFrameStream(source, config)
    return SequentialStream(source, config)
