"""The preview's requests, as pure functions: route a request line's method and target, and check its token, Host
header and (for the review's changes) where a POST comes from. Nothing here touches a file: the only files served
are snapshots, looked up by event id, and inbox frames, looked up by file name in the inbox's listing."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from .preview_config import is_loopback
from .review import FRAME_NAME

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
    "/review": "review",
    "/review.js": "review-script",
    "/api/review": "review-state",
}
#: The review's changes: POST only, their fields in the query (a POST here has no body); GET changes nothing.
REVIEW_ACTIONS = {
    "/api/review/label": "label",
    "/api/review/delete": "delete",
    "/api/review/undo": "undo",
    "/api/review/class": "add-class",
}
#: Every change: the review's, reading the camera's model file again (edge.camera.swap) and learning a new one
#: from the labelled frames (edge.camera.retrain); POST only.
ACTIONS = {**REVIEW_ACTIONS, "/api/model/reload": "reload", "/api/model/retrain": "retrain"}
#: Routes that exist only while frames are collected (--collect).
REVIEW_ROUTES = frozenset({"review", "review-script", "review-state", "inbox-image", "retrain",
                           *REVIEW_ACTIONS.values()})
#: A POST must carry this header (any value): a page of another site cannot send it without asking first (a CORS
#: preflight, which is refused), so it cannot make a browser change the review or the model, even on loopback
#: without a token.
ACTION_HEADER = "X-Catdog-Action"
#: An inbox frame: /inbox/<file name>.jpg, the name checked against the inbox's listing before it is read.
INBOX_IMAGE = re.compile(r"/inbox/([^/]{1,210})")
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
    frame: str | None = None
    """/inbox/<name> and ?frame=: an inbox frame's file name (FRAME_NAME)."""
    cls: str | None = None
    """?class=: a class name (checked by edge.camera.review.class_problem when used)."""
    allow: str = "GET, HEAD"
    """The methods the path takes (the Allow header of a 405)."""


def parse_request(method: str, target: str) -> Request:
    """Route a request: GET or HEAD of one of PATHS, /events/<id>.jpg or /inbox/<frame>.jpg, or POST of one of
    ACTIONS, with an optional query.

    The path is matched exactly, never decoded or joined to a folder; query fields other than after, token, frame
    and class are ignored. Refusals: 405 for another method, 400 for a target that is not a path, a bad query or
    a bad frame name, 404 for an unknown path.
    """
    path, _, query = target.partition("?")
    action = ACTIONS.get(path)
    if action is not None and method != "POST":
        return Request(None, 405, "this changes only by POST", allow="POST")
    if action is None and method not in ("GET", "HEAD"):
        return Request(None, 405, "only GET and HEAD are served")
    if not path.startswith("/") or path.startswith("//"):
        return Request(None, 400, "the request target must be a path such as /api/state")
    try:
        fields = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        return Request(None, 400, f"at most {MAX_QUERY_FIELDS} query fields")
    values = dict(fields)
    after, token, frame = values.get("after"), values.get("token"), values.get("frame")
    if after is not None and not AFTER.fullmatch(after):
        return Request(None, 400, "after must be an event id (digits), e.g. /api/events?after=12")
    route = action or PATHS.get(path)
    event_id = None
    if route is None:
        snapshot, image = EVENT_SNAPSHOT.fullmatch(path), INBOX_IMAGE.fullmatch(path)
        if snapshot is not None:
            route, event_id = "event-snapshot", int(snapshot.group(1))
        elif image is not None:
            route, frame = "inbox-image", image.group(1)
        else:
            return Request(None, 404, "not found; the page is at /")
    if route in ("label", "delete", "inbox-image") and (frame is None or not FRAME_NAME.fullmatch(frame)):
        return Request(None, 400, "frame must be the file name of a frame in the inbox, e.g. "
                                  "20261207-103312-123_f0000042_cat.jpg")
    return Request(route, after=int(after) if after is not None else 0, event_id=event_id, token=token, frame=frame,
                   cls=values.get("class"), allow="POST" if action else "GET, HEAD")


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


def post_problem(headers: dict[str, str | None]) -> str | None:
    """Why a POST (a review change or a model reload) is refused (403), or None: it must carry ACTION_HEADER, come
    from this page (an Origin header, when sent, names the same host and port as Host) and have no body (its fields
    are in the query)."""
    if headers.get(ACTION_HEADER) is None:
        return f"a change needs the {ACTION_HEADER} header (the review page sends it)"
    origin, host = headers.get("Origin"), headers.get("Host")
    if origin is not None and (host is None or urlsplit(origin).netloc.lower() != host.strip().lower()):
        return "a change must come from this camera's own page"
    if headers.get("Transfer-Encoding") is not None or (headers.get("Content-Length") or "0").strip() != "0":
        return "a change has no body: its fields go in the query, e.g. /api/review/label?frame=NAME&class=cat"
    return None
