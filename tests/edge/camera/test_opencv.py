"""edge.camera.opencv: frames come out RGB (BGR converted once), files are read frame by frame, and a
missing OpenCV or an unreadable file says what to do. The tests that need OpenCV ask for it through
require_opencv, which fails under CI=true where the camera extra must be installed (issue 30)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.edge.camera import helpers

from catdog.edge.camera.frames import SourceConfig
from catdog.edge.camera.sources import make_source
from catdog.edge.camera.streams import SequentialStream, open_stream
from catdog.edge.errors import CameraSetupError, SourceError
from tests.edge.camera.helpers import FRAME_HW, require_opencv, solid, write_video


def test_opencv_frames_are_rgb_and_files_are_read_frame_by_frame(tmp_path):
    require_opencv()
    frames = solid((230, 20, 20), 5) + solid((20, 20, 230), 5)  # red then blue, in RGB
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
    require_opencv()
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(SourceError, match="cannot open it as a video"):
        open_stream(SourceConfig(str(fake)))


def test_missing_opencv_is_a_setup_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes "import cv2" fail
    with pytest.raises(CameraSetupError, match=r"pip install opencv-python-headless") as info:
        make_source(SourceConfig("0"))
    assert info.value.exit_code == 2


@pytest.mark.parametrize("ci,legacy,outcome", [
    ("true", False, pytest.fail.Exception), ("true", True, pytest.skip.Exception), (None, False, pytest.skip.Exception),
])
def test_a_missing_opencv_fails_under_ci_except_in_the_legacy_environment(monkeypatch, ci, legacy, outcome):
    monkeypatch.setitem(sys.modules, "cv2", None)
    monkeypatch.setattr(helpers, "legacy_environment", lambda: legacy)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="OpenCV"):
        helpers.require_opencv()


def test_no_test_skips_on_a_missing_opencv_by_itself_and_the_preview_tests_need_none():
    plain_skip = "importorskip(" + '"cv2"'
    tests = ROOT / "tests"
    assert [str(p) for p in tests.rglob("*.py") if plain_skip in p.read_text()] == []
    http_only = ["test_preview.py", "test_preview_hostile.py", "test_preview_routes.py", "test_preview_live.py",
                 "test_preview_overlay.py"]
    for name in http_only:  # fed by LiveFrames or photo folders (Pillow), so they run in the legacy environment too
        text = (tests / "edge" / "camera" / name).read_text()
        assert not any(word in text for word in ("require_opencv", "write_video", "MjpegServer", "cv2")), name
