"""make_source: which kind of frame source a --source value names (OpenCV, picamera2 or a photo folder)."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import CameraSetupError
from .folder import DirectorySource
from .frames import FrameSource, SourceConfig
from .opencv import STREAM_SCHEMES, OpenCVSource
from .picamera import PicameraSource

_DEVICE_PATH = re.compile(r"^/dev/video\d+$")


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
