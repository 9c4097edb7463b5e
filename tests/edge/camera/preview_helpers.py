"""Preview-test material: the camera loop on a thread feeding a preview, held at chosen frames, and plain HTTP
clients (urllib, raw sockets, an MJPEG part reader) that wait for bytes, never for time."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

from catdog.edge.camera.frames import SourceConfig
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


class LoopThread:
    """watch() on a thread of its own, feeding preview; classification number n (1-based) waits while n is held."""

    def __init__(self, classifier, source: SourceConfig, preview: Preview, config: WatchConfig = WatchConfig(smooth=3),
                 hold: tuple[int, ...] = ()):
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
                self.summary = watch(HookedClassifier(classifier, hook), open_stream(source), config, on_event, self.stop,
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
