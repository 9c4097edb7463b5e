"""The preview's request handler: one request per connection, its head already read whole (edge.camera.preview
reads heads). check() parses it in memory and writes every refusal (malformed, no token, wrong Host, unknown
route: a 4xx); serve() answers an accepted request, routed by edge.camera.routes, with the page, JSON, a JPEG, an
MJPEG stream or server-sent events, on the connection's own thread."""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
from http.server import BaseHTTPRequestHandler
from typing import Any

from .page import REVIEW_PAGE, REVIEW_SCRIPT, SCRIPT
from .review import ReviewError
from .routes import (AFTER, COOKIE, REVIEW_ROUTES, Request, authorized, host_allowed, parse_request,
                     post_problem)

#: Request line and headers together: a browser sends about 1 KiB; more is refused (414 or 431).
HEAD_BYTES = 16 * 1024
#: Bytes the kernel may hold for a stream viewer: a few preview frames, so one that stops reading blocks a write
#: (and is dropped after the client timeout) instead of the kernel queueing megabytes for it.
STREAM_SEND_BUFFER = 128 * 1024
#: The versions served: HTTP/1.0 and 1.1 (answered as 1.0).
HTTP_1 = re.compile(r"HTTP/1\.[0-9]")
#: The MJPEG stream: BOUNDARY between parts; each JPEG is followed by PART_HEAD (the next part's opening).
BOUNDARY = "frame"
PART_HEAD = b"\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n"
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


