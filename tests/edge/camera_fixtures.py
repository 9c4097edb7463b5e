"""Shared camera-test material: frames made from real val photos, videos, photo folders, an MJPEG server.

Everything is built in temporary folders; nothing is written beside the photos or into the repository.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

#: Frame size of the test videos and streams, (height, width).
FRAME_HW = (240, 320)
#: Frames per label run in the test videos.
RUN = 12


def to_frame(path: Path) -> np.ndarray:
    """A photo as a uint8 RGB frame of FRAME_HW."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((FRAME_HW[1], FRAME_HW[0]), Image.Resampling.BILINEAR))


@pytest.fixture(scope="session")
def classifier(bundled_model):
    from catdog.edge.classify import Classifier

    return Classifier.load(bundled_model)


@pytest.fixture(scope="session")
def confident_frames(classifier, val_photos) -> dict[str, list[np.ndarray]]:
    """RUN frames per label that the bundled model labels correctly with confidence >= 0.8.

    The bundled model is right on about 78% of val photos; picking frames it is sure about makes
    the camera tests about the loop (order, smoothing, counts), not about the model's accuracy.
    """
    chosen: dict[str, list[np.ndarray]] = {}
    for label, paths in val_photos.items():
        frames = []
        for path in paths:
            frame = to_frame(path)
            p = classifier.classify(frame)
            if p.label == label and p.confidence >= 0.8:
                frames.append(frame)
                if len(frames) == RUN:
                    break
        assert len(frames) == RUN, f"only {len(frames)} confident {label} photos in val/"
        chosen[label] = frames
    return chosen


def cat_dog_cat(frames: dict[str, list[np.ndarray]]) -> list[np.ndarray]:
    """RUN cat frames, RUN dog frames, RUN cat frames (the second cat run in reverse order)."""
    return [*frames["cat"], *frames["dog"], *frames["cat"][::-1]]


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """RGB frames -> an MJPG .avi through OpenCV (which wants BGR)."""
    import cv2

    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG .avi files here"
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def write_folder(folder: Path, frames: list[np.ndarray]) -> Path:
    """RGB frames -> numbered PNG files (lossless), played in name order by a folder source."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame{i:04d}.png")
    return folder


class MjpegServer:
    """A loopback HTTP server streaming JPEG frames as multipart/x-mixed-replace, like an IP camera.

    stop() closes the listening socket and every open stream; start() again on the same port.
    """

    def __init__(self, frames: list[np.ndarray], fps: float = 25.0, port: int = 0, limit: int | None = None):
        import io

        self.jpegs = []
        for frame in frames:
            buffer = io.BytesIO()
            Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
            self.jpegs.append(buffer.getvalue())
        self.fps = fps
        self.port = port
        self.limit = limit
        """Frames per connection before the server closes it (None: endless)."""
        self.served = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> "MjpegServer":
        owner = self
        self._closing.clear()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not owner._closing.is_set() and (owner.limit is None or i < owner.limit):
                        jpeg = owner.jpegs[i % len(owner.jpegs)]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n"
                        )
                        self.wfile.flush()
                        i += 1
                        owner.served += 1
                        time.sleep(1.0 / owner.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # open streams end, so clients see the connection drop
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        time.sleep(0.1)  # let handler threads notice _closing and close their sockets


def wait_for(condition, timeout: float, step: float = 0.02) -> bool:
    """Poll condition() until it is true or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())
