"""Every awkward input in one run: good photos still answered, each bad one one clear line, exit 1."""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import BmpImagePlugin, Image, _binary
from click.testing import CliRunner

import catdog.edge.preprocess
from catdog.edge import Classifier, Failure, ImageError, Prediction, prepare
from catdog.edge.cli import app
from tests.conftest import copy_model_with_contract

runner = CliRunner()


def _bomb_png(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header declares width x height pixels (CRC fixed, so it parses)."""
    import io

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8 + 8  # signature, then chunk length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def awkward(val_photos, tmp_path_factory) -> dict[str, Path]:
    """Real photos re-saved in awkward forms, plus broken files, in a temp dir."""
    d = tmp_path_factory.mktemp("awkward")
    cat = Image.open(val_photos["cat"][10]).convert("RGB")
    dog = Image.open(val_photos["dog"][10]).convert("RGB")
    files: dict[str, Path] = {}

    def path(name: str) -> Path:
        files[name.split(".")[0]] = d / name
        return d / name

    # decodable, unusual: must be classified
    cat.convert("CMYK").save(path("cmyk.jpg"), "JPEG")
    Image.fromarray((np.asarray(cat.convert("L"), dtype=np.uint16) * 257)).save(path("deep16.png"))
    cat.convert("P", palette=Image.Palette.ADAPTIVE).save(path("palette.png"), transparency=0)
    rgba = cat.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(path("rgba.png"))
    dog.convert("L").save(path("gray.jpg"))
    exif = Image.Exif()
    exif[0x0112] = 6
    dog.transpose(Image.Transpose.ROTATE_90).save(path("rotated.jpg"), exif=exif.tobytes(), quality=95)
    cat.save(path("animated.gif"), save_all=True, append_images=[dog], duration=100, loop=0)
    for fmt in ("webp", "bmp", "tiff"):
        dog.save(path(f"format_{fmt}.{fmt}"))
    # broken: must each give one error line
    path("zero.jpg").write_bytes(b"")
    whole = Path(val_photos["cat"][11]).read_bytes()
    path("truncated.jpg").write_bytes(whole[: len(whole) // 3])
    path("text.jpg").write_text("hello, I am not a photo\n")
    _bomb_png(path("bomb.png"), 20000, 20000)
    path("locked.jpg").write_bytes(whole)
    (d / "emptydir").mkdir()
    files["emptydir"] = d / "emptydir"
    files["missing"] = d / "missing.jpg"
    files["good_cat"] = Path(val_photos["cat"][12])
    files["good_dog"] = Path(val_photos["dog"][12])
    return files


BROKEN = {
    "zero": "empty file",
    "truncated": "truncated or corrupt",
    "text": "not an image",
    "bomb": "decompression bomb",
    "locked": "permission denied",
    "emptydir": "directory has no photos",
    "missing": "no such file",
}
DECODABLE = (
    "cmyk", "deep16", "palette", "rgba", "gray", "rotated", "animated", "format_webp", "format_bmp", "format_tiff",
    "good_cat", "good_dog",
)


@pytest.fixture
def locked_file_unreadable(awkward, monkeypatch):
    """Tests run as root, which chmod cannot lock out; make Pillow see a permission error instead."""
    real_open = catdog.edge.preprocess.Image.open

    def guarded(fp, *args, **kwargs):
        if Path(fp) == awkward["locked"]:
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(catdog.edge.preprocess.Image, "open", guarded)


def test_mixed_run_answers_every_good_photo_and_flags_every_bad_one(
    awkward, compact_model, locked_file_unreadable
):
    order = ["good_cat", *BROKEN, *DECODABLE[:-2], "good_dog"]
    args = ["classify", *[str(awkward[k]) for k in order], "--model", str(compact_model), "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    records = {r["path"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert len(records) == len(order)
    by_key = {k: records[str(awkward[k])] for k in order}
    for key, message in BROKEN.items():
        assert set(by_key[key]) == {"path", "error"}, key
        assert message in by_key[key]["error"], (key, by_key[key])
        assert "\n" not in by_key[key]["error"]
    model = Classifier.load(compact_model)
    for key in DECODABLE:  # each odd-but-valid photo gets the library's own answer for it
        assert by_key[key]["label"] == model.classify(awkward[key]).label, (key, by_key[key])


def test_text_mode_prints_one_error_line_per_bad_input(awkward, bundled_model, locked_file_unreadable):
    args = ["classify", str(awkward["good_cat"]), *[str(awkward[k]) for k in BROKEN], "--model", str(bundled_model)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 1 and str(awkward["good_cat"]) in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == len(BROKEN)


def test_exif_rotation_changes_what_the_model_sees(awkward, bundled_model, val_photos):
    classifier = Classifier.load(bundled_model)
    upright = Image.open(val_photos["dog"][10]).convert("RGB")
    seen = classifier.preprocess(awkward["rotated"]).astype(int)
    as_stored = classifier.preprocess(upright.transpose(Image.Transpose.ROTATE_90)).astype(int)
    assert np.abs(seen - classifier.preprocess(upright).astype(int)).mean() < 4
    assert np.abs(seen - as_stored).mean() > 15


def test_animated_gif_uses_the_first_frame(awkward, bundled_model):
    classifier = Classifier.load(bundled_model)
    with Image.open(awkward["animated"]) as gif:
        first = gif.convert("RGB")
        gif.seek(1)
        second = gif.convert("RGB")
    pixels = classifier.preprocess(awkward["animated"])
    assert np.array_equal(pixels, classifier.preprocess(first))
    assert not np.array_equal(pixels, classifier.preprocess(second))


def test_model_side_errors_exit_2(tmp_path, bundled_model, val_photos):
    photo = str(val_photos["cat"][0])
    not_a_model = tmp_path / "notes.tflite"
    not_a_model.write_text("just text")
    shifted = copy_model_with_contract(bundled_model, tmp_path / "shifted.tflite", {"input_hw": [40, 56]})
    for model, message in (
        (tmp_path / "absent.tflite", "model not found"),
        (not_a_model, "not a valid TFLite"),
        (shifted, "input shape"),
    ):
        result = runner.invoke(app, ["classify", photo, "--model", str(model)])
        assert result.exit_code == 2, (model, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_contract_from_a_newer_version_loads_with_a_warning(tmp_path, bundled_model, val_photos):
    newer = copy_model_with_contract(bundled_model, tmp_path / "newer.tflite", {"format_version": 2, "letterbox": "black"})
    result = runner.invoke(app, ["classify", str(val_photos["cat"][0]), "--model", str(newer)])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "letterbox" in result.stderr


def test_lossless_formats_give_the_same_pixels_as_the_decoded_jpeg(awkward, bundled_model):
    classifier = Classifier.load(bundled_model, draft=False)
    reference = classifier.preprocess(awkward["format_bmp"])
    assert np.array_equal(classifier.preprocess(awkward["format_tiff"]), reference)
    assert np.abs(classifier.preprocess(awkward["format_webp"]).astype(int) - reference).mean() < 6  # lossy WebP


# --- Hostile photos (issue 19, target 4): every input gives pixels or one ImageError line, nothing else. ---

#: Found by fuzz/fuzz_photos.py: an RLE BMP (116 bytes) declaring 11534340x3 px, which Pillow's
#: Python RLE decoder padded one byte at a time for 4 s (a libFuzzer timeout) before failing.
RLE_BMP_HANG = base64.b64decode(
    "Qk1aAAD9////AQAAAAAoAAAABACwAAMAAAABABgAAQAAAAMAXAAAFgABAAEDAAYAAAAXASwpKSkpKSkAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAAAAAAAAAAAAApKSw="
)
FORMATS = {  # format -> (suffix, save options): each a few hundred bytes to a few KB
    "JPEG": (".jpg", {"quality": 60}),
    "PNG": (".png", {}),
    "GIF": (".gif", {}),
    "WEBP": (".webp", {"quality": 60}),
    "BMP": (".bmp", {}),
    "TIFF": (".tiff", {"compression": "tiff_deflate"}),
}


def _prepare_compact(path: Path) -> np.ndarray | None:
    """The compact model's preprocessing; None when the photo is refused with one ImageError line."""
    try:
        pixels = prepare(path, (96, 96), "RGB", "bilinear", 1.0, draft=True)
    except ImageError as exc:
        assert "\n" not in str(exc)
        return None
    assert pixels.dtype == np.uint8 and pixels.shape == (96, 96, 3)
    return pixels


@pytest.fixture(scope="module")
def small_photos(val_photos) -> dict[str, bytes]:
    """A data-set photo made small (in memory) and saved in each format."""
    with Image.open(val_photos["cat"][20]) as photo:
        small = photo.convert("RGB").resize((40, 30))
    encoded = {}
    for fmt, (_, options) in FORMATS.items():
        buffer = io.BytesIO()
        small.save(buffer, fmt, **options)
        encoded[fmt] = buffer.getvalue()
    return encoded


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(out))
        choice = rng.random()
        if choice < 0.6:
            out[pos] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
        elif choice < 0.8:
            del out[pos : pos + rng.randint(1, 16)]
        else:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(out[: rng.choice((len(out), rng.randrange(1, len(out) + 1)))])


