"""Event sinks: push each camera event (the JSON the camera prints) to a webhook and/or an MQTT broker.

At least once, in order, with a sequence number, and the camera loop never waits: emit() only hands the
event to the sink's writer thread, which writes it durably to the sink's spool (camera.spool); the
sender thread delivers the spool's oldest event, removes it once acknowledged, and retries with
exponential backoff while the receiver is away. An acknowledged event is never sent again in this run,
even when the disk cannot record it. On close the rest is delivered within SinkConfig.flush_s, or kept
for the next run; events that could not be kept (never written to a full or read-only spool by then,
dropped from a full spool) are counted in the report.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from ..errors import CatDogError, SinkSetupError
from .mqtt import MqttTarget, MqttTransport, check_discovery_name
from .spool import Spool, default_spool_root
from .webhook import WebhookTarget, WebhookTransport

#: How often an idle sender serves its connection (MQTT keepalive) when no event arrives.
IDLE_S = 1.0


@dataclass(frozen=True)
class SinkConfig:
    """Where camera events are pushed, and how hard the sinks try."""

    webhook: str | None = None
    """POST each event to this http(s) URL; None for no webhook."""
    mqtt: str | None = None
    """Publish each event to mqtt://[user:pass@]host[:port]/topic at QoS 1; None for no MQTT."""
    mqtt_discovery: str | None = None
    """Announce the Home Assistant sensor catdog_<this> (needs mqtt)."""
    spool: Path | None = None
    """Folder of the spools (one sub-folder per sink); None for $XDG_STATE_HOME/catdog/spool."""
    spool_max: int = 10_000
    """Events each spool keeps at most; beyond it the oldest are dropped (with a warning)."""
    retry_s: float = 0.5
    """First wait before retrying a failed delivery; it doubles on each failure in a row."""
    retry_max_s: float = 30.0
    """Longest wait between retries."""
    send_timeout_s: float = 10.0
    """How long one delivery may take before it counts as failed."""
    flush_s: float = 5.0
    """On close, how long to keep delivering; what is left stays in the spool for the next run."""

    def __post_init__(self) -> None:
        if self.webhook is not None:
            WebhookTarget.parse(self.webhook)
        if self.mqtt is not None:
            MqttTarget.parse(self.mqtt)
        if self.mqtt_discovery is not None:
            if self.mqtt is None:
                raise SinkSetupError("--mqtt-discovery needs --mqtt: give the broker and topic the sensor follows")
            check_discovery_name(self.mqtt_discovery)
        if self.spool_max < 1:
            raise SinkSetupError(f"spool_max must be at least 1, got {self.spool_max}")
        if not 0 < self.retry_s <= self.retry_max_s:
            raise SinkSetupError(f"retry waits must be 0 < first <= longest, got {self.retry_s} and {self.retry_max_s}")
        if self.send_timeout_s <= 0 or self.flush_s < 0:
            raise SinkSetupError("the send timeout must be above 0 seconds and the flush time at least 0")

    @property
    def enabled(self) -> bool:
        """True when there is any sink to push to."""
        return self.webhook is not None or self.mqtt is not None


class Transport(Protocol):
    """What a sink delivers through (webhook.WebhookTransport, mqtt.MqttTransport)."""

    label: str
    key: str
    connected: bool

    def connect(self, timeout: float) -> None: ...
    def send(self, payload: bytes, seq: int, timeout: float) -> None: ...
    def idle(self) -> None: ...
    def close(self, timeout: float) -> None: ...


@dataclass(frozen=True)
class SinkReport:
    """What one sink did in this run."""

    label: str
    """The sink, as warnings name it (no credentials)."""
    spool: Path
    """Its spool folder."""
    delivered: int
    """Events acknowledged by the receiver (spooled ones from earlier runs included)."""
    kept: int
    """Events still in the spool at the end, sent on the next run."""
    lost: int
    """Events that will never be sent: dropped from a full spool, or never written to it (the spool could not be
    written until the flush time was over, or its writer failed)."""


