"""edge.sources: which source a --source names, RGB frames, frame-by-frame vs newest-frame reading,
reconnecting with backoff, and the picamera2 adapter against a stand-in module."""

from __future__ import annotations

import subprocess
import sys
import threading
import types

import numpy as np
import pytest

from catdog.edge.errors import CameraSetupError, SourceError
from catdog.edge.sources import (
    DirectorySource,
    LatestFrameStream,
    PicameraSource,
    SequentialStream,
    SourceConfig,
    make_source,
    open_stream,
)
from tests.conftest import ROOT
from tests.edge.camera_fixtures import FRAME_HW, MjpegServer, wait_for, write_folder, write_video


def _solid(rgb: tuple[int, int, int], n: int = 1) -> list[np.ndarray]:
    return [np.full((*FRAME_HW, 3), rgb, dtype=np.uint8) for _ in range(n)]


def test_cv2_and_picamera2_load_only_when_a_camera_source_is_opened():
    code = (
        "import sys, catdog.edge, catdog.edge.cli, catdog.edge.camera, catdog.edge.sources, catdog.edge.smoothing; "
        "heavy = sorted(m for m in ('cv2', 'picamera2') if m in sys.modules); print(heavy); assert not heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_is_validated():
    with pytest.raises(CameraSetupError, match="--fps"):
        SourceConfig("0", fps=0)
    with pytest.raises(CameraSetupError, match="--max-retries"):
        SourceConfig("0", max_retries=-1)
    with pytest.raises(CameraSetupError, match="backoff"):
        SourceConfig("0", backoff_s=2.0, backoff_max_s=1.0)
    with pytest.raises(CameraSetupError, match="empty"):
        SourceConfig(" ")
    config = SourceConfig("0", backoff_s=0.5, backoff_max_s=3.0)
    assert [config.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_spec_names_the_right_source(tmp_path):
    pytest.importorskip("cv2", reason="OpenCV (the camera extra) is not installed in this environment")
    folder = write_folder(tmp_path / "photos", _solid((10, 20, 30), 2))
    video = write_video(tmp_path / "v.avi", _solid((10, 20, 30), 2))
    assert isinstance(make_source(SourceConfig(str(folder))), DirectorySource)
    cases = {"0": (0, True), "/dev/video2": ("/dev/video2", True), str(video): (str(video), False),
             "rtsp://cam.local/stream": ("rtsp://cam.local/stream", True), "http://127.0.0.1:1/x.mjpg": ("http://127.0.0.1:1/x.mjpg", True)}
    for spec, (target, live) in cases.items():
        source = make_source(SourceConfig(spec))
        assert (source.target, source.live) == (target, live), spec
    with pytest.raises(CameraSetupError, match="no such file or folder"):
        make_source(SourceConfig(str(tmp_path / "missing.mp4")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraSetupError, match="no photos"):
        make_source(SourceConfig(str(tmp_path / "empty")))


def test_opencv_frames_are_rgb_and_files_are_read_frame_by_frame(tmp_path):
    pytest.importorskip("cv2", reason="OpenCV (the camera extra) is not installed in this environment")
    frames = _solid((230, 20, 20), 5) + _solid((20, 20, 230), 5)  # red then blue, in RGB
    video = write_video(tmp_path / "rb.avi", frames, fps=20)
    with open_stream(SourceConfig(str(video))) as stream:
        assert isinstance(stream, SequentialStream)
        got = []
        while (frame := stream.get(timeout=1)) is not None:
            got.append(frame)
        assert stream.ended
    assert [f.index for f in got] == list(range(10))
    assert [f.t for f in got] == pytest.approx([i / 20 for i in range(10)])
    means = [f.rgb.reshape(-1, 3).mean(axis=0) for f in got]
    assert all(m[0] > 180 and m[2] < 60 for m in means[:5]), "red frames must come out red: BGR converted once"
    assert all(m[2] > 180 and m[0] < 60 for m in means[5:])
    assert got[0].rgb.dtype == np.uint8 and got[0].rgb.shape == (*FRAME_HW, 3)


def test_unreadable_video_file_is_a_source_error(tmp_path):
    pytest.importorskip("cv2", reason="OpenCV (the camera extra) is not installed in this environment")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(SourceError, match="cannot open it as a video"):
        open_stream(SourceConfig(str(fake)))


def test_folder_plays_in_name_order_and_skips_a_bad_photo(tmp_path):
    folder = write_folder(tmp_path / "photos", _solid((0, 0, 0)) + _solid((255, 255, 255)))
    (folder / "frame0000b.jpg").write_text("broken")  # sorts between the two good frames
    with open_stream(SourceConfig(str(folder), fps=4, max_frames=10)) as stream:
        got = [stream.get(1), stream.get(1), stream.get(1)]
        warnings = stream.drain_warnings()
    assert got[2] is None and stream.ended and stream.frames == 2
    assert [int(f.rgb.mean()) for f in got[:2]] == [0, 255]
    assert [f.t for f in got[:2]] == [0.0, 0.25]
    assert len(warnings) == 1 and "frame0000b.jpg" in warnings[0] and "skipped" in warnings[0]


def test_realtime_reader_keeps_only_the_newest_frame(tmp_path):
    # 30 frames at 100 fps while the consumer takes one every 0.1 s: most are dropped, none queue up.
    folder = write_folder(tmp_path / "photos", [np.full((8, 8, 3), i, dtype=np.uint8) for i in range(30)])
    stream = open_stream(SourceConfig(str(folder), fps=100, realtime=True))
    taken = []
    try:
        assert isinstance(stream, LatestFrameStream)
        while not stream.ended and len(taken) < 100:
            frame = stream.get(timeout=1)
            if frame is not None:
                taken.append(frame.index)
                threading.Event().wait(0.1)
    finally:
        stream.close()
    assert stream.frames == 30
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert len(taken) < 20, f"the slow consumer saw {len(taken)} of 30 frames: frames were queued, not dropped"
    assert taken[-1] >= 25, "the consumer must get the newest frames, not the oldest"


def test_stream_reconnects_with_backoff_then_gives_up(tmp_path):
    pytest.importorskip("cv2", reason="OpenCV (the camera extra) is not installed in this environment")
    server = MjpegServer(_solid((200, 100, 50), 3), fps=50, limit=10).start()
    config = SourceConfig(server.url, max_retries=2, backoff_s=0.05, backoff_max_s=0.1, timeout_s=3)
    stream = open_stream(config)
    frames = []
    try:
        # Each connection gets 10 frames; the reader reconnects after each, until the server is gone.
        assert wait_for(lambda: stream.frames >= 15, timeout=15), f"only {stream.frames} frames"
        server.stop()
        with pytest.raises(SourceError, match="giving up after 2 reopen attempt"):
            for _ in range(400):
                frame = stream.get(timeout=0.1)
                if frame is not None:
                    frames.append(frame)
        warnings = stream.drain_warnings()
    finally:
        stream.close()
        server.stop()
    assert any("stopped delivering frames" in w for w in warnings)
    assert any("cannot open" in w and "attempt 2/2" in w for w in warnings)
    assert frames and frames[0].rgb.reshape(-1, 3).mean(axis=0)[0] > 150  # RGB from the stream too


class _FakeCamera:
    """Stands in for picamera2.Picamera2 and records the calls the adapter makes."""

    calls: list = []
    frames: list[np.ndarray] = []
    fail_open = False

    def __init__(self):
        if _FakeCamera.fail_open:
            raise IndexError("list index out of range")  # what picamera2 raises with no camera attached
        self.calls.append(("Picamera2",))
        self.served = 0

    def create_video_configuration(self, main):
        self.calls.append(("create_video_configuration", main))
        return {"main": main}

    def configure(self, config):
        self.calls.append(("configure", config))

    def start(self):
        self.calls.append(("start",))

    def capture_array(self, name="main"):
        self.calls.append(("capture_array", name))
        frame = self.frames[self.served % len(self.frames)]
        self.served += 1
        return frame.copy()

    def stop(self):
        self.calls.append(("stop",))

    def close(self):
        self.calls.append(("close",))


@pytest.fixture
def fake_picamera2(monkeypatch):
    module = types.ModuleType("picamera2")
    module.Picamera2 = _FakeCamera
    monkeypatch.setitem(sys.modules, "picamera2", module)
    _FakeCamera.calls = []
    _FakeCamera.fail_open = False
    _FakeCamera.frames = _solid((250, 0, 0), 1) + _solid((0, 250, 0), 1)
    return _FakeCamera


def test_picamera_adapter_asks_for_rgb_and_releases_the_camera(fake_picamera2):
    config = SourceConfig("picamera", size_hw=(480, 640), max_frames=4)
    source = make_source(config)
    assert isinstance(source, PicameraSource) and source.live
    with open_stream(config, source) as stream:
        got = []
        while not stream.ended and len(got) < 10:
            frame = stream.get(timeout=1)
            if frame is not None:
                got.append(frame)
    names = [c[0] for c in fake_picamera2.calls]
    assert names[:4] == ["Picamera2", "create_video_configuration", "configure", "start"]
    assert fake_picamera2.calls[1][1] == {"size": (640, 480), "format": "BGR888"}  # BGR888 is [R, G, B] in memory
    assert names.count("capture_array") == 4 and names[-2:] == ["stop", "close"]
    assert stream.frames == 4
    assert all(f.rgb.flags.c_contiguous and f.rgb.shape == (*FRAME_HW, 3) for f in got)
    assert got[0].rgb[0, 0].tolist() in ([250, 0, 0], [0, 250, 0])  # passed through unchanged: already RGB


def test_picamera_that_cannot_open_is_retried_then_given_up(fake_picamera2):
    fake_picamera2.fail_open = True
    stream = open_stream(SourceConfig("picamera", max_retries=1, backoff_s=0.01))
    try:
        with pytest.raises(SourceError, match="picamera: cannot open the camera"):
            for _ in range(100):
                stream.get(timeout=0.1)
        warnings = stream.drain_warnings()
    finally:
        stream.close()
    assert len(warnings) == 1 and "attempt 1/1" in warnings[0] and "ribbon cable" in warnings[0]


def test_missing_picamera2_is_a_setup_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes "import picamera2" fail
    with pytest.raises(CameraSetupError, match="apt install python3-picamera2") as info:
        make_source(SourceConfig("picamera"))
    assert info.value.exit_code == 2


def test_missing_opencv_is_a_setup_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(CameraSetupError, match=r"pip install opencv-python-headless"):
        make_source(SourceConfig("0"))
