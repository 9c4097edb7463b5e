"""The MQTT sink's transport: publish each event's JSON, with its sequence number as "seq", at QoS 1 with
paho-mqtt, one at a time, and optionally announce a Home Assistant sensor (MQTT discovery).

At least once, in order, with a sequence number to deduplicate: the spool is the only queue. One event is
published and its PUBACK awaited before the next; when the connection breaks or the PUBACK does not come,
that client is thrown away (with whatever paho had in flight, so paho never resends on its own) and a
fresh connection sends the spool's oldest event again. QoS 1 itself can duplicate: the broker took the
event but the connection broke before its PUBACK reached us, or the broker resends to a subscriber
after a restart. The repeat carries the same "seq", so a subscriber drops any seq it has already seen.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import SinkError, SinkSetupError

#: Home Assistant's default discovery prefix.
DISCOVERY_PREFIX = "homeassistant"
#: Seconds between PINGREQs the broker expects; the sender calls idle() far more often.
KEEPALIVE_S = 60
#: Longest single wait on the socket, so timeouts are checked often.
_POLL_S = 0.2

_NAME = re.compile(r"[a-z0-9_]{1,64}")


@dataclass(frozen=True)
class MqttTarget:
    """Where --mqtt publishes: mqtt://[user:pass@]host[:port]/topic."""

    host: str
    """Broker host name or address."""
    port: int
    """Broker port (1883 unless given)."""
    topic: str
    """Topic every event is published to."""
    username: str | None = None
    """From user:pass@, or None."""
    password: str | None = None
    """From user:pass@, or None."""

    @classmethod
    def parse(cls, url: str) -> MqttTarget:
        """Check --mqtt URL. Raises SinkSetupError (a usage error) saying what is wrong."""
        hint = "use --mqtt mqtt://[user:pass@]host[:port]/topic"
        try:
            parts = urlsplit(url)
            port = parts.port or 1883
        except ValueError as exc:
            raise SinkSetupError(f"--mqtt {url!r}: {exc}; {hint}") from None
        if parts.scheme != "mqtt" or not parts.hostname:
            raise SinkSetupError(f"--mqtt {url!r}: not an mqtt:// URL with a host; {hint}")
        topic = unquote(parts.path[1:])
        if "#" in url or "+" in topic or "\x00" in topic:  # urlsplit would take a raw "#" for a fragment
            raise SinkSetupError(f"--mqtt {url!r}: a topic to publish to has no + or # wildcards; {hint}")
        if not topic or "?" in url or len(topic.encode()) > 65535:
            raise SinkSetupError(f"--mqtt {url!r}: no topic after the host (or a ?query); {hint}")
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(parts.hostname, port, topic, username, password)

    @property
    def label(self) -> str:
        """How warnings name it (never with the password)."""
        return f"mqtt://{self.host}:{self.port}/{self.topic}"

    @property
    def key(self) -> str:
        """The name of its spool folder: the same broker and topic find their spooled events after a restart."""
        return "mqtt-" + hashlib.sha256(f"{self.host}:{self.port}/{self.topic}".encode()).hexdigest()[:12]


def check_discovery_name(name: str) -> str:
    """--mqtt-discovery NAME: lower-case letters, digits and _ (it becomes sensor.catdog_NAME). Raises SinkSetupError."""
    if not _NAME.fullmatch(name):
        raise SinkSetupError(
            f"--mqtt-discovery {name!r}: use 1-64 lower-case letters, digits or _ (the sensor becomes sensor.catdog_NAME)"
        )
    return name


def discovery_config(name: str, topic: str) -> tuple[str, dict[str, Any]]:
    """Home Assistant's discovery topic and config for the sensor catdog_<name> that follows topic.

    The state is the label of each label or heartbeat event ("none" before the first label, "stopped"
    after the summary); the whole event becomes the sensor's attributes. The entity has no name of its
    own, so it takes its device's, "catdog <name>", and its id is sensor.catdog_<name>
    (default_entity_id says the same to Home Assistant versions that read it).
    """
    from importlib import metadata

    object_id = f"catdog_{name}"
    try:
        version = metadata.version("catdog-toolkit")
    except metadata.PackageNotFoundError:
        version = "unknown"
    config = {
        "name": None,
        "unique_id": object_id,
        "default_entity_id": f"sensor.{object_id}",
        "state_topic": topic,
        "value_template": (
            "{% if value_json.event == 'summary' %}stopped{% else %}{{ value_json.label or 'none' }}{% endif %}"
        ),
        "json_attributes_topic": topic,
        "availability_topic": status_topic(topic),
        "icon": "mdi:paw",
        "device": {
            "identifiers": [object_id],
            "name": f"catdog {name}",
            "manufacturer": "catdog",
            "model": "catdog-edge camera",
            "sw_version": version,
        },
        "origin": {"name": "catdog-edge", "sw_version": version},
    }
    return f"{DISCOVERY_PREFIX}/sensor/{object_id}/config", config


def status_topic(topic: str) -> str:
    """Where "online" / "offline" (retained; "offline" also as the last will) tell whether the camera runs."""
    return f"{topic}/status"


