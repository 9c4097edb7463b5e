"""Fuzz target 7 (the camera's HTTP endpoints): raw request bytes through the browser preview's real request
handler (catdog.edge.camera.preview_handler.answer: parsing, the token, routing, every response), no socket.

Property: every input gets nothing (dropped) or one response whose status is 4xx, 503 or, only for a request
carrying the token, 2xx/3xx; no handler error; and no response ever holds the bytes of a file beside the snapshot
folder. The first input byte picks what the rest is: 0 a whole request, 1 a request target sent with the token
(so the fuzzer reaches the routes behind it), 2 header lines after an authorized GET /api/events.

    .venv/bin/python fuzz/fuzz_http.py fuzz/corpus/fuzz_http -dict=fuzz/fuzz_http.dict -max_total_time=600 \
        -rss_limit_mb=2048 -timeout=10
    .venv/bin/python fuzz/fuzz_http.py --write-seeds fuzz/corpus/fuzz_http   # the committed seed-* files
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["catdog", "http", "email", "urllib"]):
    import numpy as np

    from catdog.edge.camera.frames import Frame
    from catdog.edge.camera.loop import LabelEvent, LoopState
    from catdog.edge.camera.preview import Preview
    from catdog.edge.camera.preview_config import PreviewConfig
    from catdog.edge.camera.preview_handler import answer

TOKEN = "fuzz-token-0123456789"
SECRET = b"SECRET-beside-the-snapshot-folder"
HOME = Path(tempfile.mkdtemp(prefix="fuzz_http."))
(HOME / "secret.jpg").write_bytes(SECRET)
(HOME / "snaps").mkdir()
(HOME / "snaps" / "event.jpg").write_bytes(b"\xff\xd8 a snapshot \xff\xd9")
PREVIEW = Preview(PreviewConfig(host="0.0.0.0", port=0, token=TOKEN), {"labels": ["cat", "dog"]}, save_dir=HOME / "snaps")
PREVIEW.live.observe(Frame(np.zeros((8, 8, 3), np.uint8), 0, 0.0, time.monotonic()), LoopState("cat", 0.9, 1, 1, 0, 1.0))
PREVIEW.live.on_event(LabelEvent("label", 0, 0.0, "cat", 0.9, HOME / "snaps" / "event.jpg"))
PREVIEW.live.on_event(LabelEvent("label", 1, 0.1, "dog", 0.9, HOME / "secret.jpg"))  # outside: must never be served
PREVIEW.live.close()  # streams end right after their headers, so each input is answered at once
AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()


def request(data: bytes) -> bytes:
    """The request to answer, from the fuzzer's input (see the module docstring)."""
    mode, rest = (data[0] % 3, data[1:]) if data else (0, b"")
    if mode == 1:
        return b"GET " + rest.replace(b"\r", b"").replace(b"\n", b"") + b" HTTP/1.1\r\n" + AUTH + b"\r\n"
    if mode == 2:
        return b"GET /api/events?after=0 HTTP/1.1\r\n" + AUTH + rest + b"\r\n\r\n"
    return rest


def TestOneInput(data: bytes) -> None:
    sent = request(data)
    reply = answer(PREVIEW.server, sent)
    assert not PREVIEW.server.failures, list(PREVIEW.server.failures)
    assert SECRET not in reply, reply[:200]
    if not reply:
        return
    assert reply.startswith(b"HTTP/1.0 "), reply[:200]
    status = int(reply[9:12])
    assert 200 <= status < 500 or status == 503, reply[:200]
    assert status >= 400 or TOKEN.encode() in sent, reply[:200]


SEEDS = {
    "page": b"\x00GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "token-cookie": b"\x00GET /api/state HTTP/1.1\r\nCookie: a=b; catdog_token=" + TOKEN.encode() + b"\r\n\r\n",
    "events-after": b"\x01/api/events?after=1&token=x",
    "event-snapshot": b"\x01/events/1.jpg",
    "stream": b"\x01/stream.mjpg",
    "traversal": b"\x01/events/../../secret.jpg",
    "headers": b"\x02Last-Event-ID: 3\r\nX: y\r\nHost: [::1]:80",
}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        folder = Path(sys.argv[2])
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in SEEDS.items():
            (folder / f"seed-{name}").write_bytes(data)
        return
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
