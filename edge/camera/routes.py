"""The preview's requests, as pure functions: route a request line's method and target, and check its token and
Host header. Nothing here touches a file: the only files served are snapshots, looked up by event id."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .preview_config import is_loopback

#: Exact paths and what they serve; anything else is 404 (there is no directory to list).
PATHS = {
    "/": "page",
    "/preview.js": "script",
    "/stream.mjpg": "stream",
    "/api/live": "live",
    "/api/state": "state",
    "/api/events": "events",
    "/snapshot.jpg": "snapshot",
    "/healthz": "health",
}
#: A label event's snapshot: /events/<id>.jpg, id in ASCII digits only.
EVENT_SNAPSHOT = re.compile(r"/events/([0-9]{1,12})\.jpg")
AFTER = re.compile(r"[0-9]{1,12}")
COOKIE = "catdog_token"
MAX_QUERY_FIELDS = 8


@dataclass(frozen=True)
class Request:
    """A request line's method and target, routed: what to serve, or the 4xx to answer."""

    route: str | None
    """A value of PATHS, "event-snapshot", or None when refused."""
    status: int = 200
    """200 when routed, else the 4xx to answer."""
    reason: str = ""
    """Why it was refused: one line for the response body."""
    after: int = 0
    """/api/events?after=ID: only events with a larger id."""
    event_id: int | None = None
    """/events/<id>.jpg: whose snapshot."""
    token: str | None = None
    """?token= when given."""


def parse_request(method: str, target: str) -> Request:
    """Route a request: GET or HEAD of one of PATHS or /events/<id>.jpg, with an optional query.

    The path is matched exactly, never decoded or joined to a folder; query fields other than after and
    token are ignored. Refusals: 405 for another method, 400 for a target that is not a path or a bad
    query, 404 for an unknown path.
    """
    if method not in ("GET", "HEAD"):
        return Request(None, 405, "only GET and HEAD are served")
    path, _, query = target.partition("?")
    if not path.startswith("/") or path.startswith("//"):
        return Request(None, 400, "the request target must be a path such as /api/state")
    try:
        fields = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        return Request(None, 400, f"at most {MAX_QUERY_FIELDS} query fields")
    values = dict(fields)
    after, token = values.get("after"), values.get("token")
    if after is not None and not AFTER.fullmatch(after):
        return Request(None, 400, "after must be an event id (digits), e.g. /api/events?after=12")
    route = PATHS.get(path)
    event_id = None
    if route is None:
        match = EVENT_SNAPSHOT.fullmatch(path)
        if match is None:
            return Request(None, 404, "not found; the page is at /")
        route, event_id = "event-snapshot", int(match.group(1))
    return Request(route, after=int(after) if after is not None else 0, event_id=event_id, token=token)


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def cookie_token(cookie_header: str | None) -> str | None:
    """The catdog_token value of a Cookie header, if any."""
    for part in (cookie_header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE:
            return value.strip('"')
    return None


def authorized(expected: str | None, request: Request, authorization: str | None, cookie: str | None) -> bool:
    """True when no token is required, or the request carries it: ?token=, the page's cookie, or
    Authorization: Bearer TOKEN (compared in constant time)."""
    if expected is None:
        return True
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    bearer = credentials.strip() if scheme.lower() == "bearer" else None
    return any(_same(given, expected) for given in (request.token, cookie_token(cookie), bearer))


def host_allowed(host_header: str | None) -> bool:
    """Without a token the preview listens on loopback only; it then answers only requests addressed to a loopback
    name, so a web page that rebinds its own domain name to 127.0.0.1 cannot read the camera."""
    if host_header is None:
        return True  # HTTP/1.0 clients may send none; a browser always does
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host == "localhost" or is_loopback(host)