class HeadLimit:
    """The request's input: a line that would take the head past HEAD_BYTES fails as too long (answered 414 for
    the request line, 431 for a header)."""

    def __init__(self, raw, budget: int):
        self._raw, self._left = raw, budget

    def readline(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise http.client.LineTooLong(f"request head over {HEAD_BYTES} bytes")
        line = self._raw.readline(self._left if size < 0 else min(size, self._left))
        self._left -= len(line)
        if self._left <= 0 and not line.endswith(b"\n"):
            raise http.client.LineTooLong(f"request head over {HEAD_BYTES} bytes")
        return line

    def __getattr__(self, name: str):
        return getattr(self._raw, name)


class SocketWriter:
    """A connection's output: every write is sent whole, or fails (the socket's timeout bounds a stalled client)."""

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def write(self, data: bytes) -> int:
        self._sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass


class Handler(BaseHTTPRequestHandler):
    """One request (HTTP/1.0, one per connection), in two steps: check() parses the head and answers refusals in
    memory; serve() answers what check() accepted. server is preview._Server (config, live, page, failures)."""

    server: Any
    server_version = "catdog-preview"
    sys_version = ""
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads
    default_request_version = "HTTP/1.0"  # so that even the answer to an unparsable line has a status line
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = "text/plain; charset=utf-8"

    def __init__(self, server: Any, head: bytes, client_address: Any):
        """Nothing is read or sent here: head is the request head as received (BaseRequestHandler's constructor,
        which handles a socket at once, is not called)."""
        self.server, self.client_address = server, client_address
        self.request = self.connection = None
        self.rfile = HeadLimit(io.BytesIO(head), HEAD_BYTES)
        self.wfile: Any = io.BytesIO()
        self.close_connection = True
        self.accepted: Request | None = None
        """The routed request once check() accepted it (it carries the token, or none is needed), else None."""

    def check(self) -> bytes:
        """Parse the head and check its method, route, token and Host. Returns what to send back and close with: a
        refusal, or b"" (nothing to answer, or accepted: then serve() answers)."""
        self.handle_one_request()
        return self.wfile.getvalue()

    def serve(self, connection: socket.socket | None) -> None:
        """Answer the accepted request on connection (None: into this handler's in-memory output)."""
        if connection is not None:
            self.request = self.connection = connection
            self.wfile = SocketWriter(connection)
        self._answer(self.accepted)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except http.client.LineTooLong:  # the request line alone is longer than HEAD_BYTES
            self.command, self.request_version, self.requestline, self.close_connection = "", "HTTP/1.0", "", True
            self.send_error(414)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        words = self.requestline.split()
        if len(words) != 3 or not HTTP_1.fullmatch(words[2]):  # HTTP/0.9 has no headers, so no token
            self.send_error(400, "a request line is METHOD PATH HTTP/1.x")
            return False
        return True

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # every method reaches _respond, which answers 405 to all but GET and HEAD
            return self._respond
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # A request we cannot parse (a bad version, an unknown method) is the client's fault: 400, never 5xx.
        self.request_version = "HTTP/1.0"  # "HTTP/0.9" would make the standard library leave out the status line
        super().send_error(400 if code >= 500 and code != 503 else code, message, None)

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the library never prints; the camera's own lines stay readable

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass

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
        """Every method's do_*: refuse here, in check(), or accept for serve()."""
        config = self.server.config
        request = parse_request(self.command, self.path)
        if not authorized(config.token, request, self.headers.get("Authorization"), self.headers.get("Cookie")):
            self._text(401, "this camera needs its token: open /?token=TOKEN, or send Authorization: Bearer TOKEN",
                       {"WWW-Authenticate": 'Bearer realm="catdog"'})
        elif config.token is None and not host_allowed(self.headers.get("Host")):
            self._text(403, "without a token the preview answers only to localhost or 127.0.0.1")
        elif request.route is None:
            self._text(request.status, request.reason, {"Allow": request.allow} if request.status == 405 else None)
        elif request.route in REVIEW_ROUTES and self.server.review is None:
            self._text(404, "no frames are collected here; start the camera with --collect DIR to review them")
        elif request.route in ("reload", "retrain") and self.server.switch is None:
            self._text(404, "this preview cannot reload its model (it is not run by catdog-edge camera)")
        elif request.allow == "POST" and (problem := post_problem(self.headers)) is not None:
            self._text(403, problem)
        else:
            self.accepted = request

    def _answer(self, request: Request) -> None:
        config, live = self.server.config, self.server.live
        if request.token is not None and request.route in ("page", "review"):  # the token in a cookie, not the address
            self._send(303, b"", "text/plain", {
                "Location": "/" if request.route == "page" else "/review",
                "Set-Cookie": f"{COOKIE}={config.token}; Path=/; HttpOnly; SameSite=Strict"})
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
        elif request.route == "live":
            self._live_events()
        elif request.route == "reload":
            self._reload()
        elif request.route == "retrain":
            self._retrain()
        else:
            self._review(request)

    def _review(self, request: Request) -> None:
        """The review view (edge.camera.review): its page, its state, an inbox frame, or a change (POST)."""
        review = self.server.review
        if request.route == "review":
            self._send(200, REVIEW_PAGE.encode(), "text/html; charset=utf-8")
        elif request.route == "review-script":
            self._send(200, REVIEW_SCRIPT.encode(), "text/javascript; charset=utf-8")
        elif request.route == "review-state":
            self._json(review.state())
        elif request.route == "inbox-image":
            path = review.image(request.frame)
            try:
                data = None if path is None else path.read_bytes()
            except OSError:  # labelled or dropped since it was listed
                data = None
            if data is None:
                self._text(404, "that frame is not in the inbox (labelled or dropped meanwhile?)")
            else:
                self._send(200, data, "image/jpeg")
        else:
            try:
                if request.route == "label":
                    review.label(request.frame, request.cls or "")
                elif request.route == "delete":
                    review.delete(request.frame)
                elif request.route == "undo":
                    review.undo()
                else:
                    review.add_class(request.cls or "")
            except ReviewError as error:
                self._text(error.status, str(error))
                return
            self._json(review.state())

    def _reload(self) -> None:
        """Load the camera's model file again, on this thread (edge.camera.swap): 200 with what was loaded (the loop
        takes it at its next frame), or 422 with why not (the old model keeps running)."""
        result = self.server.switch.reload()
        self._send(200 if result.ok else 422, json.dumps(result.to_dict()).encode(), "application/json")

    def _retrain(self) -> None:
        """Start learning a new model from the labelled frames (edge.camera.retrain) and answer at once: 202 when it
        started, 409 while one runs; /api/state's "retrain" says how it goes."""
        retrainer = self.server.retrainer
        if retrainer.start():
            self._send(202, json.dumps({"ok": True, "message": "started"}).encode(), "application/json")
        else:
            self._send(409, json.dumps({"ok": False, "message": "a retrain is already running; wait for it to end "
                                                                "(see /api/state)"}).encode(), "application/json")

    def _start_stream(self, content_type: str) -> bool:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        if isinstance(self.connection, socket.socket):  # a small send buffer: a stalled viewer is found in seconds
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SEND_BUFFER)
        return self.command != "HEAD"

    def _stream(self) -> None:
        """MJPEG. Each JPEG goes out followed by the boundary and the next part's headers: Chromium shows a part
        only once the next one has begun, so a frame is never held back until the camera sends another."""
        live = self.server.live
        if not self._start_stream(f"multipart/x-mixed-replace; boundary={BOUNDARY}"):
            return
        self.wfile.write(PART_HEAD[2:])  # the first boundary has no line break before it
        seen = 0
        with live.watching():
            while not live.closed.is_set():
                newest = live.next_jpeg(seen, timeout=1.0)
                if newest is not None:
                    seen, jpeg = newest
                    self.wfile.write(jpeg + PART_HEAD)

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


def answer(server: Any, data: bytes) -> bytes:
    """Run one request's raw bytes through the handler without a socket and return what it wrote: the fuzz harness
    and the property tests drive the real parsing this way (a stream ends at once once server.live is closed)."""
    handler = Handler(server, data, ("127.0.0.1", 0))
    refusal = handler.check()
    if handler.accepted is None:
        return refusal
    handler.serve(None)
    return handler.wfile.getvalue()
