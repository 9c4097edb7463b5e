"""edge.camera.preview: the preview served over real sockets while a real camera loop reads a folder of frames made
from val photos (cats, then dogs; no OpenCV needed): the page, /api/state, /api/events, server-sent events, the MJPEG stream, snapshots, and
a close() that ends open streams and leaves no thread behind. The loop is held at chosen frames, so each check
waits for what it is about, never for time."""

from __future__ import annotations

import io
import ipaddress
import json
import socket
import urllib.request

import numpy as np
import pytest
from PIL import Image

from catdog.edge.camera.frames import SourceConfig
from catdog.edge.camera.loop import WatchConfig
from catdog.edge.camera.overlay import banner_height
from catdog.edge.camera.preview import Preview, describe
from catdog.edge.camera.preview_config import PreviewConfig
from tests.edge.camera.helpers import PATIENCE_S, RUN, wait_for, write_folder
from tests.edge.camera.preview_helpers import TOKEN, LiveFrames, LoopThread, MjpegReader, get, preview_threads


def _banner_left(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as image:
        pixels = np.asarray(image.convert("RGB"))
    return pixels[: banner_height(pixels.shape[0]), : pixels.shape[1] // 2].astype(int)


def _sse_until(response, wanted) -> dict:
    """Read server-sent events until one satisfies wanted(event name, data); return its data."""
    name = None
    while line := response.readline():
        text = line.decode().rstrip("\n")
        if text.startswith("event: "):
            name = text[7:]
        elif text.startswith("data: ") and wanted(name, json.loads(text[6:])):
            return json.loads(text[6:])
    raise AssertionError("the event stream ended")


@pytest.fixture
def cats_then_dogs(confident_frames, tmp_path):
    return write_folder(tmp_path / "catsdogs", [*confident_frames["cat"], *confident_frames["dog"]])


def test_page_api_events_and_stream_follow_the_camera(classifier, camera_model, cats_then_dogs, tmp_path):
    saves = tmp_path / "snaps"
    info = describe(classifier.contract, camera_model, str(cats_then_dogs))
    preview = Preview(PreviewConfig(port=0), info, save_dir=saves)
    base = preview.url
    # held at the first dog frame (the cat event is out), then at the last frame (the dog event is out)
    loop = LoopThread(classifier, SourceConfig(str(cats_then_dogs)), preview, WatchConfig(smooth=3, save_dir=saves),
                      hold=(RUN + 1, 2 * RUN))
    try:
        page = get(base)
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        assert b'src="stream.mjpg"' in page.body and b"cat, dog" in page.body and b"catsdogs" in page.body
        assert page.headers["X-Content-Type-Options"] == "nosniff" and "default-src 'none'" in page.headers[
            "Content-Security-Policy"]
        assert get(base + "preview.js").body.startswith(b'"use strict"')

        assert loop.reached[RUN + 1].wait(PATIENCE_S)
        state = json.loads(get(base + "api/state").body)
        assert (state["label"], state["frames"], state["classified"], state["dropped"]) == ("cat", RUN, RUN, 0)
        assert set(state) >= {"label", "confidence", "since", "fps", "frames", "dropped", "latency_ms"}
        assert state["confidence"] >= 0.5 and state["latency_ms"] > 0 and state["since"] > 0
        events = json.loads(get(base + "api/events?after=0").body)["events"]
        assert [(e["id"], e["label"], e["snapshot"]) for e in events] == [(1, "cat", "events/1.jpg")]
        saved = get(base + "events/1.jpg")
        assert saved.status == 200 and saved.body == next(saves.glob("*.jpg")).read_bytes()

        stream = MjpegReader(base + "stream.mjpg")
        cat_part = stream.next_part()
        with Image.open(io.BytesIO(cat_part)) as image:
            assert image.format == "JPEG" and image.size == (320, 240)
        live = urllib.request.urlopen(base + "api/live", timeout=PATIENCE_S)
        assert live.headers["Content-Type"] == "text/event-stream"
        assert _sse_until(live, lambda name, data: name == "state")["label"] == "cat"
        assert json.loads(get(base + "api/state").body)["viewers"] == 1

        loop.release(RUN + 1)
        dog = _sse_until(live, lambda name, data: name == "label")  # pushed, not polled
        assert dog["label"] == "dog" and dog["id"] == 2 and dog["snapshot"] == "events/2.jpg"
        assert loop.reached[2 * RUN].wait(PATIENCE_S)
        state = json.loads(get(base + "api/state").body)
        assert state["label"] == "dog" and state["frames"] == 2 * RUN - 1 and state["since"] >= dog["time"]
        assert [e["id"] for e in json.loads(get(base + "api/events?after=1").body)["events"]] == [2]
        # the stream goes on to the newest frame: its label region now says something else
        for _ in range(2 * RUN):
            if not np.array_equal(_banner_left(stream.next_part()), _banner_left(cat_part)):
                break
        else:
            raise AssertionError("the stream's label region never changed from cat")
        snapshot = get(base + "snapshot.jpg")
        assert snapshot.status == 200 and snapshot.body[:2] == b"\xff\xd8"
        assert json.loads(get(base + "healthz").body) == {"status": "ok", "frames": 2 * RUN - 1}
        assert get(base + "healthz", method="HEAD").body == b""
        loop.release(2 * RUN)
        summary = loop.finish()
        assert summary.events == 2 and summary.frames == 2 * RUN
        assert preview.close() == []  # ends the open stream and event stream too
        stream.response.read()  # both end: reading to the end returns (a stream left open would time out)
        assert live.read().endswith(b"\n\n")
        stream.close()
        live.close()
    finally:
        loop.finish()
        preview.close()
    assert preview_threads() == [] and not preview.server.failures


def test_five_viewers_each_get_the_newest_frames_and_close_ends_them(classifier, confident_frames):
    preview = Preview(PreviewConfig(port=0, preview_fps=20), {"labels": ["cat", "dog"]})
    loop = LoopThread(classifier, SourceConfig("live"), preview, frames=LiveFrames(confident_frames["cat"]))
    viewers = []
    try:
        viewers = [MjpegReader(preview.url + "stream.mjpg") for _ in range(5)]
        for viewer in viewers:
            parts = [viewer.next_part() for _ in range(3)]
            assert all(part[:2] == b"\xff\xd8" for part in parts)
        assert json.loads(get(preview.url + "api/state").body)["viewers"] == 5
        assert wait_for(lambda: preview.server.clients() == 5)  # the state request's thread ends on its own
        assert preview.close() == []
        for viewer in viewers:
            viewer.response.read()  # returns: the stream ended
        after_close = preview.live.state()["frames"]
        assert wait_for(lambda: preview.live.state()["frames"] > after_close + 10)  # the loop never noticed
    finally:
        for viewer in viewers:
            viewer.close()
        loop.finish()
        preview.close()
    assert preview_threads() == [] and not preview.server.failures


def test_a_port_in_use_is_a_setup_error():
    from catdog.edge.errors import CameraSetupError

    first = Preview(PreviewConfig(port=0), {})
    try:
        with pytest.raises(CameraSetupError, match="cannot listen there"):
            Preview(PreviewConfig(port=first.port), {})
    finally:
        first.close()
    assert preview_threads() == []


def _is_ip(url: str) -> bool:
    host = url.split("//", 1)[1].rpartition(":")[0].strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def test_listening_on_every_interface_gives_addresses_that_open_the_page():
    preview = Preview(PreviewConfig(host="0.0.0.0", port=0, token=TOKEN), {})
    try:
        urls = preview.addresses()
        assert urls and all(url.endswith(f":{preview.port}/") and "0.0.0.0" not in url for url in urls), urls
        name = socket.gethostname()
        assert (f"http://{name}:{preview.port}/" in urls) == (name != "localhost"), urls
        for url in [preview.url, *filter(_is_ip, urls)]:  # the machine's own addresses: this machine reaches them
            assert get(url + "healthz?token=" + TOKEN).status == 200, url
        assert preview.url == f"http://127.0.0.1:{preview.port}/"
    finally:
        assert preview.close() == []
    only = Preview(PreviewConfig(port=0), {})
    try:
        assert only.addresses() == [only.url] == [f"http://127.0.0.1:{only.port}/"]
    finally:
        only.close()
