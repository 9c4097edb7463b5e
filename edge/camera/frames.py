"""Frames and where they come from: Frame, SourceConfig, and the FrameSource base every kind of source implements."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import CameraSetupError


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
    """Where frames come from. open() and read() run on one thread at a time; close() is idempotent.

    Every source hands out RGB uint8 frames: OpenCV's BGR is converted in its source, once, and nowhere else.
    """

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
