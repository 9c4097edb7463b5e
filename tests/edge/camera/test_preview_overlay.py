"""edge.camera.overlay: the preview's banner (label, confidence, fps) drawn on real val frames, and its JPEGs."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from catdog.edge.camera.overlay import PREVIEW_MAX_WIDTH, banner_height, jpeg_bytes, label_text, preview_image


def _banner(image: Image.Image) -> np.ndarray:
    return np.asarray(image)[: banner_height(image.height)]


def test_banner_holds_the_label_and_fps_and_leaves_the_frame_alone(confident_frames):
    frame = confident_frames["cat"][0]
    before = frame.copy()
    cat = preview_image(frame, "cat", 0.97, 24.5)
    dog = preview_image(frame, "dog", 0.97, 24.5)
    assert np.array_equal(frame, before) and cat.size == (frame.shape[1], frame.shape[0])
    bar = banner_height(cat.height)
    # text is drawn: the banner is not one colour, and below it the picture is untouched
    assert len(np.unique(_banner(cat).reshape(-1, 3), axis=0)) > 2
    assert np.array_equal(np.asarray(cat)[bar + 1:], frame[bar + 1:])
    # the label's region (left half) differs between cat and dog; the fps region (right third) does not
    width = cat.width
    assert not np.array_equal(_banner(cat)[:, : width // 2], _banner(dog)[:, : width // 2])
    assert np.array_equal(_banner(cat)[:, 2 * width // 3:], _banner(dog)[:, 2 * width // 3:])
    slower = preview_image(frame, "cat", 0.97, 3.0)
    assert not np.array_equal(_banner(cat)[:, 2 * width // 3:], _banner(slower)[:, 2 * width // 3:])


def test_large_frames_are_scaled_down_before_drawing():
    frame = np.zeros((1080, 1920, 3), dtype=np.uint8)
    image = preview_image(frame, None, None, None)
    assert image.size == (PREVIEW_MAX_WIDTH, 360)


def test_label_text_is_short_and_printable():
    assert label_text(None, None) == "-"
    assert label_text("cat", 0.9712) == "cat 0.97"
    hostile = label_text("\x1b[31mdog\n" + "x" * 100, 0.5)
    assert hostile.isprintable() and len(hostile) <= 24 + 5
    preview_image(np.zeros((40, 60, 3), np.uint8), "\x1b[2J\u202e\x00" * 10, 0.5, 1.0)  # tiny frame, hostile label


def test_jpeg_bytes_decode_back_to_the_frame_size(confident_frames):
    frame = confident_frames["dog"][0]
    for source in (frame, Image.fromarray(frame)):
        with Image.open(io.BytesIO(jpeg_bytes(source, quality=70))) as decoded:
            assert decoded.format == "JPEG" and decoded.size == (frame.shape[1], frame.shape[0])
