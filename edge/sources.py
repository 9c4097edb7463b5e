"""Frame sources for the camera loop: webcams, video files and streams (OpenCV), the Pi camera
(picamera2), photo folders; and the two ways of reading them (frame by frame, or newest frame only).

Every source hands out RGB uint8 frames: OpenCV's BGR is converted here, once, and nowhere else.
OpenCV and picamera2 are imported only when such a source is asked for, so `catdog-edge classify`
never pays for them.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CameraSetupError, ImageError, SourceError
from .inputs import expand_inputs
from .preprocess import open_image, to_color

#: --source values that open a network stream through OpenCV/FFmpeg.
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")

_DEVICE_PATH = re.compile(r"^/dev/video\d+$")


@dataclass(frozen=True)
class Frame:
    """One frame as the camera loop sees it."""

    rgb: np.ndarray
    """uint8 array (height, width, 3) in RGB order."""
    index: int
    """0-based position among the frames this source delivered (counting on across reconnects)."""
    t: float
    """Seconds: media time for files and folders (index / fps), time since the start for live sources."""
    captured: float
    """time.monotonic() when the frame was read; latency is measured from here."""


@dataclass(frozen=True)
class SourceConfig:
    """What to read frames from and how."""

    spec: str
    """--source: a device number, /dev/videoN, "picamera", a video file, an rtsp:// or http(s):// URL,
    or a folder of photos."""
    fps: float = 10.0
    """Frames per second of a photo folder (and of a video file whose rate is unknown)."""
    realtime: bool = False
    """Play files and folders at their frame rate, newest frame only (skipping frames like a live
    camera) instead of frame by frame."""
    size_hw: tuple[int, int] | None = None
    """(height, width) to ask a camera for; None keeps the device's default (picamera: 480x640)."""
    max_frames: int | None = None
    """Stop after this many frames from the source; None for no limit."""
    max_retries: int | None = None
    """Live sources: reopen attempts in a row before giving up; None retries forever."""
    backoff_s: float = 0.5
    """Wait before the first reopen attempt; doubled after each failure in a row."""
    backoff_max_s: float = 30.0
    """Longest wait between reopen attempts."""
    timeout_s: float = 10.0
    """Network streams: seconds to wait for a connection or a frame before calling the stream lost."""

    def __post_init__(self) -> None:
        if not str(self.spec).strip():
            raise CameraSetupError("--source is empty; give a device number, a file, a folder, a URL or picamera")
        if self.fps <= 0:
            raise CameraSetupError(f"--fps must be above 0, got {self.fps}")
        if self.size_hw is not None and (len(self.size_hw) != 2 or min(self.size_hw) < 1):
            raise CameraSetupError(f"camera size must be two positive numbers (height, width), got {self.size_hw}")
        if self.max_frames is not None and self.max_frames < 1:
            raise CameraSetupError(f"--max-frames must be at least 1, got {self.max_frames}")
        if self.max_retries is not None and self.max_retries < 0:
            raise CameraSetupError(f"--max-retries must be 0 or more, got {self.max_retries}")
        if self.backoff_s <= 0 or self.backoff_max_s < self.backoff_s:
            raise CameraSetupError(
                f"reconnect backoff must satisfy 0 < first wait <= longest wait, got {self.backoff_s}, {self.backoff_max_s}"
            )
        if self.timeout_s <= 0:
            raise CameraSetupError(f"stream timeout must be above 0 seconds, got {self.timeout_s}")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before reopen attempt number attempt (1-based)."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s)


class FrameSource:
    """Where frames come from. open() and read() run on one thread at a time; close() is idempotent."""

    name: str = "source"
    #: A live source (camera, stream) is reopened when it stops; a file or folder simply ends.
    live: bool = False
    #: Nominal frames per second, when known (files and folders).
    fps: float | None = None

    def __init__(self) -> None:
        self.notes: deque[str] = deque()
        """One-line warnings about single frames (e.g. an unreadable photo in a folder)."""

    def open(self) -> None:
        """Open (or reopen) the source. Raises SourceError when it cannot be opened."""
        raise NotImplementedError

    def read(self) -> np.ndarray | None:
        """The next frame, uint8 (height, width, 3) RGB; None when the source ended or stopped delivering."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; safe to call twice or before open()."""
        raise NotImplementedError


def import_cv2() -> Any:
    """Import OpenCV, quietly (FFmpeg's own log lines would break the one-line-per-problem output).

    Raises:
        CameraSetupError: OpenCV is not installed.
    """
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    try:
        import cv2
    except ImportError as exc:
        raise CameraSetupError(
            f"OpenCV is needed for webcams, video files and streams: pip install opencv-python-headless (the [camera] extra) ({exc})"
        ) from None
    return cv2


