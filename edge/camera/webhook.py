"""The webhook sink's transport: POST each event's JSON to a URL; any 2xx answer acknowledges it."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import SinkError, SinkSetupError


@dataclass(frozen=True)
class WebhookTarget:
    """Where --webhook posts: an http(s) URL, credentials (user:pass@) sent as HTTP basic auth."""

    url: str
    """The URL without its user:pass@ part."""
    username: str | None = None
    """From user:pass@ in --webhook, or None."""
    password: str | None = None
    """From user:pass@ in --webhook, or None."""

    @classmethod
    def parse(cls, url: str) -> WebhookTarget:
        """Check --webhook URL. Raises SinkSetupError (a usage error) saying what is wrong."""
        hint = "use --webhook http(s)://host[:port]/path"
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise SinkSetupError(f"--webhook {url!r}: {exc}; {hint}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SinkSetupError(f"--webhook {url!r}: not an http or https URL with a host; {hint}")
        if any(c in url for c in "\r\n\t ") or (port is not None and port == 0):
            raise SinkSetupError(f"--webhook {url!r}: spaces, line breaks or port 0 in the URL; {hint}")
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if port is not None:
            netloc += f":{port}"
        plain = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(plain, username, password)

    @property
    def label(self) -> str:
        """How warnings name it: the URL without credentials or query (which may hold a token)."""
        return "webhook " + self.url.split("?", 1)[0]

    @property
    def key(self) -> str:
        """The name of its spool folder: the same URL finds its spooled events after a restart."""
        return "webhook-" + hashlib.sha256(self.url.encode()).hexdigest()[:12]


class WebhookTransport:
    """POSTs one event at a time; send() returns only when the receiver answered 2xx."""

    connected = True  # no connection to keep: each event is one request

    def __init__(self, target: WebhookTarget):
        self.target = target
        self.label = target.label
        self.key = target.key
        import urllib.request  # here, not at the top: http.client and ssl cost every camera start ~15 ms

        class NoRedirects(urllib.request.HTTPRedirectHandler):
            """A redirect would turn the POST into a GET without the event, and its 2xx would count as delivered."""

            def redirect_request(self, req, fp, code, msg, headers, newurl):
                return None

        self._opener = urllib.request.build_opener(NoRedirects)
        self._headers = {"Content-Type": "application/json", "User-Agent": "catdog-edge"}
        if target.username is not None:
            token = f"{target.username}:{target.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode()

    def connect(self, timeout: float) -> None:
        """Nothing to do: each event is one request."""

    def send(self, payload: bytes, seq: int, timeout: float) -> None:
        """POST payload (JSON) with its sequence number in the X-Catdog-Seq header.

        Raises:
            SinkError: no 2xx answer within timeout seconds (refused, unreachable, an error status).
        """
        import http.client
        import urllib.error
        import urllib.request

        headers = {**self._headers, "X-Catdog-Seq": str(seq)}
        request = urllib.request.Request(self.target.url, data=payload, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read(64 * 1024)
                status, reason = response.status, response.reason
        except urllib.error.HTTPError as exc:
            exc.close()
            raise SinkError(f"answered {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason.strerror if isinstance(exc.reason, OSError) and exc.reason.strerror else exc.reason
            raise SinkError(f"cannot reach it ({reason})") from None
        except (OSError, http.client.HTTPException) as exc:
            raise SinkError(f"no answer ({exc.__class__.__name__}: {exc})") from None
        if not 200 <= status < 300:
            raise SinkError(f"answered {status} {reason}")

    def idle(self) -> None:
        """Nothing to keep alive."""

    def close(self, timeout: float) -> None:
        """Nothing to close."""
