"""Settings of the browser preview (catdog-edge camera --http): where it listens, its token, and its limits."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..errors import CameraSetupError

#: A token travels in a URL, a cookie and a header: only characters that need no escaping in any of them.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,256}")
#: The kinds of character a token mixes (at least two of them), so that a word or a number alone is refused.
TOKEN_KINDS = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"), re.compile(r"[._~-]"))
#: Different characters a token needs at least, so that "aaaaaaaaaaaaaaa1" or a word typed twice is refused.
TOKEN_DISTINCT = 8
TOKEN_HINT = "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(16))'"
TOKEN_ENV = "CATDOG_HTTP_TOKEN"


def token_problem(token: str) -> str | None:
    """Why token is too weak to guard a camera, or None when it will do: it needs 16-256 letters, digits, '-', '.',
    '_' or '~', at least two kinds of them (lower case, upper case, digits, those four) and TOKEN_DISTINCT
    different characters. secrets.token_urlsafe(16) and openssl rand -hex 16 make such tokens."""
    if not TOKEN_PATTERN.fullmatch(token):
        return "must be 16-256 letters, digits, '-', '.', '_' or '~'"
    if sum(1 for kind in TOKEN_KINDS if kind.search(token)) < 2:
        return "must mix at least two kinds of character (lower case, upper case, digits, '-._~')"
    if len(set(token)) < TOKEN_DISTINCT:
        return f"must have at least {TOKEN_DISTINCT} different characters"
    return None


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_address(spec: str) -> tuple[str, int]:
    """--http [HOST:]PORT -> (host, port). No host means 127.0.0.1; localhost means 127.0.0.1; IPv6 goes in
    brackets ([::]:8080). Port 0 picks a free port.

    Raises:
        CameraSetupError: not PORT, HOST:PORT or [IPv6]:PORT, the port is outside 0..65535, or the host is
            not an IP address.
    """
    text = spec.strip()
    host, sep, port = text.rpartition(":") if not text.isdigit() else ("", "", text)
    if text.startswith("[") and not host.endswith("]"):
        host, sep, port = text, "", ""  # "[::1]" without a port
    if not port.isascii() or not port.isdigit() or len(port) > 5 or int(port) > 65535 or (sep and not host):
        raise CameraSetupError(f"--http {spec!r}: give PORT or HOST:PORT, e.g. 8080 or 0.0.0.0:8080 (port 0..65535)")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host in ("", "localhost"):
        host = "127.0.0.1"
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise CameraSetupError(
            f"--http {spec!r}: HOST must be an IP address of this machine (e.g. 0.0.0.0 for every network), "
            "or localhost"
        ) from None
    return host, int(port)


@dataclass(frozen=True)
class PreviewConfig:
    """Where the preview listens and what it allows."""

    host: str = "127.0.0.1"
    """IP address to listen on: 127.0.0.1 (this machine only) unless one is given."""
    port: int = 8080
    """TCP port; 0 picks a free one (the preview's url says which)."""
    token: str | None = None
    """Required on every request when set (?token=, a cookie the page sets, or Authorization: Bearer); a weak one
    (token_problem) is refused. Listening beyond loopback without one is refused."""
    preview_fps: float = 10.0
    """At most this many preview JPEGs are encoded per second, and only while someone watches the stream."""
    events_kept: int = 20
    """The page and /api/events show the last N label events."""
    client_timeout_s: float = 10.0
    """A client must send its whole request head within this many seconds of connecting (one deadline, however
    it trickles), and one that cannot take a write for this long is dropped."""
    max_clients: int = 32
    """Requests served at once, each on a thread of its own (each open stream holds one). Only a request whose
    head has arrived whole and carries the token (any, without a token) takes one; more get 503 at once."""
    max_pending: int = 64
    """Connections still sending their request head, held without a thread; when one more arrives, the one that
    has waited longest is dropped (503), so clients that dawdle cannot keep out one that sends its head at once."""
    jpeg_quality: int = 80
    """JPEG quality of the preview stream and /snapshot.jpg, 1..95."""

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise CameraSetupError(f"preview host {self.host!r} is not an IP address; give e.g. 127.0.0.1") from None
        if not 0 <= self.port <= 65535:
            raise CameraSetupError(f"--http port must be 0..65535, got {self.port}")
        problem = None if self.token is None else token_problem(self.token)
        if problem is not None:
            raise CameraSetupError(f"--http-token {problem}; {TOKEN_HINT}")
        if self.token is None and not self.loopback:
            raise CameraSetupError(
                f"--http {self.host}: other machines could watch this camera; give --http-token TOKEN "
                f"(or set {TOKEN_ENV}), or listen on 127.0.0.1"
            )
        if not 0 < self.preview_fps <= 60:
            raise CameraSetupError(f"--preview-fps must be above 0 and at most 60, got {self.preview_fps}")
        if not 1 <= self.events_kept <= 1000:
            raise CameraSetupError(f"events kept must be 1..1000, got {self.events_kept}")
        if self.client_timeout_s <= 0:
            raise CameraSetupError(f"client timeout must be above 0 seconds, got {self.client_timeout_s}")
        if self.max_clients < 1:
            raise CameraSetupError(f"max clients must be at least 1, got {self.max_clients}")
        if self.max_pending < 1:
            raise CameraSetupError(f"max pending connections must be at least 1, got {self.max_pending}")
        if not 1 <= self.jpeg_quality <= 95:
            raise CameraSetupError(f"preview JPEG quality must be 1..95, got {self.jpeg_quality}")

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect."""
        return is_loopback(self.host)

    @property
    def every_interface(self) -> bool:
        """True for 0.0.0.0 and ::, which listen on every network interface of this machine."""
        return ipaddress.ip_address(self.host).is_unspecified
