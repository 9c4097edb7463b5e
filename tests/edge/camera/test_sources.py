"""edge.camera.sources: which kind of source a --source names; OpenCV and picamera2 load only when one is made."""

from __future__ import annotations

import subprocess
import sys

import pytest

from catdog.edge.camera.folder import DirectorySource
from catdog.edge.camera.frames import SourceConfig
from catdog.edge.camera.sources import make_source
from catdog.edge.errors import CameraSetupError
from tests.conftest import ROOT
from tests.edge.camera.helpers import require_opencv, solid, write_folder, write_video


def test_cv2_and_picamera2_load_only_when_a_camera_source_is_opened():
    code = (
        "import importlib, pkgutil, sys, catdog.edge, catdog.edge.cli, catdog.edge.camera as camera; "
        "from catdog.edge.camera import *; "
        "[importlib.import_module(f'catdog.edge.camera.{m.name}') for m in pkgutil.iter_modules(camera.__path__)]; "
        "heavy = sorted(m for m in ('cv2', 'picamera2') if m in sys.modules); print(heavy); assert not heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_spec_names_the_right_source(tmp_path):
    require_opencv()
    folder = write_folder(tmp_path / "photos", solid((10, 20, 30), 2))
    video = write_video(tmp_path / "v.avi", solid((10, 20, 30), 2))
    assert isinstance(make_source(SourceConfig(str(folder))), DirectorySource)
    cases = {"0": (0, True), "/dev/video2": ("/dev/video2", True), str(video): (str(video), False),
             "rtsp://cam.local/stream": ("rtsp://cam.local/stream", True), "http://127.0.0.1:1/x.mjpg": ("http://127.0.0.1:1/x.mjpg", True)}
    for spec, (target, live) in cases.items():
        source = make_source(SourceConfig(spec))
        assert (source.target, source.live) == (target, live), spec
    with pytest.raises(CameraSetupError, match="no such file or folder"):
        make_source(SourceConfig(str(tmp_path / "missing.mp4")))