class Sink:
    """One receiver: a writer thread (memory -> spool) and a sender thread (spool -> receiver)."""

    def __init__(self, transport: Transport, spool: Spool, config: SinkConfig, on_warning: Callable[[str], None]):
        self.transport = transport
        self.spool = spool
        self._config = config
        self._warn = on_warning
        self._inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._written = threading.Event()  # the writer has put every event emitted before close()
        self._give_up = threading.Event()  # the flush time is over: stop trying
        self._deadline: float | None = None
        self.delivered = 0
        self._emitted = 0  # counted by emit()'s caller's thread
        self._spooled = 0  # counted by the writer thread
        self._dropped = 0  # counted by the writer thread
        self._writer = threading.Thread(target=self._write_loop, name=f"catdog-spool {transport.key}", daemon=True)
        self._sender = threading.Thread(target=self._send_loop, name=f"catdog-send {transport.key}", daemon=True)
        self._writer.start()
        self._sender.start()

    def emit(self, payload: bytes) -> None:
        """Queue an event; returns at once."""
        self._emitted += 1
        self._inbox.put(payload)

    def _write_loop(self) -> None:
        try:
            while (payload := self._inbox.get()) is not None:
                if not self._put(payload):
                    return  # the flush time is over: what is still in memory is lost (counted by finish_close)
            self._written.set()
        except Exception as exc:  # noqa: BLE001 - a bug must not pass silently; the events it strands are counted
            self._warn(f"{self.transport.label}: the spool writer failed ({exc.__class__.__name__}: {exc})")
        finally:
            self.spool.interrupt()

    def _put(self, payload: bytes) -> bool:
        """Spool one event, retrying while the disk refuses; False when the flush time ran out first."""
        delay = self._config.retry_s
        while True:
            try:
                result = self.spool.put(payload)
                break
            except OSError as exc:
                self._warn(f"{self.spool.folder}: cannot write an event ({exc.strerror or exc}); it waits in "
                           f"memory, retrying in {delay:g} s; check free space")
                if self._give_up.wait(delay):
                    return False
                delay = min(delay * 2, self._config.retry_max_s)
        self._spooled += 1
        if result.dropped:
            self._dropped += result.dropped
            self._warn(f"{self.transport.label}: spool {self.spool.folder} is full ({self.spool.max_events} events): "
                       f"dropped the {result.dropped} oldest; bring the receiver back")
        return True

    def _timeout(self) -> float:
        timeout = self._config.send_timeout_s
        if self._deadline is not None:
            timeout = min(timeout, self._deadline - time.monotonic())
        return max(timeout, 0.01)

    def _send_loop(self) -> None:
        delay = self._config.retry_s
        while not self._give_up.is_set():
            try:
                written = self._written.is_set()  # before head(): every put() came before it, so None means done
                record = self.spool.head()
            except OSError as exc:
                where = exc.filename or self.spool.folder
                delay = self._retry_later(f"{where}: cannot read this spooled event ({exc.strerror}); it is kept", delay)
                continue
            try:
                if record is None:
                    if written:
                        break  # closing, and everything emitted was delivered
                    if not self.transport.connected:
                        self.transport.connect(self._timeout())  # MQTT: announce the sensor before any event
                    elif not self.spool.wait(IDLE_S):
                        self.transport.idle()
                    continue
                self.transport.send(record.payload, record.seq, self._timeout())
            except Exception as exc:  # noqa: BLE001 - this thread must outlive any failure, or delivery would stop
                if isinstance(exc, CatDogError):
                    reason = str(exc)
                elif isinstance(exc, OSError) and exc.strerror:
                    reason = exc.strerror
                else:
                    reason = f"{exc.__class__.__name__}: {exc}"
                waiting = f"{len(self.spool)} event(s) wait in {self.spool.folder}"
                delay = self._retry_later(f"{self.transport.label}: {reason}; {waiting}", delay)
                continue
            self.delivered += 1  # acknowledged: it counts, and it is never sent again in this run
            delay = self._config.retry_s
            try:
                self.spool.remove(record.seq)
            except OSError as exc:
                self._warn(f"{self.spool.folder}: event {record.seq} was delivered but its file cannot be removed "
                           f"({exc.strerror}); it is not sent again now, but may be after a restart; check free space")

    def _retry_later(self, problem: str, delay: float) -> float:
        """Say what failed and when it is retried, wait that long (or until the flush time is over); the next wait."""
        self._warn(f"{problem}, retrying in {delay:g} s")
        self._give_up.wait(delay)
        return min(delay * 2, self._config.retry_max_s)

    def begin_close(self, deadline: float) -> None:
        """No more events: deliver what is spooled until deadline (time.monotonic())."""
        self._deadline = deadline
        self._inbox.put(None)

    def finish_close(self) -> SinkReport:
        """Wait for the delivery to end (at the deadline at the latest), disconnect, release the spool."""
        assert self._deadline is not None, "begin_close() first"
        self._writer.join(max(0.0, self._deadline - time.monotonic()))
        self._sender.join(max(0.0, self._deadline - time.monotonic()))
        self._give_up.set()
        self.spool.interrupt()
        # The writer goes on while the disk takes events (they are kept) and stops at the first refusal.
        self._writer.join(self._config.send_timeout_s)
        self._sender.join(self._config.send_timeout_s)  # a delivery under way ends within its own timeout
        if not self._sender.is_alive():  # the transport belongs to the sender thread while it runs
            try:
                self.transport.close(timeout=1.0)
            except (CatDogError, OSError):
                pass  # a receiver that is gone needs no goodbye
        lost = self._emitted - self._spooled + self._dropped
        if lost:
            self._warn(f"{self.transport.label}: {lost} event(s) lost: not written to {self.spool.folder} in time "
                       "(full or read-only?), or dropped from it when it was full")
        report = SinkReport(self.transport.label, self.spool.folder, self.delivered, len(self.spool), lost)
        self.spool.close()
        return report


