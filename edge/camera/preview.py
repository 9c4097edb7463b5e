"""The browser preview's HTTP server (catdog-edge camera --http): the page, the MJPEG stream, server-sent state,
the JSON API and event snapshots, on the standard library's socketserver and http.server.

One thread accepts connections and reads every request head, without a thread per connection: a head must arrive
whole within client_timeout_s of connecting (one deadline, however slowly it trickles; then 408), at most
max_pending wait at once (the longest waiting is dropped for a newcomer), and the head is parsed and its token
checked on that thread, where every refusal is answered. Only an accepted request (it carries the token, or none is
needed) gets a thread of its own, at most max_clients at once (then 503), and a socket timeout: a client that cannot
take a write for client_timeout_s is dropped. close() ends every stream, shuts every socket and joins every thread
it started.
"""

from __future__ import annotations

import ipaddress
import selectors
import socket
import socketserver
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CameraSetupError
from .live import LiveView, public_source
from .page import render_page
from .preview_config import PreviewConfig
from .preview_handler import HEAD_BYTES, Handler
from .retrain import Retrainer
from .review import Review
from .swap import ModelSwitch

#: Answers sent by the head reader itself (a refusal always fits in the socket's empty send buffer).
TIMED_OUT = (b"HTTP/1.0 408 Request Timeout\r\nContent-Type: text/plain\r\n\r\n"
             b"408 the request head did not arrive in time\n")
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\n\r\n"
        b"503 too many connections; try again later\n")
#: Connections accepted per turn of the head reader before it reads again, so new arrivals never starve reads.
ACCEPTS_PER_TURN = 16


@dataclass
class _Head:
    """A connection whose request head is still arriving."""

    address: Any
    deadline: float
    data: bytearray = field(default_factory=bytearray)


def _head_ends(data: bytearray, searched: int) -> bool:
    """True when data holds a blank line (the end of a head); only bytes from searched on are new."""
    start = max(0, searched - 2)
    return data.find(b"\n\n", start) >= 0 or data.find(b"\n\r\n", start) >= 0


