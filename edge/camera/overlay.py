"""Draw the preview's banner on a frame (smoothed label, confidence, fps) and encode frames as JPEG, with Pillow."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Preview frames are scaled down to at most this width before drawing and encoding, so a 1080p
#: camera costs the preview what a 640x480 one does.
PREVIEW_MAX_WIDTH = 640
#: Labels come from the model file: at most this many characters of one are drawn.
LABEL_CHARS = 24
BANNER = (20, 20, 20)
TEXT = (255, 255, 255)
NO_LABEL = (170, 170, 170)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at size pixels (a fixed-size bitmap font where Pillow lacks FreeType or is < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow 10.0, or built without FreeType
        return ImageFont.load_default()


def banner_height(frame_height: int) -> int:
    """Pixel height of the banner on a preview frame of this height (the text's line, with a margin)."""
    return max(16, round(frame_height / 12)) + 8


def label_text(label: str | None, confidence: float | None) -> str:
    """"cat 0.97", or "-" before any label; a label is cut to LABEL_CHARS and kept to printable characters."""
    if label is None:
        return "-"
    shown = "".join(c if c.isprintable() else "?" for c in label[:LABEL_CHARS])
    return shown if confidence is None else f"{shown} {confidence:.2f}"


def preview_image(rgb: np.ndarray, label: str | None, confidence: float | None, fps: float | None) -> Image.Image:
    """The frame as the preview shows it: at most PREVIEW_MAX_WIDTH wide, with a dark banner across the top
    holding the label and confidence on the left and the loop's fps on the right.

    Args:
        rgb: uint8 (height, width, 3) RGB frame; never modified.
        label: the smoothed label, None before the first one.
        confidence: its smoothed probability.
        fps: frames per second of the camera loop, None when not known yet.
    """
    image = Image.fromarray(rgb)
    if image.width > PREVIEW_MAX_WIDTH:
        height = max(1, round(image.height * PREVIEW_MAX_WIDTH / image.width))
        image = image.resize((PREVIEW_MAX_WIDTH, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    draw = ImageDraw.Draw(image)
    bar = banner_height(image.height)
    font = _font(bar - 8)
    draw.rectangle((0, 0, image.width, bar), fill=BANNER)
    draw.text((6, 4), label_text(label, confidence), font=font, fill=TEXT if label is not None else NO_LABEL)
    if fps is not None:
        rate = f"{fps:.1f} fps"
        draw.text((image.width - 6 - draw.textlength(rate, font=font), 4), rate, font=font, fill=NO_LABEL)
    return image


def jpeg_bytes(image: Image.Image | np.ndarray, quality: int = 80) -> bytes:
    """A Pillow image or a uint8 RGB array as JPEG bytes."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