class OpenCVSource(FrameSource):
    """A webcam (device number or /dev/videoN), a video file, or a network stream, through OpenCV."""

    def __init__(self, target: int | str, live: bool, size_hw: tuple[int, int] | None = None, timeout_s: float = 10.0):
        super().__init__()
        self.cv2 = import_cv2()
        self.target = target
        self.live = live
        self.size_hw = size_hw
        self.timeout_s = timeout_s
        self.name = f"camera {target}" if isinstance(target, int) or str(target).startswith("/dev/") else str(target)
        self.fps = None
        self._cap: Any = None

    @property
    def is_stream(self) -> bool:
        return isinstance(self.target, str) and self.target.lower().startswith(STREAM_SCHEMES)

    def open(self) -> None:
        cv2 = self.cv2
        self.close()
        if self.is_stream:
            ms = int(self.timeout_s * 1000)
            cap = cv2.VideoCapture(
                self.target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            )
        else:
            cap = cv2.VideoCapture(self.target)
        if not cap.isOpened():
            cap.release()
            if self.live:
                raise SourceError(f"{self.name}: cannot open it; check that it is plugged in / reachable")
            raise SourceError(f"{self.name}: cannot open it as a video; use a file FFmpeg can decode (mp4, avi, mkv...)")
        if self.live and not self.is_stream:
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's own queue would add lag
            if self.size_hw is not None:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size_hw[0])
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size_hw[1])
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        self._cap = cap

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        try:
            ok, bgr = self._cap.read()
        except self.cv2.error:
            return None
        if not ok or bgr is None:
            return None
        if bgr.ndim == 2:
            return self.cv2.cvtColor(bgr, self.cv2.COLOR_GRAY2RGB)
        if bgr.shape[2] == 4:
            return self.cv2.cvtColor(bgr, self.cv2.COLOR_BGRA2RGB)
        return self.cv2.cvtColor(bgr, self.cv2.COLOR_BGR2RGB)  # the one BGR -> RGB conversion

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


class PicameraSource(FrameSource):
    """The Raspberry Pi camera through picamera2 (from Raspberry Pi OS's apt: python3-picamera2)."""

    live = True

    def __init__(self, size_hw: tuple[int, int] | None = None):
        super().__init__()
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise CameraSetupError(
                "picamera2 is not installed: on Raspberry Pi OS run 'sudo apt install python3-picamera2' and create "
                f"the venv with --system-site-packages ({exc})"
            ) from None
        self._picamera2_class = Picamera2
        self.size_hw = size_hw or (480, 640)
        self.name = "picamera"
        self._camera: Any = None

    def open(self) -> None:
        self.close()
        try:
            camera = self._picamera2_class()
        except Exception as exc:  # picamera2 raises IndexError/RuntimeError when no camera is attached
            raise SourceError(f"picamera: cannot open the camera ({exc}); check the ribbon cable and 'rpicam-hello'") from None
        try:
            height, width = self.size_hw
            # picamera2's "BGR888" is stored [R, G, B] per pixel, so its arrays are already RGB.
            camera.configure(camera.create_video_configuration(main={"size": (width, height), "format": "BGR888"}))
            camera.start()
        except Exception as exc:
            camera.close()
            raise SourceError(f"picamera: cannot start the camera at {self.size_hw[1]}x{self.size_hw[0]} ({exc})") from None
        self._camera = camera

    def read(self) -> np.ndarray | None:
        if self._camera is None:
            return None
        try:
            rgb = self._camera.capture_array("main")
        except Exception:  # a camera that fails mid-run is reopened by the reader
            return None
        return np.ascontiguousarray(rgb[..., :3])

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()


class DirectorySource(FrameSource):
    """The photos of a folder in name order, as frames at a fixed rate (demos and tests)."""

    live = False

    def __init__(self, folder: Path, fps: float):
        super().__init__()
        self.folder = Path(folder)
        self.name = str(folder)
        self.fps = fps
        self.photos = expand_inputs([self.folder]).photos
        if not self.photos:
            raise CameraSetupError(f"{folder}: folder has no photos to play")
        self._next = 0

    def open(self) -> None:
        self._next = 0

    def read(self) -> np.ndarray | None:
        while self._next < len(self.photos):
            path = self.photos[self._next]
            self._next += 1
            try:
                return np.asarray(to_color(open_image(path), "RGB"))
            except ImageError as exc:
                self.notes.append(f"{exc}; skipped")
        return None

    def close(self) -> None:
        self._next = len(self.photos)


def make_source(config: SourceConfig) -> FrameSource:
    """The FrameSource that config.spec names (not opened yet).

    Raises:
        CameraSetupError: the spec names nothing usable, or OpenCV / picamera2 is missing.
    """
    spec = str(config.spec).strip()
    if spec.lower() == "picamera":
        return PicameraSource(config.size_hw)
    if spec.isdigit():
        return OpenCVSource(int(spec), live=True, size_hw=config.size_hw)
    if _DEVICE_PATH.match(spec):
        return OpenCVSource(spec, live=True, size_hw=config.size_hw)
    if spec.lower().startswith(STREAM_SCHEMES):
        return OpenCVSource(spec, live=True, timeout_s=config.timeout_s)
    path = Path(spec)
    if path.is_dir():
        return DirectorySource(path, config.fps)
    if path.is_file():
        return OpenCVSource(spec, live=False)
    raise CameraSetupError(
        f"{spec}: no such file or folder; give a device number (0), /dev/videoN, picamera, a video file, "
        "a folder of photos, or an rtsp:// / http:// URL"
    )


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
