"""edge.camera.folder: a photo folder plays in name order at --fps, and a bad photo is skipped with a warning."""

from __future__ import annotations

import pytest

from catdog.edge.camera.frames import SourceConfig
from catdog.edge.camera.sources import make_source
from catdog.edge.camera.streams import open_stream
from catdog.edge.errors import CameraSetupError
from tests.edge.camera.helpers import solid, write_folder


def test_folder_plays_in_name_order_and_skips_a_bad_photo(tmp_path):
    folder = write_folder(tmp_path / "photos", solid((0, 0, 0)) + solid((255, 255, 255)))
    (folder / "frame0000b.jpg").write_text("broken")  # sorts between the two good frames
    with open_stream(SourceConfig(str(folder), fps=4, max_frames=10)) as stream:
        got = [stream.get(1), stream.get(1), stream.get(1)]
        warnings = stream.drain_warnings()
    assert got[2] is None and stream.ended and stream.frames == 2
    assert [int(f.rgb.mean()) for f in got[:2]] == [0, 255]
    assert [f.t for f in got[:2]] == [0.0, 0.25]
    assert len(warnings) == 1 and "frame0000b.jpg" in warnings[0] and "skipped" in warnings[0]


def test_empty_folder_is_a_setup_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraSetupError, match="no photos"):
        make_source(SourceConfig(str(tmp_path / "empty")))
