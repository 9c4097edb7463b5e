"""Shared camera-test material: frames from real val photos, videos, photo folders, an MJPEG server, and
stand-ins (a gated frame source, a Picamera2, a classifier hook) that let tests wait for events, not time.

Everything is built in temporary folders; nothing is written beside the photos or into the repository.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from catdog.edge.camera import FrameSource

#: Frame size of the test videos and streams, (height, width).
FRAME_HW = (240, 320)
#: Frames per label run in the test videos.
RUN = 12
#: Seconds a test waits for an event before calling it missing (never reached when things work).
PATIENCE_S = 30.0


def legacy_environment() -> bool:
    """True in an environment with tflite-runtime and without ai-edge-litert: the legacy one (Makefile, pi/targets.py),
    which installs numpy < 2, tflite-runtime, Pillow, click, pytest and hypothesis, and no camera extra."""
    return importlib.util.find_spec("tflite_runtime") is not None and importlib.util.find_spec("ai_edge_litert") is None


def require_opencv():
    """cv2, for the tests of what OpenCV does (webcams, video files, network streams). Skipped where it is missing;
    under CI=true a failure, except in the legacy environment (tflite-runtime, no ai-edge-litert: make test-legacy),
    which installs no camera extra by design. The preview's tests need no OpenCV and run there too."""
    try:
        import cv2
    except ImportError:
        reason = "OpenCV (the camera extra) is not installed in this environment"
        if os.environ.get("CI") == "true" and not legacy_environment():
            pytest.fail(f"{reason}; CI installs the camera extra in every environment but the legacy tflite-runtime one")
        pytest.skip(reason)
    return cv2


def to_frame(path: Path) -> np.ndarray:
    """A photo as a uint8 RGB frame of FRAME_HW."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((FRAME_HW[1], FRAME_HW[0]), Image.Resampling.BILINEAR))


def solid(rgb: tuple[int, int, int], n: int = 1) -> list[np.ndarray]:
    """n frames of FRAME_HW in one colour."""
    return [np.full((*FRAME_HW, 3), rgb, dtype=np.uint8) for _ in range(n)]


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


def wait_for(condition: Callable[[], bool], timeout: float = PATIENCE_S, step: float = 0.01) -> bool:
    """Poll condition() until it is true or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


class GatedSource(FrameSource):
    """A frame source that delivers each of its frames only when the test allows one, then ends:
    the test decides exactly which frames exist before the consumer looks."""

    def __init__(self, frames: list[np.ndarray], fps: float = 100.0):
        super().__init__()
        self.name = "gated"
        self.fps = fps
        self.images = frames
        self._turns = threading.Semaphore(0)
        self._next = 0

    def allow(self, n: int = 1) -> None:
        """Let the next n frames through."""
        self._turns.release(n)

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray | None:
        if self._next >= len(self.images):
            return None
        if not self._turns.acquire(timeout=PATIENCE_S):
            raise TimeoutError(f"frame {self._next} was never allowed")
        self._next += 1
        return self.images[self._next - 1]

    def close(self) -> None:
        pass


class StandInPicamera2:
    """Stands in for picamera2.Picamera2: records the calls the adapter makes and serves `frames` in
    order (the last one repeated). With `turns` set, each capture first takes one turn, so the camera
    delivers a frame only after the consumer released a turn for the one before (no frame dropped)."""

    calls: list = []
    frames: list[np.ndarray] = []
    fail_open = False
    turns: threading.Semaphore | None = None

    def __init__(self):
        if self.fail_open:
            raise IndexError("list index out of range")  # what picamera2 raises with no camera attached
        self.calls.append(("Picamera2",))
        self.served = 0

    def create_video_configuration(self, main):
        self.calls.append(("create_video_configuration", main))
        return {"main": main}

    def configure(self, config):
        self.calls.append(("configure", config))

    def start(self):
        self.calls.append(("start",))

    def capture_array(self, name="main"):
        if self.turns is not None and not self.turns.acquire(timeout=PATIENCE_S):
            raise TimeoutError("the consumer stopped taking frames")
        self.calls.append(("capture_array", name))
        frame = self.frames[min(self.served, len(self.frames) - 1)]
        self.served += 1
        return frame.copy()

    def stop(self):
        self.calls.append(("stop",))

    def close(self):
        self.calls.append(("close",))


class HookedClassifier:
    """A real classifier that calls hook(n) as its n-th classification starts (1-based). By then the
    camera loop has taken that frame, so a test can act at exactly that point (hold the model busy,
    let a camera deliver, request a stop)."""

    def __init__(self, classifier, hook: Callable[[int], object]):
        self.contract = classifier.contract
        self.answers = classifier.answers
        self.answer_probabilities = classifier.answer_probabilities
        self.calls = 0
        self._classifier = classifier
        self._hook = hook

    def classify(self, rgb: np.ndarray):
        self.calls += 1
        self._hook(self.calls)
        return self._classifier.classify(rgb)


class MjpegServer:
    """A loopback HTTP server streaming JPEG frames as multipart/x-mixed-replace, like an IP camera.

    With limit, each connection ends after that many frames (the client reconnects). With down_after,
    the server goes down once it has served that many frames in all, at that exact frame: its stream
    ends and new connections get no answer, until stop() and start() again (same port).
    """

    def __init__(
        self, frames: list[np.ndarray], fps: float = 25.0, port: int = 0, limit: int | None = None,
        down_after: int | None = None,
    ):
        self.show(frames)
        self.fps = fps
        self.port = port
        self.limit = limit
        """Frames per connection before the server closes it (None: endless)."""
        self.down_after = down_after
        """Frames in all before the server goes down (None: never)."""
        self.served = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._down = threading.Event()
        self._streams = threading.Condition()
        self._open_streams = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def show(self, frames: list[np.ndarray]) -> None:
        """Stream these frames (in a loop) from the next connection on."""
        import io

        jpegs = []
        for frame in frames:
            buffer = io.BytesIO()
            Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
            jpegs.append(buffer.getvalue())
        self.jpegs = jpegs

    def start(self) -> "MjpegServer":
        owner = self
        self._down.clear()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if owner._down.is_set():
                    return  # no answer at all: the client's open fails
                with owner._streams:
                    owner._open_streams += 1
                try:
                    self._stream()
                finally:
                    with owner._streams:
                        owner._open_streams -= 1
                        owner._streams.notify_all()

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not owner._down.is_set() and (owner.limit is None or i < owner.limit):
                        jpeg = owner.jpegs[i % len(owner.jpegs)]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n"
                        )
                        self.wfile.flush()
                        i += 1
                        owner.served += 1
                        if owner.down_after is not None and owner.served >= owner.down_after:
                            owner._down.set()
                        owner._down.wait(1.0 / owner.fps)  # the camera's frame rate
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
        """End every stream, close the server, and return once the streams are closed."""
        self._down.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=PATIENCE_S)
            self._thread = None
        with self._streams:
            assert self._streams.wait_for(lambda: self._open_streams == 0, timeout=PATIENCE_S), "streams left open"
