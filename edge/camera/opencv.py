"""Webcams, video files and network streams through OpenCV, imported only when such a source is made."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import CameraSetupError, SourceError
from .frames import FrameSource

#: --source values that open a network stream through OpenCV/FFmpeg.
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")


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
