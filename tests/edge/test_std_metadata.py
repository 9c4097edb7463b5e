"""The standard TFLite metadata: written beside the catdog contract, read back, and a contract derived from it."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from catdog.edge import std_metadata
from catdog.edge.classify import Classifier
from catdog.edge.contract import contract_for_model
from catdog.edge.errors import ModelError
from catdog.edge.metadata import CONTRACT_NAME, embed_contract, read_embedded_contract, read_metadata
from catdog.edge.modelcheck import check_model
from catdog.edge.std_metadata import (
    LABELS_FILE, METADATA_NAME, ZIP_DATE, ModelInfo, derive_contract, describe, read_standard_metadata,
)
from tests.conftest import BUNDLED, COMPACT


def without_contract(model: bytes) -> bytes:
    """The model with its catdog contract entry renamed (same length), as a model from another tool has none."""
    assert model.count(CONTRACT_NAME.encode() + b"\0") >= 1
    return model.replace(CONTRACT_NAME.encode() + b"\0", b"other_metadata\0\0")


def model_maker_like(model: bytes, labels: list[str] | None, mean: float = 127.5, std: float = 127.5) -> bytes:
    """A model with only standard metadata in MediaPipe Model Maker's shape: normalization mean/std on the
    input, ImageProperties without a size, the label file on the output (when labels are given)."""
    T, F = std_metadata._Table, std_metadata._Floats
    image = T(None, None, None, (std_metadata._REF, T((std_metadata._U8, 2), (std_metadata._REF, T((std_metadata._U8, 1))))),
              (std_metadata._REF, [T((std_metadata._U8, 1), (std_metadata._REF, T((std_metadata._REF, F([mean])), (std_metadata._REF, F([std])))))]))
    files = [T((std_metadata._REF, "labels.txt"), None, (std_metadata._U8, 2))] if labels is not None else []
    output = T((std_metadata._REF, "probability"), None, None, None, None, None, (std_metadata._REF, files))
    metadata = T((std_metadata._REF, "image_classifier"), None, None,
                 (std_metadata._REF, [T(None, None, (std_metadata._REF, [image]), (std_metadata._REF, [output]))]),
                 None, None, None, (std_metadata._REF, "1.0.0"))
    model = model[: std_metadata._archive_start(model)]  # catdog's own labels archive goes
    data = std_metadata.embed_entry(without_contract(model), METADATA_NAME, std_metadata._build(metadata, b"M001"))
    return std_metadata._append_files(data, {"labels.txt": "\n".join(labels or []).encode()})


@pytest.mark.parametrize("model", [BUNDLED, COMPACT], ids=["default", "compact"])
def test_bundled_models_carry_standard_metadata_that_matches_their_contract(model):
    contract = contract_for_model(model)
    meta = read_standard_metadata(model)
    assert meta is not None and meta.labels == contract.labels == ("cat", "dog")
    assert contract.activation == "softmax" and meta.min_parser_version == "1.0.0"
    (image,) = meta.inputs
    assert (image.color, image.size_hw, image.mean, image.std) == ("RGB", contract.input_hw, (0.0,), (1.0,))
    scores, *extra = meta.outputs
    assert (scores.name, scores.label_file) == ("probability", LABELS_FILE)
    # every output after the class scores is described by the name the contract gives it (presence, features)
    named = [record.output for record in (contract.presence, contract.features) if record is not None]
    assert sorted((o.name, o.label_file) for o in extra) == sorted((name, None) for name in named)
    with zipfile.ZipFile(model) as archive:
        (member,) = archive.infolist()
        assert (member.filename, member.compress_type, member.date_time) == (LABELS_FILE, zipfile.ZIP_STORED, ZIP_DATE)
        assert archive.read(member) == b"cat\ndog"


def test_describe_is_deterministic_keeps_the_contract_and_the_answers(compact_model, val_photos):
    data = compact_model.read_bytes()
    contract = contract_for_model(compact_model)
    info = ModelInfo(name="pets", version="7", author="me", license="MIT")
    once, twice = describe(data, contract, info), describe(data, contract, info)
    assert once == twice
    meta = read_standard_metadata(once)
    assert (meta.name, meta.version, meta.author, meta.license) == ("pets", "7", "me", "MIT")
    assert "cat, dog" in meta.description
    assert read_embedded_contract(once) == read_embedded_contract(data)
    check_model(once, contract, "described")  # the structural check the edge runs on every other model
    # Describing again replaces the metadata entry and the archive: one of each.
    again = describe(once, contract)
    assert list(read_metadata(again)).count(METADATA_NAME) == 1 and again.count(b"PK\x05\x06") == 1
    assert read_standard_metadata(again).name.startswith("catdog compact")


def test_the_contract_reembedded_after_the_metadata_leaves_the_labels_readable(compact_model, tmp_path, val_photos):
    """embed_contract moves the appended archive back with the model; readers find it from its end."""
    data = compact_model.read_bytes()
    contract = contract_for_model(compact_model)
    moved = embed_contract(data, json.dumps(contract.replace(threshold=0.7).to_dict()).encode())
    assert read_standard_metadata(moved).labels == ("cat", "dog")
    path = tmp_path / "moved.tflite"
    path.write_bytes(moved)
    assert Classifier.load(path).contract.threshold == 0.7


def test_grayscale_and_sigmoid_models_cannot_be_described(compact_model):
    data, contract = compact_model.read_bytes(), contract_for_model(compact_model)
    with pytest.raises(ModelError, match="RGB image inputs only"):
        describe(data, contract.replace(color="L"))
    with pytest.raises(ModelError, match="two-unit softmax"):
        describe(data, contract.replace(activation="sigmoid"))
    with pytest.raises(ModelError, match="2 output name"):
        describe(data, contract, output_names=["presence", "familiarity"])


def test_a_model_with_only_standard_metadata_gets_a_derived_contract(compact_model, val_photos, tmp_path):
    own = Classifier.load(compact_model)
    foreign = tmp_path / "foreign.tflite"
    foreign.write_bytes(without_contract(compact_model.read_bytes()))
    assert read_embedded_contract(foreign) is None and not foreign.with_suffix(".json").exists()
    derived = Classifier.load(foreign)
    c = derived.contract
    assert (c.labels, c.input_hw, c.color, c.crop, c.activation, c.input_dtype) == (("cat", "dog"), (96, 96), "RGB", 1.0, "softmax", "uint8")
    assert c.input_quantization is None and c.output_quantization == own.contract.output_quantization
    # Fed the same pixels, the derived contract reads the model exactly as its own contract does.
    for photo in val_photos["cat"][:3] + val_photos["dog"][:3]:
        pixels = derived.preprocess(photo)
        np.testing.assert_array_equal(derived.predict(pixels), own.predict(pixels))


def test_model_maker_uint8_models_load_with_labels_from_their_metadata(compact_model, tmp_path, val_photos):
    """uint8 input: the standard readers feed raw pixels whatever the normalization says, and so does catdog."""
    path = tmp_path / "mm.tflite"
    path.write_bytes(model_maker_like(compact_model.read_bytes(), ["kitty", "puppy"]))
    classifier = Classifier.load(path)
    assert classifier.contract.labels == ("kitty", "puppy")
    assert classifier.classify(val_photos["dog"][0]).label in ("kitty", "puppy")


@pytest.mark.parametrize(
    "labels, message",
    [
        (None, "names no label file on its first output"),
        (["a", "b", "c"], "lists 3 labels for a first output of 2 scores"),
        (["a", "a"], "labels must be distinct"),
    ],
)
def test_what_the_standard_metadata_lacks_is_one_line(compact_model, tmp_path, labels, message):
    path = tmp_path / "mm.tflite"
    path.write_bytes(model_maker_like(compact_model.read_bytes(), labels))
    with pytest.raises(ModelError, match=message) as caught:
        Classifier.load(path)
    assert "\n" not in str(caught.value) and "no catdog contract" in str(caught.value)


def test_a_model_with_neither_contract_nor_standard_metadata_still_asks_for_the_contract(compact_model, tmp_path):
    path = tmp_path / "bare.tflite"
    data = without_contract(compact_model.read_bytes()).replace(METADATA_NAME.encode() + b"\0", b"OTHER_METADATA_\0")
    path.write_bytes(data)
    assert derive_contract(data, "bare") is None
    with pytest.raises(ModelError, match="model contract not found"):
        Classifier.load(path)


def test_damaged_metadata_tables_and_archives_read_as_a_result_or_a_model_error(compact_model):
    data = compact_model.read_bytes()
    raw = read_metadata(data)[METADATA_NAME]
    start = data.index(raw)
    rng = np.random.default_rng(0)
    for pos in range(start, start + len(raw)):
        damaged = bytearray(data)
        damaged[pos] ^= int(rng.integers(1, 256))
        try:
            read_standard_metadata(bytes(damaged))
        except ModelError as exc:
            assert "\n" not in str(exc)
    # Bytes that merely end like a zip archive are no archive to strip.
    for tail in (b"PK\x05\x06", b"PK\x05\x06" + bytes(18), b"PK\x05\x06" + bytes(30)):
        assert std_metadata._archive_start(b"model" + tail) == len(b"model" + tail)
    archive = data.index(b"PK\x03\x04")
    for cut in (archive + 10, len(data) - 30, len(data) - 5):
        try:
            read_standard_metadata(data[:cut])
        except ModelError as exc:
            assert "label file" in str(exc)


def test_labels_must_be_stored_not_deflated(compact_model):
    data = compact_model.read_bytes()
    model = data[: data.index(b"PK\x03\x04")]
    packed = io.BytesIO()
    packed.write(model)
    with zipfile.ZipFile(packed, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("labels.txt", "cat\ndog")
    with pytest.raises(ModelError, match="compressed"):
        read_standard_metadata(packed.getvalue())
