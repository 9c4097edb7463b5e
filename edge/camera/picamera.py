"""The Raspberry Pi camera through picamera2, imported only when this source is made."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CameraSetupError, SourceError
from .frames import FrameSource


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