def _close(sock: socket.socket, data: bytes = b"") -> None:
    """Send data if it fits at once (never waits), then end the connection."""
    try:
        if data:
            sock.send(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.close()


class _Server(socketserver.TCPServer):
    """Listens; run() accepts connections and reads their heads on one thread; accepted requests are served on
    threads of their own, tracked with their sockets so close() can end them."""

    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, config: PreviewConfig, live: LiveView, page: bytes, review: Review | None = None,
                 switch: ModelSwitch | None = None, retrainer: Retrainer | None = None):
        self.address_family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        self.config, self.live, self.page, self.review, self.switch = config, live, page, review, switch
        self.retrainer = retrainer
        self.failures: deque[str] = deque(maxlen=20)
        """Unexpected errors of request handlers (a bug if any): kept for tests and the fuzz harness."""
        self._lock = threading.Lock()
        self._clients: dict[threading.Thread, socket.socket] = {}
        self._pending: dict[socket.socket, _Head] = {}  # oldest first: every head has the same time to arrive
        self._stopping = threading.Event()
        self._wake_read, self._wake_write = socket.socketpair()  # stop() wakes run() through it
        super().__init__((config.host, config.port), Handler)

    def run(self) -> None:
        """Accept connections and read their request heads until stop()."""
        selector = selectors.DefaultSelector()
        self.socket.setblocking(False)
        selector.register(self.socket, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                oldest = next(iter(self._pending.values()), None)
                wait = None if oldest is None else max(0.0, oldest.deadline - time.monotonic())
                arrived = False
                for key, _ in selector.select(wait):
                    if key.fileobj is self.socket:
                        arrived = True
                    elif key.fileobj is not self._wake_read:
                        self._read(selector, key.fileobj)
                if arrived:  # after the reads: a head that has arrived is never dropped for a newcomer
                    self._accept(selector)
                now = time.monotonic()
                while self._pending:  # oldest first, so the first one still in time ends the search
                    sock, head = next(iter(self._pending.items()))
                    if head.deadline > now:
                        break
                    self._drop(selector, sock, TIMED_OUT)
        finally:
            for sock in list(self._pending):
                self._drop(selector, sock)
            selector.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                sock, address = self.socket.accept()
            except OSError:  # none left (or out of file descriptors: tried again on the next turn)
                return
            sock.setblocking(False)
            if len(self._pending) >= self.config.max_pending:
                self._drop(selector, next(iter(self._pending)), BUSY)
            self._pending[sock] = _Head(address, time.monotonic() + self.config.client_timeout_s)
            selector.register(sock, selectors.EVENT_READ)

    def _read(self, selector: selectors.BaseSelector, sock: Any) -> None:
        head = self._pending[sock]
        try:
            chunk = sock.recv(HEAD_BYTES + 1 - len(head.data))
        except BlockingIOError:
            return
        except OSError:
            self._drop(selector, sock)
            return
        searched = len(head.data)
        head.data += chunk
        if chunk and len(head.data) <= HEAD_BYTES and not _head_ends(head.data, searched):
            return
        selector.unregister(sock)
        del self._pending[sock]
        self._dispatch(sock, bytes(head.data), head.address)

    def _drop(self, selector: selectors.BaseSelector, sock: socket.socket, answer: bytes = b"") -> None:
        selector.unregister(sock)
        del self._pending[sock]
        _close(sock, answer)

    def _dispatch(self, sock: socket.socket, head: bytes, address: Any) -> None:
        """Check a whole head here (in memory, never waiting on the client); serve it on a thread if accepted."""
        try:
            handler = Handler(self, head, address)
            refusal = handler.check()
        except Exception as error:  # a bug: recorded, and the reader goes on
            self.failures.append(f"{type(error).__name__}: {error}")
            _close(sock)
            return
        if handler.accepted is None:
            _close(sock, refusal)
            return
        thread = threading.Thread(target=self._serve, args=(handler, sock), daemon=True, name="catdog-preview-client")
        with self._lock:
            full = len(self._clients) >= self.config.max_clients
            if not full:
                self._clients[thread] = sock
        if full:
            _close(sock, BUSY)
            return
        sock.setblocking(True)
        sock.settimeout(self.config.client_timeout_s)
        thread.start()

    def _serve(self, handler: Handler, sock: socket.socket) -> None:
        try:
            handler.serve(sock)
        except OSError:  # the client went away, or could not take a write in time: normal
            pass
        except Exception as error:
            self.failures.append(f"{type(error).__name__}: {error}")
        finally:
            _close(sock)
            with self._lock:
                self._clients.pop(threading.current_thread(), None)

    def stop(self) -> None:
        """Make run() return (it closes the connections whose heads are still arriving)."""
        self._stopping.set()
        try:
            self._wake_write.send(b"x")
        except OSError:
            pass

    def server_close(self) -> None:
        super().server_close()
        self._wake_read.close()
        self._wake_write.close()

    def clients(self) -> int:
        """Requests being served now (each on its thread)."""
        with self._lock:
            return len(self._clients)

    def pending(self) -> int:
        """Connections whose request head is still arriving."""
        return len(self._pending)

    def end_clients(self, timeout: float) -> list[threading.Thread]:
        """Shut every client socket and join its thread; returns the threads still alive after timeout."""
        with self._lock:
            clients = dict(self._clients)
        for sock in clients.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in clients:
            thread.join(timeout)
        return [thread for thread in clients if thread.is_alive()]


class Preview:
    """A running preview: its server thread, its LiveView and its URL. Stop it with close() (or use it as a context manager)."""

    def __init__(self, config: PreviewConfig, info: dict[str, Any], save_dir: Path | None = None,
                 review: Review | None = None, switch: ModelSwitch | None = None):
        """Listen on config.host:config.port and start serving; with review (--collect), also the review view; with
        switch, the model's reload action (POST /api/model/reload) and the running model in /api/state; with both,
        the retrain action (POST /api/model/retrain, edge.camera.retrain) and its progress in /api/state.

        Raises:
            CameraSetupError: the address cannot be listened on (in use, not this machine's, needs privileges).
        """
        self.config = config
        self.live = LiveView(config, info, save_dir)
        if switch is not None:
            self.live.model = switch.running
        self.retrainer = None if review is None or switch is None else Retrainer(switch, review.folder)
        if self.retrainer is not None:
            self.live.retrain = self.retrainer.status
        try:
            self.server = _Server(config, self.live, render_page(info, config.events_kept, review is not None,
                                                                 switch is not None), review, switch, self.retrainer)
        except OSError as exc:
            self.live.close()
            raise CameraSetupError(
                f"--http {config.host}:{config.port}: cannot listen there ({exc.strerror or exc}); pick another port or "
                "an address of this machine"
            ) from None
        self._thread = threading.Thread(target=self.server.run, name="catdog-preview-server", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The port listened on (the free one picked for port 0)."""
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        """The page's address as this machine opens it, e.g. http://127.0.0.1:8080/ (also for 0.0.0.0; [::1] for ::)."""
        host = self.config.host
        if self.config.every_interface:
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        return _url(host, self.port)

    def addresses(self) -> list[str]:
        """The page's addresses as other machines open it: the one listened on; for 0.0.0.0 and :: (every
        interface), this machine's address on its default route (when it has one) and its host name."""
        host = self.config.host
        if not self.config.every_interface:
            return [_url(host, self.port)]
        found = [_url(address, self.port) for address in (outward_address(host),) if address]
        name = socket.gethostname()
        return found + ([_url(name, self.port)] if name and name != "localhost" else [])

    def close(self, timeout: float = 5.0) -> list[threading.Thread]:
        """Stop accepting, end every stream and connection, and join every thread; returns any still alive after
        timeout seconds each (none when clients behave or time out)."""
        self.live.close(timeout)  # wakes every stream and event client, which then return
        self.server.stop()
        self._thread.join(timeout)  # no new client thread starts after this
        self.server.server_close()
        left = self.server.end_clients(timeout)
        return left + [t for t in (self._thread,) if t.is_alive()]

    def __enter__(self) -> "Preview":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def outward_address(host: str) -> str | None:
    """This machine's address on its default route, in host's family (0.0.0.0: IPv4, ::: IPv6), or None without
    one. A UDP socket connected to a documentation address (RFC 5737, 3849) picks the route; nothing is sent."""
    family, probe = (socket.AF_INET6, "2001:db8::1") if ":" in host else (socket.AF_INET, "192.0.2.1")
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            address = str(sock.getsockname()[0])
    except OSError:
        return None
    return None if ipaddress.ip_address(address).is_unspecified else address


def describe(contract: Any, model_path: Path, source: str, answers: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What the page shows about the model and source: labels (answers: with "none" when the model's presence
    score is in use), input size and colour, resize, crop, the model's file name and the source (a URL's
    password hidden)."""
    return {
        "labels": list(contract.labels if answers is None else answers),
        "input_hw": list(contract.input_hw),
        "color": contract.color,
        "resize": contract.resize,
        "crop": contract.crop,
        "model": Path(model_path).name,
        "source": public_source(source),
    }
