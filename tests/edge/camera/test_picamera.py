"""edge.camera.picamera: the picamera2 adapter against a stand-in module: it asks for RGB, passes frames
through unchanged, releases the camera, is retried when it cannot open, and says how to install picamera2."""

from __future__ import annotations

import sys
import threading

import pytest

from catdog.edge.camera.frames import SourceConfig
from catdog.edge.camera.picamera import PicameraSource
from catdog.edge.camera.sources import make_source
from catdog.edge.camera.streams import open_stream
from catdog.edge.errors import CameraSetupError, SourceError
from tests.edge.camera.helpers import FRAME_HW, PATIENCE_S


def test_picamera_adapter_asks_for_rgb_and_releases_the_camera(fake_picamera2):
    fake_picamera2.turns = threading.Semaphore(1)  # the camera delivers a frame once the one before was taken
    config = SourceConfig("picamera", size_hw=(480, 640), max_frames=4)
    source = make_source(config)
    assert isinstance(source, PicameraSource) and source.live
    got = []
    with open_stream(config, source) as stream:
        for _ in range(5):  # 4 frames, then the end
            frame = stream.get(timeout=PATIENCE_S)
            if frame is None:
                break
            got.append(frame)
            fake_picamera2.turns.release()
        assert stream.ended
    names = [c[0] for c in fake_picamera2.calls]
    assert names[:4] == ["Picamera2", "create_video_configuration", "configure", "start"]
    assert fake_picamera2.calls[1][1] == {"size": (640, 480), "format": "BGR888"}  # BGR888 is [R, G, B] in memory
    assert names.count("capture_array") == 4 and names[-2:] == ["stop", "close"]
    assert stream.frames == 4 and [f.index for f in got] == [0, 1, 2, 3]
    assert all(f.rgb.flags.c_contiguous and f.rgb.shape == (*FRAME_HW, 3) for f in got)
    # passed through unchanged, already RGB: red, then green (the stand-in repeats its last frame)
    assert [f.rgb[0, 0].tolist() for f in got] == [[250, 0, 0], [0, 250, 0], [0, 250, 0], [0, 250, 0]]


def test_picamera_that_cannot_open_is_retried_then_given_up(fake_picamera2):
    fake_picamera2.fail_open = True
    stream = open_stream(SourceConfig("picamera", max_retries=1, backoff_s=0.01))
    try:
        with pytest.raises(SourceError, match="picamera: cannot open the camera"):
            for _ in range(3):  # the reader gives up after one reopen attempt; get() then raises its error
                stream.get(timeout=PATIENCE_S)
        warnings = stream.drain_warnings()
    finally:
        stream.close()
    assert len(warnings) == 1 and "attempt 1/1" in warnings[0] and "ribbon cable" in warnings[0]


def test_missing_picamera2_is_a_setup_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes "import picamera2" fail
    with pytest.raises(CameraSetupError, match="apt install python3-picamera2") as info:
        make_source(SourceConfig("picamera"))
    assert info.value.exit_code == 2
