"""Camera-test fixtures: a picamera2 stand-in installed in place of the real module."""

from __future__ import annotations

import sys
import types

import pytest

from tests.edge.camera.helpers import StandInPicamera2, solid


@pytest.fixture
def fake_picamera2(monkeypatch) -> type[StandInPicamera2]:
    """A fresh StandInPicamera2 class as picamera2.Picamera2, serving red then green frames, free-running."""

    class Picamera2(StandInPicamera2):
        calls: list = []
        frames = solid((250, 0, 0)) + solid((0, 250, 0))
        fail_open = False
        turns = None

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=Picamera2))
    return Picamera2
