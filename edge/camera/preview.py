"""The browser preview's HTTP server (catdog-edge camera --http): the page, the MJPEG stream, server-sent state,
the JSON API and event snapshots, on the standard library's ThreadingHTTPServer.

One thread per connection, bounded (max_clients); every connection has a socket timeout, so a client that stalls
is dropped and never waited for; close() ends every stream, shuts every socket and joins every thread it started.
"""

from __future__ import annotations

import http.client
import json
import socket
import socketserver
import sys
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..errors import CameraSetupError
from .live import LiveView, public_source
from .page import SCRIPT, render_page
from .preview_config import PreviewConfig
from .routes import AFTER, COOKIE, Request, authorized, host_allowed, parse_request

#: Request line and headers together: a browser sends about 1 KiB; more is refused with 431.
HEAD_BYTES = 16 * 1024
#: How often a server-sent-events client gets the state when nothing else happens.
STATE_EVERY_S = 0.5
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; script-src 'self'; style-src 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'",
}


class _HeadLimit:
    """The request's input: once the head passes HEAD_BYTES, the next line read fails as too long, which the
    standard library answers with 431 (a request line cut short by it fails to parse: 400)."""

    def __init__(self, raw, budget: int):
        self._raw, self._left = raw, budget

    def readline(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise http.client.LineTooLong(f"request head over {HEAD_BYTES} bytes")
        line = self._raw.readline(self._left if size < 0 else min(size, self._left))
        self._left -= len(line)
        return line

    def __getattr__(self, name: str):
        return getattr(self._raw, name)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    server_version = "catdog-preview"
    sys_version = ""
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = "text/plain; charset=utf-8"

    def setup(self) -> None:
        self.timeout = self.server.config.client_timeout_s  # applied to the socket by StreamRequestHandler.setup
        super().setup()
        self.rfile = _HeadLimit(self.rfile, HEAD_BYTES)

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # every method reaches _respond, which answers 405 to all but GET and HEAD
            return self._respond
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # A request we cannot parse (a bad version, an unknown method) is the client's fault: 400, never 5xx.
        super().send_error(400 if code >= 500 and code != 503 else code, message, None)

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the library never prints; the camera's own lines stay readable

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _text(self, status: int, line: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, f"{status} {line}\n".encode(), "text/plain; charset=utf-8", headers)

    def _json(self, record: Any) -> None:
        self._send(200, json.dumps(record).encode(), "application/json")

    def _respond(self) -> None:
        config, live = self.server.config, self.server.live
        request = parse_request(self.command, self.path)
        if not authorized(config.token, request, self.headers.get("Authorization"), self.headers.get("Cookie")):
            self._text(401, "this camera needs its token: open /?token=TOKEN, or send Authorization: Bearer TOKEN",
                       {"WWW-Authenticate": 'Bearer realm="catdog"'})
        elif config.token is None and not host_allowed(self.headers.get("Host")):
            self._text(403, "without a token the preview answers only to localhost or 127.0.0.1")
        elif request.route is None:
            self._text(request.status, request.reason, {"Allow": "GET, HEAD"} if request.status == 405 else None)
        elif request.token is not None and request.route == "page":  # keep the token in a cookie, not the address bar
            self._send(303, b"", "text/plain", {
                "Location": "/", "Set-Cookie": f"{COOKIE}={config.token}; Path=/; HttpOnly; SameSite=Strict"})
        elif request.route == "page":
            self._send(200, self.server.page, "text/html; charset=utf-8")
        elif request.route == "script":
            self._send(200, SCRIPT.encode(), "text/javascript; charset=utf-8")
        elif request.route == "state":
            self._json(live.state())
        elif request.route == "events":
            self._json({"events": live.events_after(request.after)})
        elif request.route == "health":
            self._json({"status": "ok", "frames": live.state()["frames"]})
        elif request.route == "snapshot":
            data = live.snapshot_jpeg()
            if data is None:
                self._text(503, "no frame yet; try again in a moment", {"Retry-After": "1"})
            else:
                self._send(200, data, "image/jpeg")
        elif request.route == "event-snapshot":
            path = live.event_snapshot(request.event_id)
            if path is None:
                self._text(404, "no snapshot for that event (only the last events' snapshots, with --save-dir)")
            else:
                self._send(200, path.read_bytes(), "image/jpeg")
        elif request.route == "stream":
            self._stream()
        else:
            self._live_events()

    def _start_stream(self, content_type: str) -> bool:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        return self.command != "HEAD"

    def _stream(self) -> None:
        """MJPEG: each part is sent whole with the next boundary, so browsers show it at once."""
        live = self.server.live
        if not self._start_stream("multipart/x-mixed-replace; boundary=frame"):
            return
        self.wfile.write(b"--frame\r\n")
        seen = 0
        with live.watching():
            while not live.closed.is_set():
                newest = live.next_jpeg(seen, timeout=1.0)
                if newest is not None:
                    seen, jpeg = newest
                    self.wfile.write(b"Content-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%b\r\n--frame\r\n"
                                     % (len(jpeg), jpeg))

    def _live_events(self) -> None:
        """Server-sent events: "label" for each new event (id: resumes after a reconnect), "state" twice a second."""
        live = self.server.live
        if not self._start_stream("text/event-stream"):
            return
        resume = self.headers.get("Last-Event-ID", "")
        last = int(resume) if AFTER.fullmatch(resume) else 0
        self.wfile.write(b"retry: 2000\n\n")
        while not live.closed.is_set():
            for event in live.events_after(last):
                last = event["id"]
                self.wfile.write(f"id: {last}\nevent: label\ndata: {json.dumps(event)}\n\n".encode())
            self.wfile.write(f"event: state\ndata: {json.dumps(live.state())}\n\n".encode())
            live.wait_for_event(last, STATE_EVERY_S)


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
        super().__init__((config.host, config.port), _Handler)

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


def describe(contract: Any, model_path: Path, source: str) -> dict[str, Any]:
    """What the page shows about the model and source: labels, input size and colour, resize, crop, the model's
    file name and the source (a URL's password hidden)."""
    return {
        "labels": list(contract.labels),
        "input_hw": list(contract.input_hw),
        "color": contract.color,
        "resize": contract.resize,
        "crop": contract.crop,
        "model": Path(model_path).name,
        "source": public_source(source),
    }
