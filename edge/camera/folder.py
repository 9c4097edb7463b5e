"""Photo folders as frame sources: the photos in name order at a fixed rate; an unreadable one is skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CameraSetupError, ImageError
from ..inputs import expand_inputs
from ..preprocess import open_image, to_color
from .frames import FrameSource


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
