"""edge.signature: outputs found by the names the converter keeps, and the class scores kept as output 0."""

from __future__ import annotations

import pytest

from catdog.edge.classify import Classifier
from catdog.edge.errors import ModelError
from catdog.edge.runtime import find_runtime, load_interpreter
from catdog.edge.signature import ordered_output_names, first_output, output_names
from tests.conftest import copy_model_with_contract


def test_the_default_model_names_its_outputs_and_keeps_the_class_scores_first(bundled_model):
    names = output_names(bundled_model.read_bytes())
    assert set(names) == {"scores", "presence", "features"}
    assert output_names(bundled_model, str(bundled_model)) == names  # mapped from the path: the same
    assert ordered_output_names(bundled_model.read_bytes())[0] == "scores"
    outputs = load_interpreter(bundled_model, find_runtime()).get_output_details()
    # A catdog-edge release from before named outputs reads output 0: it must be the class scores.
    assert [d["index"] for d in outputs][0] == names["scores"]


def test_outputs_are_found_by_name_whatever_their_order(bundled_model, val_photos, nothing_photos, tmp_path):
    moved = tmp_path / "moved.tflite"
    moved.write_bytes(first_output(bundled_model.read_bytes(), "presence"))
    copy_model_with_contract(moved, moved, {})
    outputs = load_interpreter(moved, find_runtime()).get_output_details()
    assert outputs[0]["index"] == output_names(moved.read_bytes())["presence"]  # the order really changed
    reordered, original = Classifier.load(moved), Classifier.load(bundled_model)
    for photo in (val_photos["cat"][0], val_photos["dog"][0], nothing_photos[0]):
        a, b = reordered.classify(photo), original.classify(photo)
        assert (a.label, a.scores, a.presence) == (b.label, b.scores, b.presence)


def test_an_output_the_signature_lacks_is_a_clear_error(bundled_model, tmp_path):
    with pytest.raises(ModelError, match="no output 'embeddings'"):
        first_output(bundled_model.read_bytes(), "embeddings")
    wrong = copy_model_with_contract(bundled_model, tmp_path / "wrong.tflite", {"output_name": "logits"})
    with pytest.raises(ModelError, match="names the output 'logits'"):
        Classifier.load(wrong)


def test_models_from_before_named_outputs_are_read_by_position(compact_model):
    classifier = Classifier.load(compact_model)
    assert classifier.contract.output_name is None and classifier.presence is None
    assert classifier.output_detail["index"] == classifier.interpreter.get_output_details()[0]["index"]
