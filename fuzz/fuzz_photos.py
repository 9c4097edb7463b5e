"""Fuzz target 4 (hostile photos): mutated image bytes through catdog.edge.preprocess.prepare.

Property: every input gives a uint8 array of the compact model's input shape or an ImageError with a
one-line message; any other exception is a crash (libFuzzer keeps the input as crash-*).

    .venv/bin/python fuzz/fuzz_photos.py fuzz/corpus/fuzz_photos -max_total_time=600 -rss_limit_mb=2048 -timeout=10
    .venv/bin/python fuzz/fuzz_photos.py --write-seeds fuzz/corpus/fuzz_photos   # the committed seed-* files
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["PIL", "catdog"]):
    from PIL import Image

    Image.init()  # every format plugin, so that their parsers are instrumented too
    from catdog.edge.contract import contract_for_model
    from catdog.edge.errors import ImageError
    from catdog.edge.models import resolve_model
    from catdog.edge.preprocess import prepare

CONTRACT = contract_for_model(resolve_model("compact"))
CHANNELS = 3 if CONTRACT.color == "RGB" else 1
SHAPE = (*CONTRACT.input_hw, CHANNELS)
PHOTO = Path(tempfile.mkdtemp(prefix="fuzz_photos.")) / "photo"


def test_one_input(data: bytes) -> None:
    PHOTO.write_bytes(data)
    try:
        pixels = prepare(PHOTO, CONTRACT.input_hw, CONTRACT.color, CONTRACT.resize, CONTRACT.crop, draft=True)
    except ImageError as exc:
        if "\n" in str(exc):
            raise AssertionError(f"ImageError message spans lines: {exc!r}") from None
        return
    if pixels.dtype != "uint8" or pixels.shape != SHAPE:
        raise AssertionError(f"prepare returned {pixels.dtype} {pixels.shape}, expected uint8 {SHAPE}")


def seed_images() -> dict[str, bytes]:
    """Tiny generated images (a gradient, no data-set photo), one or more per format and mode, a few hundred bytes each."""
    ramp = Image.linear_gradient("L").resize((8, 6))
    rgb = Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT), ramp.rotate(90, expand=False)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: exif_transpose must handle it
    images = {
        "jpeg.jpg": (rgb, "JPEG", {"quality": 50}),
        "jpeg-exif.jpg": (rgb, "JPEG", {"quality": 50, "exif": exif.tobytes()}),
        "jpeg-cmyk.jpg": (rgb.convert("CMYK"), "JPEG", {"quality": 50}),
        "png.png": (rgb, "PNG", {}),
        "png-16bit.png": (ramp.convert("I;16"), "PNG", {}),
        "png-la.png": (Image.merge("LA", (ramp, ramp)), "PNG", {}),
        "png-palette.png": (rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=4), "PNG", {"transparency": 0}),
        "gif.gif": (rgb.convert("P"), "GIF", {"save_all": True, "append_images": [ramp.convert("P")], "duration": 50}),
        "webp.webp": (rgb, "WEBP", {"save_all": True, "append_images": [ramp.convert("RGB")], "duration": 50}),
        "bmp.bmp": (rgb.resize((4, 3)), "BMP", {}),
        "tiff.tif": (rgb, "TIFF", {"compression": "tiff_deflate"}),
        "tiff-float.tif": (ramp.convert("F"), "TIFF", {"compression": "tiff_deflate"}),
    }
    out = {}
    for name, (img, fmt, options) in images.items():
        buffer = io.BytesIO()
        img.save(buffer, fmt, **options)
        out[name] = buffer.getvalue()
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        folder = Path(sys.argv[2])
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seed_images().items():
            # no image suffix: these generated gradients are fuzzing seeds, not photos of the data set
            (folder / f"seed-{name.replace('.', '-')}").write_bytes(data)
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