class Sinks:
    """Every configured sink; emit() and close() go to all of them."""

    def __init__(self, sinks: list[Sink], flush_s: float):
        self.sinks = sinks
        self._flush_s = flush_s

    def emit(self, record: dict[str, Any]) -> None:
        """Push one event (a LabelEvent's or WatchSummary's to_dict()) as the same JSON the camera prints."""
        payload = json.dumps(record, ensure_ascii=True).encode()
        for sink in self.sinks:
            sink.emit(payload)

    def close(self) -> list[SinkReport]:
        """Deliver what is left within flush_s (all sinks at once), then stop; the rest stays spooled."""
        deadline = time.monotonic() + self._flush_s
        for sink in self.sinks:
            sink.begin_close(deadline)
        return [sink.finish_close() for sink in self.sinks]


def open_sinks(config: SinkConfig, on_warning: Callable[[str], None]) -> Sinks:
    """Start the sinks of config. on_warning gets each one-line failure (called from the sinks' threads).

    Raises:
        SinkSetupError: a spool folder cannot be used, or --mqtt without paho-mqtt installed.
    """
    transports: list[Transport] = []
    if config.webhook is not None:
        transports.append(WebhookTransport(WebhookTarget.parse(config.webhook)))
    if config.mqtt is not None:
        transports.append(MqttTransport(MqttTarget.parse(config.mqtt), config.mqtt_discovery))
    root = config.spool or default_spool_root()
    sinks: list[Sink] = []
    try:
        for transport in transports:
            spool = Spool(root / transport.key, config.spool_max, on_warning)
            sinks.append(Sink(transport, spool, config, on_warning))
    except SinkSetupError:
        for sink in sinks:
            sink.begin_close(time.monotonic())
            sink.finish_close()
        raise
    return Sinks(sinks, config.flush_s)
