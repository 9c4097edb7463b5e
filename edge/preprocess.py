"""Photo preprocessing, defined once: decode, EXIF orientation, colour, centre crop, resize, dtype.

The trainer imports these functions for evaluation, calibration, parity and training data,
so the model sees the same pixels in training as on the device.
"""

from __future__ import annotations

import functools
import inspect
import math
import struct
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageError

ImageSource = Union[str, Path, Image.Image, np.ndarray]

#: Pillow resampling filter for each contract resize method. Pillow's BILINEAR widens its
#: support when shrinking (antialiased), like tf.image.resize(..., antialias=True).
RESAMPLING = {"bilinear": Image.Resampling.BILINEAR}

#: Images above this many pixels are refused (decompression-bomb guard, ~ an 8k x 8k photo).
MAX_PIXELS = 64_000_000

#: A draft-decoded JPEG keeps at least this many times the model's input size.
#: At 1x, label agreement with full decoding on the val photos was 98.0%, under the 99.5% bar
#: (benchmarks/edge_throughput.py); at 2x the resize sees enough pixels to match full decoding.
DRAFT_OVERSAMPLE = 2

#: Pillow decoders written in Python (BMP's run-length encoding), far slower per pixel than its C ones:
#: files that use them are refused above PY_DECODER_MAX_PIXELS, so that no photo takes long
#: (a 116-byte RLE BMP declaring 11534340x3 px took 4 s to fail).
PY_DECODERS = frozenset({"bmp_rle"})
PY_DECODER_MAX_PIXELS = 4_000_000

#: The Pillow formats open_image decodes; Image.open alone would try every plugin Pillow has (EPS runs
#: Ghostscript, and each rarely used parser is more attack surface for hostile files). JPEG includes MPO.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")

#: Exceptions Pillow's format parsers let slip on malformed headers (an index, key or type taken from the
#: file); turned into ImageError only when raised inside Pillow, so that a bug of ours still shows.
_PARSER_SLIPS = (IndexError, KeyError, TypeError, AttributeError, ZeroDivisionError, OverflowError, RecursionError)
_PILLOW_DIR = Path(Image.__file__).resolve().parent

#: File suffixes classify picks up from a directory.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def open_image(path: str | Path, draft_hw: tuple[int, int] | None = None) -> Image.Image:
    """Decode a photo file fully into memory, upright (EXIF orientation applied).

    Args:
        path: the photo file.
        draft_hw: if given, a JPEG is decoded by libjpeg's DCT scaling straight to the smallest
            size of 1/2, 1/4 or 1/8 that still covers DRAFT_OVERSAMPLE times this (height, width)
            in both orientations; much faster for large photos, and the bilinear resize that
            follows still has 2x oversampling. Other formats ignore it.

    Returns:
        A loaded PIL image in its original mode.

    Raises:
        ImageError: the file is missing, unreadable, empty, not an image, truncated or too large.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file; check the path") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read the file ({exc.strerror})") from None
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not a photo")
    if size == 0:
        raise ImageError(f"{path}: empty file (0 bytes); replace it with a real photo")
    with _decoding(path), warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="PIL")  # "Corrupt EXIF data": the photo still decodes
        with Image.open(path, formats=FORMATS) as img:
            _check_size(img, path)
            if img.width * img.height > PY_DECODER_MAX_PIXELS and any(tile[0] in PY_DECODERS for tile in img.tile):
                raise ImageError(
                    f"{path}: refused: {img.width}x{img.height} px is above the {PY_DECODER_MAX_PIXELS:,} pixel limit "
                    "for run-length-encoded BMP files; convert it to PNG first"
                )
            if draft_hw is not None and img.format == "JPEG":
                side = DRAFT_OVERSAMPLE * max(draft_hw)  # either orientation must still cover it
                img.draft(None, (side, side))
            img.load()
            _check_size(img, path)  # a few formats only know their size once decoded
            return _upright(img)


#: EXIF tag of how the camera was held: 1 is upright, 2 to 8 are the turns and mirrorings ImageOps.exif_transpose undoes.
_ORIENTATION = 0x0112


def _upright(img: Image.Image) -> Image.Image:
    """The photo turned as its EXIF orientation says."""
    if img.getexif().get(_ORIENTATION, 1) not in (2, 3, 4, 5, 6, 7, 8):
        return img  # already upright: ImageOps and the 5 modules it imports stay unloaded (~5M instructions a start)
    from PIL import ImageOps

    if _transposes_in_place():
        ImageOps.exif_transpose(img, in_place=True)
        return img
    return ImageOps.exif_transpose(img)


@functools.cache
def _transposes_in_place() -> bool:
    """Pillow >= 9.5 turns a photo in place; Debian bookworm's apt Pillow 9.4 (Raspberry Pi OS, python3-pil)
    returns a copy. Asked once, not for every turned photo."""
    from PIL import ImageOps

    return "in_place" in inspect.signature(ImageOps.exif_transpose).parameters


def _check_size(img: Image.Image, name: object) -> None:
    if img.width < 1 or img.height < 1:
        raise ImageError(f"{name}: the image has no pixels ({img.width}x{img.height}); replace it with a real photo")
    if img.width * img.height > MAX_PIXELS:
        raise ImageError(
            f"{name}: refused as a possible decompression bomb: {img.width}x{img.height} px is above "
            f"the {MAX_PIXELS:,} pixel limit; downscale it first"
        )


@contextmanager
def _decoding(name: object) -> Iterator[None]:
    """Turn what Pillow raises on a malformed photo into one ImageError line; errors born in our own code stay raised."""
    try:
        yield
    except ImageError:
        raise
    except PermissionError:
        raise ImageError(f"{name}: permission denied; make the file readable") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image catdog can decode; use JPEG, PNG, WebP, BMP, GIF or TIFF") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{name}: refused as a possible decompression bomb: its declared size is above the pixel limit; "
            "downscale it first"
        ) from None
    except MemoryError:
        raise ImageError(f"{name}: too large to decode in the memory available; downscale it first") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageError(f"{name}: truncated or corrupt image ({_one_line(exc)}); re-export or re-download it") from None
    except _PARSER_SLIPS as exc:
        if not _born_in_pillow(exc):
            raise
        raise ImageError(f"{name}: truncated or corrupt image ({_one_line(exc)}); re-export or re-download it") from None


def _born_in_pillow(exc: BaseException) -> bool:
    """Whether the innermost Python frame of the traceback is Pillow's (its C decoders raise from there too)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PILLOW_DIR)


