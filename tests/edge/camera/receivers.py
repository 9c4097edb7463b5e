"""Real receivers for the sink tests: a loopback HTTP receiver that can fail, hang, go away and come back,
a Mosquitto broker started on a free loopback port, and an MQTT subscriber with a persistent session.

Every wait is for a condition, bounded by PATIENCE_S; nothing sleeps and hopes.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from catdog.edge.camera import SinkConfig
from tests.edge.camera.helpers import PATIENCE_S, wait_for

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


def label(n: int) -> dict:
    """A label event as the camera loop emits it (LabelEvent.to_dict()), numbered by its frame."""
    return {"event": "label", "frame": n, "t": n / 10, "label": "cat" if n % 2 else "dog", "confidence": 0.9}


def encoded(record: dict) -> bytes:
    """An event as a sink sends it: the JSON line the camera prints."""
    return json.dumps(record, ensure_ascii=True).encode()


def fast(tmp_path: Path, **fields) -> SinkConfig:
    """A SinkConfig spooling under tmp_path, with retry waits short enough for a test (the defaults are 0.5 s
    doubling to 30 s)."""
    return SinkConfig(spool=tmp_path / "spool", retry_s=0.05, retry_max_s=0.5, **fields)


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_paho():
    """paho.mqtt.client. Skipped where the camera extra is not installed; a failure under CI=true when OpenCV
    (the rest of the camera extra) is installed without it."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        try:
            import cv2  # noqa: F401
        except ImportError:
            pytest.skip("paho-mqtt (the camera extra) is not installed in this environment")
        reason = "the camera extra is installed (OpenCV) but paho-mqtt, part of it, is missing"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return mqtt


def require_mosquitto() -> str:
    """The mosquitto binary. Skipped when absent, a failure under CI=true (.ci/run installs it)."""
    if MOSQUITTO is None:
        reason = "mosquitto (Debian's MQTT broker) is not installed: sudo apt install mosquitto"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must install it (.ci/run)")
        pytest.skip(reason)
    return MOSQUITTO


class Receiver:
    """A loopback webhook receiver. Records every POST as (seq header, body, status answered); answers
    `status`; with `hold` set, each request waits until hold is released. stop() closes the port (the
    sender gets "connection refused"), start() opens the same port again."""

    def __init__(self, status: int = 200):
        self.status = status
        self.port = free_port()
        self.attempts: list[tuple[int, bytes, int]] = []
        self.headers: list[dict[str, str]] = []
        self.hold: threading.Event | None = None
        self.changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def accepted(self) -> list[bytes]:
        """Bodies answered 2xx, in arrival order."""
        with self.changed:
            return [body for _, body, status in self.attempts if 200 <= status < 300]

    def wait(self, condition, timeout: float = PATIENCE_S) -> bool:
        """Wait until condition(self) is true (checked on each request)."""
        with self.changed:
            return self.changed.wait_for(lambda: condition(self), timeout)

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if owner.hold is not None:
                    owner.hold.wait(PATIENCE_S)
                status = owner.status
                with owner.changed:  # recorded before the answer goes out: the sender waits for it to send the next
                    owner.attempts.append((int(self.headers.get("X-Catdog-Seq", -1)), body, status))
                    owner.headers.append(dict(self.headers))
                    owner.changed.notify_all()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(PATIENCE_S)
            self._thread = None


class Mosquitto:
    """Debian's mosquitto on a free loopback port, anonymous, with persistence in folder (so a subscriber's
    persistent session and its queued messages survive a restart). stop() and start() keep the port."""

    def __init__(self, folder: Path):
        self.binary = require_mosquitto()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._proc: subprocess.Popen | None = None
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            f"user {getpass.getuser()}\n"  # as root, mosquitto would otherwise switch to a user that cannot write folder
            f"log_dest file {folder}/mosquitto.log\n"
        )

    def start(self) -> Mosquitto:
        self._proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        if not wait_for(self._accepts, timeout=PATIENCE_S, step=0.02):
            self.stop()
            log = (self.folder / "mosquitto.log").read_text() if (self.folder / "mosquitto.log").exists() else ""
            raise AssertionError(f"mosquitto did not start on port {self.port}: {log[-2000:]}")
        return self

    def _accepts(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise AssertionError(f"mosquitto exited: {self._proc.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence file on the way out), and wait for the exit."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(PATIENCE_S)
        if self._proc is not None:
            self._proc.stderr.close()
        self._proc = None


class Subscriber:
    """An MQTT subscriber at QoS 1 with a persistent session (clean_session=False, fixed client id): messages
    published while it is away (the broker restarting) are queued for it and arrive when it reconnects."""

    def __init__(self, port: int, *topics: str, client_id: str = "catdog-test-subscriber"):
        self.mqtt = require_paho()
        self.port = port
        self.topics = topics
        self.messages: list[tuple[str, bytes, bool]] = []  # (topic, payload, retained)
        self.changed = threading.Condition()
        self._subscribed = threading.Event()
        client = self.mqtt.Client(self.mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *args: self._subscribed.set()
        client.on_message = self._on_message
        self.client = client

    def _on_connect(self, client, _userdata, _flags, reason, _properties) -> None:
        if not reason.is_failure:
            client.subscribe([(topic, 1) for topic in self.topics])

    def _on_message(self, _client, _userdata, message) -> None:
        with self.changed:
            self.messages.append((message.topic, message.payload, bool(message.retain)))
            self.changed.notify_all()

    def start(self) -> Subscriber:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self._subscribed.wait(PATIENCE_S), "no SUBACK from the broker"
        return self

    def payloads(self, topic: str) -> list[bytes]:
        with self.changed:
            return [payload for t, payload, _ in self.messages if t == topic]

    def wait(self, condition, timeout: float = PATIENCE_S) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: condition(self), timeout)

    def sync(self) -> None:
        """Return once the broker has processed everything this subscriber sent before (its PUBACKs included):
        a QoS 1 publish of our own is acknowledged only after them, the connection being in order."""
        self.client.publish("catdog-test/sync", b"", qos=1).wait_for_publish(PATIENCE_S)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