@settings(derandomize=True, deadline=None, max_examples=150)
@given(fmt=st.sampled_from(sorted(FORMATS)), seed=st.integers(0, 2**32 - 1))
def test_mutated_photos_give_pixels_or_one_image_error(small_photos, tmp_path_factory, fmt, seed):
    path = tmp_path_factory.getbasetemp() / f"mutant{FORMATS[fmt][0]}"
    path.write_bytes(_mutate(small_photos[fmt], random.Random(seed)))
    _prepare_compact(path)


def test_a_folder_of_mutants_gets_exactly_one_answer_each(small_photos, tmp_path):
    rng = random.Random(19)
    names = []
    for fmt, data in sorted(small_photos.items()):
        suffix = FORMATS[fmt][0]
        for i in range(5):
            (tmp_path / f"{fmt.lower()}{i}{suffix}").write_bytes(data if i == 0 else _mutate(data, rng))
            names.append(f"{fmt.lower()}{i}{suffix}")
    (tmp_path / "rle_hang.bmp").write_bytes(RLE_BMP_HANG)
    names = sorted([*names, "rle_hang.bmp"])
    classifier = Classifier.load("compact")
    answers = list(classifier.classify_many(sorted(tmp_path.iterdir()), workers=2))
    assert [Path(a.path).name for a in answers] == names
    assert sum(isinstance(a, Failure) for a in answers) >= 1 and sum(isinstance(a, Prediction) for a in answers) >= 6
    result = runner.invoke(app, ["classify", str(tmp_path), "--model", "compact", "--format", "json"])
    assert result.exit_code == 1, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["path"]).name for r in records] == names