def _one_line(exc: BaseException) -> str:
    """The exception's text on one line: Pillow's messages can quote bytes of the file."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def to_color(img: Image.Image, color: str) -> Image.Image:
    """Convert any Pillow mode to "RGB" or "L"; transparency is composited onto white.

    16-bit and 32-bit greyscale images are scaled to 8 bits by their full range, not clipped.
    """
    if img.mode == color:
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.array(img, dtype=np.float64)
        np.nan_to_num(arr, copy=False, nan=0.0, posinf=0.0, neginf=0.0)  # a float TIFF can hold anything
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr /= top  # in place: a large 32-bit image already takes 8 bytes a pixel here
        arr *= 255.0
        arr += 0.5
        img = Image.fromarray(np.clip(arr, 0, 255, out=arr).astype(np.uint8))
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert(color)


def resize(img: Image.Image, input_hw: tuple[int, int], method: str = "bilinear", crop: float = 1.0) -> Image.Image:
    """Resize the image's centred crop (crop of each side; 1.0: the whole image) to (height, width)
    with the contract's method (aspect not kept)."""
    height, width = input_hw
    if crop == 1.0 and img.size == (width, height):
        return img
    margin_x, margin_y = img.width * (1.0 - crop) / 2.0, img.height * (1.0 - crop) / 2.0
    box = (margin_x, margin_y, img.width - margin_x, img.height - margin_y)
    return img.resize((width, height), resample=RESAMPLING[method], box=box)


def prepare(
    source: ImageSource,
    input_hw: tuple[int, int],
    color: str = "RGB",
    method: str = "bilinear",
    crop: float = 1.0,
    draft: bool = False,
) -> np.ndarray:
    """Turn a photo path, PIL image or RGB array into model pixels.

    Args:
        source: a file path, a PIL image, or a uint8 array (H, W, 3) in RGB order.
        input_hw: model input (height, width).
        color: "RGB" or "L".
        method: resize method name (see RESAMPLING).
        crop: side of the centred region kept, as a fraction of each side (1.0: the whole photo).
        draft: decode JPEG files at a reduced scale first (see open_image); the edge's fast path,
            never used by the trainer.

    Returns:
        uint8 array of shape (height, width, channels), raw 0..255 pixel values.

    Raises:
        ImageError: the photo cannot be read.
    """
    name = source if isinstance(source, (str, Path)) else "image"
    if isinstance(source, (str, Path)):
        # The kept region, not the whole photo, must still cover DRAFT_OVERSAMPLE times the input.
        draft_hw = (math.ceil(input_hw[0] / crop), math.ceil(input_hw[1] / crop)) if draft else None
        img = open_image(source, draft_hw)
    elif isinstance(source, Image.Image):
        _check_pixels(name, source.width, source.height)  # before Pillow copies it (9.4 cannot copy an empty image)
        from PIL import ImageOps

        with _decoding(name):
            img = ImageOps.exif_transpose(source)  # reads its EXIF, which can be malformed too
    elif isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_pixels(name, source.shape[1], source.shape[0])
        img = _array_to_image(source)
    else:
        raise ImageError(f"cannot classify an object of type {type(source).__name__}; pass a path, PIL image or array")
    with _decoding(name):  # an odd mode or lazily decoded data can still fail here
        img = resize(to_color(img, color), input_hw, method, crop)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., np.newaxis] if arr.ndim == 2 else arr


def _check_pixels(name: object, width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ImageError(f"{name}: the image has no pixels ({width}x{height}); pass a real photo")


def _array_to_image(arr: np.ndarray) -> Image.Image:
    if arr.dtype != np.uint8:
        raise ImageError(f"image arrays must be uint8 0..255, got {arr.dtype}; convert with arr.astype(np.uint8)")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4)):
        return Image.fromarray(arr)
    raise ImageError(f"image arrays must be (H, W), (H, W, 3) RGB or (H, W, 4) RGBA, got shape {arr.shape}")