def numbered(payload: bytes, seq: int) -> bytes:
    """The event's JSON with the spool's sequence number added as "seq" (the webhook sends it as X-Catdog-Seq)."""
    return json.dumps({**json.loads(payload), "seq": seq}, ensure_ascii=True).encode()


def import_paho():
    """paho.mqtt.client, or SinkSetupError with the install hint."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise SinkSetupError("--mqtt needs paho-mqtt: pip install 'catdog-toolkit[camera]' (or pip install paho-mqtt)") from None
    return mqtt


class MqttTransport:
    """Publishes at QoS 1 and returns only on the broker's PUBACK; runs paho's network loop on the caller's thread."""

    def __init__(self, target: MqttTarget, discovery: str | None = None):
        self.target = target
        self.label = target.label
        self.key = target.key
        self.discovery = discovery
        self._mqtt = import_paho()
        self._client = None

    @property
    def connected(self) -> bool:
        """True while a connection is up (CONNACK received, nothing has failed since)."""
        return self._client is not None

    def connect(self, timeout: float) -> None:
        """Connect (a fresh client, clean session), then announce the sensor when discovery is on.

        Raises:
            SinkError: the broker cannot be reached, refuses, or does not answer within timeout seconds.
        """
        mqtt = self._mqtt
        deadline = time.monotonic() + timeout
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="", clean_session=True, reconnect_on_failure=False
        )
        client.connect_timeout = max(0.1, min(timeout, 10.0))
        if self.target.username is not None:
            client.username_pw_set(self.target.username, self.target.password)
        if self.discovery is not None:
            client.will_set(status_topic(self.target.topic), b"offline", qos=1, retain=True)
        answer: dict[str, Any] = {}
        client.on_connect = lambda _client, _userdata, _flags, reason, _properties: answer.update(reason=reason)
        try:
            client.connect(self.target.host, self.target.port, keepalive=KEEPALIVE_S)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
            raise SinkError(f"cannot connect ({reason})") from None
        while "reason" not in answer:
            self._loop(client, deadline, "no CONNACK")
        if answer["reason"].is_failure:
            self._drop(client)
            raise SinkError(f"the broker refused the connection ({answer['reason']})")
        if self.discovery is not None:
            config_topic, config = discovery_config(self.discovery, self.target.topic)
            self._publish(client, config_topic, json.dumps(config).encode(), True, deadline)
            self._publish(client, status_topic(self.target.topic), b"online", True, deadline)
        self._client = client

    def send(self, payload: bytes, seq: int, timeout: float) -> None:
        """Publish payload (JSON) with "seq" added at QoS 1 and wait for its PUBACK (connecting first if needed).

        Raises:
            SinkError: not acknowledged within timeout seconds; the connection is dropped.
        """
        deadline = time.monotonic() + timeout
        if self._client is None:
            self.connect(timeout)
        self._publish(self._client, self.target.topic, numbered(payload, seq), False, deadline)

    def idle(self) -> None:
        """Serve the connection between events (keepalive pings, a broker going away). Raises SinkError when it broke."""
        if self._client is not None:
            rc = self._client.loop(timeout=0)
            if rc != self._mqtt.MQTT_ERR_SUCCESS:
                self._fail(self._client, self._lost(rc))

    def close(self, timeout: float) -> None:
        """Say "offline" (discovery) and disconnect cleanly; a broken connection is just dropped."""
        client, self._client = self._client, None
        if client is None:
            return
        deadline = time.monotonic() + timeout
        try:
            if self.discovery is not None:
                self._publish(client, status_topic(self.target.topic), b"offline", True, deadline)
            client.disconnect()
            while client.socket() is not None and time.monotonic() < deadline:
                client.loop(timeout=_POLL_S)  # writes the DISCONNECT, then paho closes the socket
        except SinkError:
            pass
        finally:
            self._drop(client)

    def _publish(self, client, topic: str, payload: bytes, retain: bool, deadline: float) -> None:
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            self._fail(client, f"publish failed ({self._mqtt.error_string(info.rc)})")
        while not self._published(client, info):
            self._loop(client, deadline, "no PUBACK")

    def _published(self, client, info) -> bool:
        try:
            return info.is_published()
        except (RuntimeError, ValueError) as exc:  # paho's way of saying this message will never be acknowledged
            self._fail(client, f"publish failed ({exc})")

    def _loop(self, client, deadline: float, missing: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self._fail(client, f"{missing} from the broker in time")
        rc = client.loop(timeout=min(_POLL_S, remaining))
        if rc != self._mqtt.MQTT_ERR_SUCCESS:
            self._fail(client, self._lost(rc))

    def _lost(self, rc) -> str:
        if rc == self._mqtt.MQTT_ERR_CONN_LOST:
            return "the connection was lost"
        return f"the connection failed ({self._mqtt.error_string(rc).rstrip('.')})"

    def _fail(self, client, reason: str) -> None:
        self._drop(client)
        raise SinkError(reason)

    def _drop(self, client) -> None:
        """Forget a client and close its socket: whatever paho still holds in flight goes with it."""
        if self._client is client:
            self._client = None
        sock = client.socket()
        if sock is not None:
            sock.close()