def test_rle_bmp_above_its_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    def never(*args):
        raise AssertionError("the Python RLE decoder ran")

    monkeypatch.setattr(BmpImagePlugin.BmpRleDecoder, "decode", never)
    (tmp_path / "hang.bmp").write_bytes(RLE_BMP_HANG)
    with pytest.raises(ImageError, match="run-length-encoded BMP"):
        prepare(tmp_path / "hang.bmp", (96, 96))


def _with_tiff_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (2, 2)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd : ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        tag = struct.unpack("<H", data[entry : entry + 2])[0]
        if tag in (256, 257):  # ImageWidth, ImageLength as LONG
            data[entry + 2 : entry + 12] = struct.pack("<HII", 4, 1, width if tag == 256 else height)
    return bytes(data)


def _with_bytes(fmt: str, offset: int, packed: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB" if fmt != "GIF" else "P", (2, 2)).save(buffer, fmt)
    data = bytearray(buffer.getvalue())
    data[offset : offset + len(packed)] = packed
    return bytes(data)


def test_huge_or_empty_declared_sizes_are_refused_in_every_format(tmp_path):
    cases = {
        "huge.tiff": (_with_tiff_size(100_000, 100_000), "decompression bomb"),
        "huge.gif": (_with_bytes("GIF", 6, struct.pack("<HH", 65535, 65535)), "decompression bomb"),
        "huge.bmp": (_with_bytes("BMP", 18, struct.pack("<ii", 30000, 30000)), "decompression bomb"),
        "zero.tiff": (_with_tiff_size(0, 5), "not an image"),
        "zero.bmp": (_with_bytes("BMP", 18, struct.pack("<ii", 0, 3)), "not an image"),
    }
    _bomb_png(tmp_path / "huge.png", 9000, 9000)  # above MAX_PIXELS, below Pillow's own limit
    cases["huge.png"] = ((tmp_path / "huge.png").read_bytes(), "decompression bomb")
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageError, match=message):
            prepare(tmp_path / name, (96, 96))


def test_images_without_pixels_are_refused():
    with pytest.raises(ImageError, match="no pixels"):
        prepare(Image.new("RGB", (0, 0)), (96, 96))
    with pytest.raises(ImageError, match="no pixels"):
        prepare(np.zeros((0, 4, 3), np.uint8), (96, 96))


def test_other_formats_are_not_decoded(tmp_path):
    """Only JPEG, PNG, WebP, BMP, GIF and TIFF: never Ghostscript for EPS, nor the rarely used parsers."""
    (tmp_path / "a.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    for fmt in ("PPM", "ICO", "TGA"):
        Image.new("RGB", (16, 16)).save(tmp_path / f"a.{fmt.lower()}", fmt)
    for path in tmp_path.iterdir():
        with pytest.raises(ImageError, match="not an image catdog can decode"):
            prepare(path, (96, 96))


def test_odd_exif_orientations_and_float_pixels_decode_quietly(tmp_path):
    for value in (0, 9, 65535):
        exif = Image.Exif()
        exif[0x0112] = value
        Image.new("RGB", (4, 3), "red").save(tmp_path / f"o{value}.jpg", exif=exif.tobytes())
    nan = np.full((4, 4), np.nan, np.float32)
    nan[0, 0] = np.inf
    Image.fromarray(nan, mode="F").save(tmp_path / "nan.tiff")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from casting NaN, no "Corrupt EXIF" UserWarning
        for path in tmp_path.iterdir():
            assert _prepare_compact(path) is not None, path


def test_parser_slips_inside_pillow_become_image_errors_but_our_bugs_stay_visible(awkward, monkeypatch):
    # Reading the EXIF (for its orientation) is the last step of every decode.
    monkeypatch.setattr(Image.Image, "getexif", lambda img: _binary.i8(b""))  # IndexError in PIL
    with pytest.raises(ImageError, match="truncated or corrupt"):
        prepare(awkward["good_cat"], (96, 96))

    def our_bug(img):
        raise TypeError("a bug of ours")

    monkeypatch.setattr(Image.Image, "getexif", our_bug)
    with pytest.raises(TypeError, match="a bug of ours"):
        prepare(awkward["good_cat"], (96, 96))
