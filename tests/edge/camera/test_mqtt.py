"""--mqtt against a real broker (Debian's mosquitto on a free loopback port): events in order, at least once,
each with its sequence number, across a broker stopped while events are in flight (a subscriber that drops
a repeated seq sees every event once, in order), the Home Assistant discovery config, and the camera's
JSON lines end to end. The URL checks need neither paho nor a broker."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from catdog.edge.camera import open_sinks
from catdog.edge.camera.mqtt import MqttTarget, check_discovery_name, discovery_config
from catdog.edge.cli import app
from catdog.edge.errors import SinkSetupError
from tests.edge.camera.helpers import RUN, cat_dog_cat, wait_for, write_folder
from tests.edge.camera.receivers import Mosquitto, Subscriber, encoded, fast, label, require_paho

TOPIC = "catdog/door"


@pytest.fixture
def broker(tmp_path):
    require_paho()
    mosquitto = Mosquitto(tmp_path / "broker").start()
    yield mosquitto
    mosquitto.stop()


def test_mqtt_url_parsing():
    target = MqttTarget.parse("mqtt://ha:s%40cret@broker.local:1884/home/catdog/door")
    assert (target.host, target.port, target.topic) == ("broker.local", 1884, "home/catdog/door")
    assert (target.username, target.password) == ("ha", "s@cret")
    assert "s@cret" not in target.label and "cret" not in target.key
    assert MqttTarget.parse("mqtt://10.0.0.2/t").port == 1883
    for bad in ("http://broker/t", "mqtt://broker", "mqtt://broker/", "mqtt:///t", "mqtt://broker:99999/t",
                "mqtt://broker/a/+/b", "mqtt://broker/a/#", "mqtt://broker/t?x=1"):
        with pytest.raises(SinkSetupError, match="--mqtt"):
            MqttTarget.parse(bad)


def test_discovery_name_and_config():
    assert check_discovery_name("front_door") == "front_door"
    for bad in ("Front", "door-1", "", "a" * 65, "door/x"):
        with pytest.raises(SinkSetupError, match="sensor.catdog_NAME"):
            check_discovery_name(bad)
    topic, config = discovery_config("door", TOPIC)
    assert topic == "homeassistant/sensor/catdog_door/config"
    assert config["unique_id"] == "catdog_door" and config["default_entity_id"] == "sensor.catdog_door"
    assert config["name"] is None and config["device"]["name"] == "catdog door"  # entity id from the device name
    assert config["state_topic"] == config["json_attributes_topic"] == TOPIC
    assert config["availability_topic"] == f"{TOPIC}/status"


def test_bad_mqtt_options_exit_2(tmp_path):
    runner = CliRunner()
    for args, hint in ((["--mqtt", "mqtt://broker"], "no topic"), (["--mqtt", "tcp://broker/t"], "not an mqtt:// URL"),
                       (["--mqtt-discovery", "door"], "needs --mqtt"),
                       (["--mqtt", "mqtt://b/t", "--mqtt-discovery", "Door"], "lower-case")):
        result = runner.invoke(app, ["camera", "-s", str(tmp_path), *args])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and hint in result.stderr and result.stderr.count("\n") == 1


def numbered(record: dict, seq: int) -> bytes:
    """An event as the MQTT sink publishes it: the camera's JSON line with the spool's sequence number added."""
    return encoded({**record, "seq": seq})


def test_at_least_once_in_order_and_seq_deduplicates_across_a_broker_stopped_mid_stream(broker, tmp_path):
    count = 200
    subscriber = Subscriber(broker.port, TOPIC).start()
    warnings: list[str] = []
    sinks = open_sinks(fast(tmp_path, mqtt=f"mqtt://127.0.0.1:{broker.port}/{TOPIC}"), warnings.append)
    (sink,) = sinks.sinks
    try:
        for n in range(count):
            sinks.emit(label(n))
        # Stop the broker as soon as the subscriber has 20 events: the sender is publishing the next ones, one
        # may be in flight (taken by the broker, its PUBACK not back) and the subscriber may not have
        # acknowledged its last one: either can come twice after the restart.
        assert subscriber.wait(lambda s: len(s.payloads(TOPIC)) >= 20)
        broker.stop()
        assert wait_for(lambda: any("wait in" in w for w in warnings)), warnings
        assert len(sink.spool) > 0, "the spool was empty before the broker stopped: nothing was in flight"

        broker.start()  # same port, same persistence file
        everything = set(range(1, count + 1))
        assert subscriber.wait(lambda s: {json.loads(p)["seq"] for p in s.payloads(TOPIC)} >= everything), warnings
    finally:
        reports = sinks.close()
        subscriber.stop()
    received = [json.loads(p) for p in subscriber.payloads(TOPIC)]
    newest = 0
    for event in received:  # in order: each is the next one, or a repeat of one already seen
        assert event["seq"] <= newest + 1, f"seq {event['seq']} after {newest}: out of order or a gap"
        assert event == {**label(event["seq"] - 1), "seq": event["seq"]}  # a repeat is the same event
        newest = max(newest, event["seq"])
    seen: set[int] = set()
    deduplicated = [e for e in received if not (e["seq"] in seen or seen.add(e["seq"]))]  # what a subscriber keeps
    assert deduplicated == [{**label(n), "seq": n + 1} for n in range(count)]  # every event once, in order
    assert reports[0].kept == 0 and reports[0].delivered == count and reports[0].lost == 0


def test_home_assistant_discovery_and_availability(broker, tmp_path):
    config_topic, _ = discovery_config("door", TOPIC)
    sinks = open_sinks(fast(tmp_path, mqtt=f"mqtt://127.0.0.1:{broker.port}/{TOPIC}", mqtt_discovery="door"), print)
    watcher = Subscriber(broker.port, config_topic, f"{TOPIC}/status", TOPIC, client_id="catdog-test-ha").start()
    try:
        # Announced at start, before any event, retained: Home Assistant gets it whenever it subscribes.
        assert watcher.wait(lambda s: s.payloads(config_topic) and s.payloads(f"{TOPIC}/status"))
        config = json.loads(watcher.payloads(config_topic)[0])
        assert config["unique_id"] == "catdog_door" and config["state_topic"] == TOPIC
        assert watcher.payloads(f"{TOPIC}/status") == [b"online"]
        sinks.emit(label(1))
        assert watcher.wait(lambda s: s.payloads(TOPIC) == [numbered(label(1), 1)])
    finally:
        sinks.close()
    assert watcher.wait(lambda s: s.payloads(f"{TOPIC}/status")[-1:] == [b"offline"])  # a clean stop says so
    watcher.stop()
    late = Subscriber(broker.port, config_topic, f"{TOPIC}/status", client_id="catdog-test-late").start()
    assert late.wait(lambda s: len(s.messages) == 2)
    assert {(t, p) for t, p, retained in late.messages if retained} == {
        (config_topic, watcher.payloads(config_topic)[0]), (f"{TOPIC}/status", b"offline")}
    late.stop()


def test_camera_publishes_the_lines_it_prints(broker, camera_model, confident_frames, tmp_path):
    folder = write_folder(tmp_path / "frames", cat_dog_cat(confident_frames))
    subscriber = Subscriber(broker.port, TOPIC).start()
    result = CliRunner().invoke(app, [
        "camera", "-s", str(folder), "-m", str(camera_model), "-f", "json", "--heartbeat", "1",
        "--mqtt", f"mqtt://127.0.0.1:{broker.port}/{TOPIC}", "--spool", str(tmp_path / "spool"),
    ])
    assert result.exit_code == 0, result.output
    printed = [line.encode() for line in result.stdout.splitlines()]
    kinds = [json.loads(line)["event"] for line in printed]
    assert kinds.count("label") == 3 and kinds.count("heartbeat") >= 1 and kinds[-1] == "summary"
    assert RUN * 3 == json.loads(printed[-1])["frames"]
    # The summary went out before the command returned (delivered within the flush time).
    assert subscriber.wait(lambda s: len(s.payloads(TOPIC)) == len(printed))
    assert subscriber.payloads(TOPIC) == [numbered(json.loads(line), seq) for seq, line in enumerate(printed, 1)]
    assert "warning" not in result.stderr
    subscriber.stop()
