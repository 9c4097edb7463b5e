"""Every awkward input in one run: good photos still answered, each bad one one clear line, exit 1."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import catdog.edge.preprocess
from catdog.edge import Classifier
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
    awkward, bundled_model, locked_file_unreadable
):
    order = ["good_cat", *BROKEN, *DECODABLE[:-2], "good_dog"]
    args = ["classify", *[str(awkward[k]) for k in order], "--model", str(bundled_model), "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    records = {r["path"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert len(records) == len(order)
    by_key = {k: records[str(awkward[k])] for k in order}
    for key, message in BROKEN.items():
        assert set(by_key[key]) == {"path", "error"}, key
        assert message in by_key[key]["error"], (key, by_key[key])
        assert "\n" not in by_key[key]["error"]
    model = Classifier.load(bundled_model)
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
