"""Preview-test material: the camera loop on a thread feeding a preview, held at chosen frames (from a photo folder
or LiveFrames, a live camera without OpenCV), plain HTTP clients (urllib, raw sockets, an MJPEG part reader) that
wait for bytes, never for time, and a Trickler, whose clients send a head a byte at a time at a set pace."""

from __future__ import annotations

import select
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np

from catdog.edge.camera.frames import FrameSource, SourceConfig
from catdog.edge.camera.loop import WatchConfig, watch
from catdog.edge.camera.preview import Preview
from catdog.edge.camera.preview_handler import BOUNDARY, PART_HEAD
from catdog.edge.camera.streams import open_stream
from tests.edge.camera.helpers import PATIENCE_S, HookedClassifier

TOKEN = "test-token-0123456789"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
    """One request with urllib; 4xx and 5xx come back as a Reply too (redirects are not followed)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, headers=headers or {}, method=method)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=PATIENCE_S) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())


def raw(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    """Send raw bytes, then read until the server closes the connection."""
    with socket.create_connection((host, port), timeout=PATIENCE_S) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(reply: bytes) -> int:
    """The status code of a raw HTTP reply."""
    return int(reply.split(b" ", 2)[1])


class MjpegReader:
    """An open MJPEG stream: next_part() returns each JPEG as it arrives (parts end at the next boundary)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None):
        self.response = urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=PATIENCE_S)
        assert self.response.headers["Content-Type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        self._buffer = b""
        first = PART_HEAD[2:]
        while len(self._buffer) < len(first):
            self._fill()
        assert self._buffer.startswith(first), self._buffer[:80]
        self._buffer = self._buffer[len(first):]

    def _fill(self) -> None:
        chunk = self.response.read1(65536)
        if not chunk:
            raise EOFError("the stream ended")
        self._buffer += chunk

    def next_part(self) -> bytes:
        while (end := self._buffer.find(PART_HEAD)) < 0:
            self._fill()
        jpeg, self._buffer = self._buffer[:end], self._buffer[end + len(PART_HEAD):]
        return jpeg

    def close(self) -> None:
        self.response.close()


class LiveFrames(FrameSource):
    """A live camera without OpenCV: serves its frames in a loop, about fps a second, for as long as it is read
    (the preview tests test HTTP; they need frames, not a camera driver)."""

    live = True

    def __init__(self, frames: list[np.ndarray], fps: float = 50.0):
        super().__init__()
        self.name = "live"
        self.fps = fps
        self.images = frames
        self._next = 0

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        time.sleep(1.0 / self.fps)  # the camera's frame rate, as a real one paces its frames
        self._next += 1
        return self.images[(self._next - 1) % len(self.images)]

    def close(self) -> None:
        pass


class Trickler:
    """n loopback connections that each send a request head that never ends, one byte every every_s seconds, from
    one thread, until stop() (at the latest after PATIENCE_S). dropped_after[i]: seconds from connection i's
    connect until the server answered or closed it; replies[i]: what it sent first then (b"" for nothing)."""

    HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: "

    def __init__(self, port: int, n: int, every_s: float):
        self.every_s = every_s
        self.socks: list[socket.socket] = []
        self.connected: list[float] = []
        for _ in range(n):
            self.socks.append(socket.create_connection(("127.0.0.1", port), timeout=PATIENCE_S))
            self.connected.append(time.monotonic())
        self.dropped_after: dict[int, float] = {}
        self.replies: dict[int, bytes] = {}
        self.rounds = 0
        """Rounds done: in each, every connection still open sent one more byte."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-trickler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        limit = time.monotonic() + PATIENCE_S
        sent = 0
        while time.monotonic() < limit and len(self.dropped_after) < len(self.socks):
            byte = self.HEAD[sent:sent + 1] or b"a"
            for i, sock in enumerate(self.socks):
                if i in self.dropped_after:
                    continue
                answered, _, _ = select.select([sock], [], [], 0)  # the server wrote (408, 503) or closed
                try:
                    if not answered:
                        sock.send(byte)
                        continue
                    self.replies[i] = sock.recv(65536)
                except OSError:
                    self.replies[i] = b""
                self.dropped_after[i] = time.monotonic() - self.connected[i]
            sent += 1
            self.rounds += 1
            if self._stop.wait(self.every_s):
                return

    def open(self) -> int:
        """Connections the server has not dropped yet."""
        return len(self.socks) - len(self.dropped_after)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(PATIENCE_S)
        for sock in self.socks:
            sock.close()


class LoopThread:
    """watch() on a thread of its own, feeding preview; classification number n (1-based) waits while n is held.
    frames: a FrameSource to read instead of the one source names."""

    def __init__(self, classifier, source: SourceConfig, preview: Preview, config: WatchConfig = WatchConfig(smooth=3),
                 hold: tuple[int, ...] = (), frames: FrameSource | None = None):
        self.reached = {n: threading.Event() for n in hold}
        self._go = {n: threading.Event() for n in hold}
        self.stop = threading.Event()
        self.events: list = []
        self.summary = None
        self.failure: BaseException | None = None

        def hook(n: int) -> None:
            if n in self._go:
                self.reached[n].set()
                assert self._go[n].wait(PATIENCE_S), f"classification {n} was never released"

        def on_event(event) -> None:
            self.events.append(event)
            preview.live.on_event(event)

        def run() -> None:
            try:
                self.summary = watch(HookedClassifier(classifier, hook), open_stream(source, frames), config, on_event, self.stop,
                                     on_frame=preview.live.observe)
            except BaseException as exc:  # reported by finish()
                self.failure = exc

        self.thread = threading.Thread(target=run, name="test-camera-loop")
        self.thread.start()

    def release(self, n: int) -> None:
        self._go[n].set()

    def finish(self):
        """Stop the loop (releasing any hold) and return its summary."""
        self.stop.set()
        for go in self._go.values():
            go.set()
        self.thread.join(PATIENCE_S)
        assert not self.thread.is_alive(), "the camera loop did not stop"
        if self.failure is not None:
            raise self.failure
        return self.summary


def preview_threads() -> list[threading.Thread]:
    """Threads the preview started that are still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("catdog-preview") and t.is_alive()]
