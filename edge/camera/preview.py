"""The browser preview's HTTP server (catdog-edge camera --http): the page, the MJPEG stream, server-sent state,
the JSON API and event snapshots, on the standard library's ThreadingHTTPServer.

One thread per connection, bounded (max_clients); every connection has a socket timeout, so a client that stalls
is dropped and never waited for; close() ends every stream, shuts every socket and joins every thread it started.
"""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from collections import deque
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..errors import CameraSetupError
from .live import LiveView, public_source
from .page import render_page
from .preview_config import PreviewConfig
from .preview_handler import Handler

class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that bounds its connections and tracks their threads and sockets, so close() can end them."""

    daemon_threads = True  # a thread that outlives close()'s join never holds the process open
    request_queue_size = 16

    def __init__(self, config: PreviewConfig, live: LiveView, page: bytes):
        self.address_family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        self.config, self.live, self.page = config, live, page
        self.failures: deque[str] = deque(maxlen=20)
        """Unexpected errors of request handlers (a bug if any): kept for tests and the fuzz harness."""
        self._lock = threading.Lock()
        self._clients: dict[threading.Thread, socket.socket] = {}
        super().__init__((config.host, config.port), Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # HTTPServer's also looks up a host name: a DNS wait, for nothing
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._lock:
            full = len(self._clients) >= self.config.max_clients
        if full:
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\n\r\n"
                                b"503 too many connections; try again later\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        thread = threading.Thread(target=self._serve, args=(request, client_address), daemon=True,
                                  name="catdog-preview-client")
        with self._lock:
            self._clients[thread] = request
        thread.start()

    def _serve(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._clients.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):  # OSError: the client went away or timed out, which is normal
            self.failures.append(f"{type(error).__name__}: {error}")

    def clients(self) -> int:
        """Connections being served now."""
        with self._lock:
            return len(self._clients)

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

    def __init__(self, config: PreviewConfig, info: dict[str, Any], save_dir: Path | None = None):
        """Listen on config.host:config.port and start serving.

        Raises:
            CameraSetupError: the address cannot be listened on (in use, not this machine's, needs privileges).
        """
        self.config = config
        self.live = LiveView(config, info, save_dir)
        try:
            self.server = _Server(config, self.live, render_page(info, config.events_kept))
        except OSError as exc:
            self.live.close()
            raise CameraSetupError(
                f"--http {config.host}:{config.port}: cannot listen there ({exc.strerror or exc}); pick another port or "
                "an address of this machine"
            ) from None
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="catdog-preview-server", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The port listened on (the free one picked for port 0)."""
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        """The page's address, e.g. http://127.0.0.1:8080/ (0.0.0.0 and :: listen everywhere; say so)."""
        host = self.config.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def close(self, timeout: float = 5.0) -> list[threading.Thread]:
        """Stop accepting, end every stream and connection, and join every thread; returns any still alive after
        timeout seconds each (none when clients behave or time out)."""
        self.live.close(timeout)  # wakes every stream and event client, which then return
        self.server.shutdown()
        self.server.server_close()
        left = self.server.end_clients(timeout)
        self._thread.join(timeout)
        return left + [t for t in (self._thread,) if t.is_alive()]

    def __enter__(self) -> "Preview":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
