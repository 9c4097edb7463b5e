"""Preprocessing: decode, EXIF orientation, colour conversion, resize, and clear errors for bad files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catdog.edge.errors import ImageError
from catdog.edge.preprocess import open_image, prepare, to_color


def test_real_photo_becomes_uint8_rgb_of_the_input_size(val_photos):
    pixels = prepare(val_photos["cat"][0], (128, 96))
    assert pixels.shape == (128, 96, 3) and pixels.dtype == np.uint8
    assert 20 < pixels.mean() < 235  # a real photo, not a blank


def test_grayscale_output_has_one_channel(val_photos):
    assert prepare(val_photos["dog"][0], (64, 64), color="L").shape == (64, 64, 1)


def test_path_pil_and_array_inputs_agree(val_photos):
    path = val_photos["cat"][1]
    from_path = prepare(path, (64, 64))
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    assert np.array_equal(prepare(rgb, (64, 64)), from_path)
    assert np.array_equal(prepare(np.asarray(rgb), (64, 64)), from_path)


def test_centre_crop_keeps_the_middle_of_each_side():
    """crop=0.8 drops 10% of each side: a blue frame 10% wide disappears; the whole photo keeps it."""
    img = Image.new("RGB", (200, 100), (0, 0, 255))
    img.paste((255, 0, 0), (20, 10, 180, 90))  # red inside a frame of 10% of each side
    cropped = prepare(img, (40, 40), crop=0.8).astype(int)
    whole = prepare(img, (40, 40)).astype(int)
    inner = cropped[1:-1, 1:-1]  # the bilinear filter reaches half a pixel past the kept region
    assert inner[..., 2].max() == 0 and inner[..., 0].min() == 255
    assert whole[0, :, 2].min() > 225 and whole[:, 0, 2].min() > 225  # blue frame at the edges
    assert np.array_equal(prepare(img, (40, 40), crop=1.0), prepare(img, (40, 40)))


def test_centre_crop_is_the_same_for_paths_and_draft_decoding(val_photos):
    """A file, its decoded image and a draft (reduced-scale) JPEG decode all crop the same region."""
    path = val_photos["dog"][3]
    from_path = prepare(path, (96, 96), crop=0.83).astype(int)
    with Image.open(path) as img:
        from_image = prepare(img.convert("RGB"), (96, 96), crop=0.83).astype(int)
    drafted = prepare(path, (96, 96), crop=0.83, draft=True).astype(int)
    assert np.array_equal(from_path, from_image)
    assert np.abs(drafted - from_path).mean() < 3  # the region is the same; only DCT scaling noise
    assert np.abs(from_path - prepare(path, (96, 96)).astype(int)).mean() > 3 * np.abs(drafted - from_path).mean()


def test_exif_rotation_is_applied(val_photos, tmp_path):
    """A photo stored sideways with an EXIF orientation tag reaches the model upright."""
    upright = Image.open(val_photos["dog"][2]).convert("RGB")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera sensor stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": undoes ROTATE_90 (which turns 90 CCW)
    path = tmp_path / "rotated.jpg"
    sideways.save(path, exif=exif.tobytes(), quality=95)
    seen = prepare(path, (96, 96)).astype(int)
    expected = prepare(upright, (96, 96)).astype(int)
    ignored = prepare(sideways, (96, 96)).astype(int)
    assert np.abs(seen - expected).mean() < 4  # JPEG re-encoding noise only
    assert np.abs(seen - ignored).mean() > 4 * np.abs(seen - expected).mean()


def test_an_upright_photo_loads_no_image_ops(val_photos):
    """PIL.ImageOps (and the palette modules it imports) loads only for a photo that must be turned, not on every start."""
    photo = str(val_photos["dog"][2])
    pillow = f"import sys, PIL; from PIL import Image; Image.open({photo!r}).getexif(); " \
             "print('PIL.ImageOps' in sys.modules, PIL.__version__)"
    loaded, version = subprocess.run([sys.executable, "-c", pillow], capture_output=True, text=True, check=True).stdout.split()
    if loaded == "True":  # Pillow 9.4 (apt's on 32-bit Pi OS): Image.open's GIF plugin imports ImageOps
        pytest.skip(f"Pillow {version} imports PIL.ImageOps itself when it opens a photo: nothing for catdog to keep unloaded")
    code = f"import sys; from catdog.edge.preprocess import prepare; prepare({photo!r}, (96, 96)); " \
           "print('PIL.ImageOps' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.split() == ["False"], result.stderr


def test_alpha_and_16_bit_images_convert_sensibly():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    assert to_color(rgba, "RGB").getpixel((0, 0)) == (255, 255, 255)
    deep = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    assert to_color(deep, "RGB").getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty file"), (b"this is text, not a photo", "not an image"), (None, "truncated")],
)
def test_bad_files_raise_one_clear_error(tmp_path, val_photos, content, message):
    path = tmp_path / "bad.jpg"
    if content is None:  # a real JPEG cut in half
        content = Path(val_photos["cat"][0]).read_bytes()
        content = content[: len(content) // 2]
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as err:
        open_image(path)
    assert "\n" not in str(err.value)


def test_missing_file_error(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "nope.jpg")
