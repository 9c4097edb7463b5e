"""Classifier on the bundled model: real photos, scores, failures, contract checks on load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catdog.edge import Classifier, Failure, ModelError, Prediction
from catdog.edge.pipeline import Plan
from tests.conftest import copy_model_with_contract


def test_bundled_model_classifies_real_photos(bundled_model, val_photos):
    classifier = Classifier.load(bundled_model)
    photos = val_photos["cat"][:25] + val_photos["dog"][:25]
    truth = ["cat"] * 25 + ["dog"] * 25
    predictions = [classifier.classify(p) for p in photos]
    assert all(isinstance(p, Prediction) for p in predictions)
    accuracy = np.mean([p.label == t for p, t in zip(predictions, truth)])
    assert accuracy >= 0.75, accuracy
    # Two uint8 softmax scores, each rounded to the output's quantization step: their sum is 1 within two steps.
    step = classifier.contract.output_quantization.scale
    for p in predictions:
        assert abs(sum(p.scores.values()) - 1.0) <= 2 * step + 1e-6
        assert p.confidence == max(p.scores.values()) and p.ms > 0


def test_classify_many_keeps_going_after_a_bad_photo(bundled_model, val_photos, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_text("not a photo")
    results = list(Classifier.load(bundled_model).classify_many([val_photos["cat"][0], bad, val_photos["dog"][0]]))
    assert [type(r) for r in results] == [Prediction, Failure, Prediction]
    assert "not an image" in results[1].error


def test_contract_that_does_not_match_the_model_is_refused(bundled_model, tmp_path):
    model = copy_model_with_contract(bundled_model, tmp_path / "m.tflite", {"input_hw": [32, 32]})
    with pytest.raises(ModelError, match="input shape"):
        Classifier.load(model)


def test_a_lone_tflite_knows_its_contract_and_a_disagreeing_sidecar_is_reported(bundled_model, tmp_path, val_photos):
    lone = tmp_path / "lone.tflite"
    copy_model_with_contract(bundled_model, lone, {}, sidecar=False)
    assert not lone.with_suffix(".json").exists()
    classifier = Classifier.load(lone)
    assert classifier.contract.labels == ("cat", "dog")
    bundled = Classifier.load(bundled_model)
    assert classifier.classify(val_photos["cat"][0]).scores == bundled.classify(val_photos["cat"][0]).scores
    sidecar = json.loads(json.dumps(classifier.contract.to_dict()))
    sidecar["labels"] = ["dog", "cat"]
    lone.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.warns(UserWarning, match="disagrees with the contract embedded.*labels"):
        assert Classifier.load(lone).contract.labels == ("cat", "dog")


def test_missing_and_invalid_models(tmp_path):
    with pytest.raises(ModelError, match="model not found"):
        Classifier.load(tmp_path / "absent.tflite")
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"definitely not a flatbuffer" * 10)
    with pytest.raises(ModelError, match="not a valid TFLite flatbuffer"):
        Classifier.load(fake)


@pytest.mark.parametrize("model", ["bundled_model", "compact_model"])
def test_workers_and_interpreter_copies_keep_input_order_and_results(model, val_photos, tmp_path, request):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    paths = val_photos["cat"][30:36] + [bad] + val_photos["dog"][30:46]
    classifier = Classifier.load(request.getfixturevalue(model))
    serial = list(classifier.classify_many(paths, workers=1))
    assert classifier.last_plan == Plan(workers=1, interpreters=1)
    assert [r.path for r in serial] == [str(p) for p in paths] and isinstance(serial[6], Failure)
    for workers, interpreters in ((3, 1), (3, 2), (2, 2), (None, None)):  # (None, None): chosen from the measured cost
        parallel = list(classifier.classify_many(paths, workers=workers, interpreters=interpreters))
        assert [r.path for r in parallel] == [str(p) for p in paths]
        assert [getattr(r, "scores", None) for r in parallel] == [getattr(r, "scores", None) for r in serial]
        assert isinstance(parallel[6], Failure)
        if workers is not None:
            assert classifier.last_plan == Plan(workers=workers, interpreters=interpreters)


def test_classify_many_chooses_its_plan_from_the_measured_cost(compact_model, val_photos, monkeypatch):
    import catdog.edge.classify as classify

    seen = []

    def plan(decode_ms, invoke_ms, cores, threads, workers, interpreters):
        seen.append((decode_ms, invoke_ms, cores, threads, workers, interpreters))
        return Plan(workers=2, interpreters=2)

    monkeypatch.setattr(classify, "plan_pipeline", plan)
    monkeypatch.setattr(classify, "usable_cores", lambda: 7)
    classifier = Classifier.load(compact_model, threads=1)
    photos = val_photos["cat"][:10]
    results = list(classifier.classify_many(photos))
    assert [r.path for r in results] == [str(p) for p in photos]
    (decode_ms, invoke_ms, cores, threads, workers, interpreters), = seen  # chosen once, after the probe
    assert decode_ms > 0 and invoke_ms > 0 and (cores, threads, workers, interpreters) == (7, 1, None, None)
    assert classifier.last_plan == Plan(workers=2, interpreters=2)
    seen.clear()
    few = photos[: classify.PROBE - 1]  # all classified while probing: nothing left to plan for
    assert [r.path for r in classifier.classify_many(few)] == [str(p) for p in few]
    assert seen == [] and classifier.last_plan == Plan(workers=1, interpreters=1)


def test_a_model_file_that_changes_mid_run_leaves_the_run_on_its_own_interpreter(compact_model, val_photos, tmp_path):
    model = copy_model_with_contract(compact_model, tmp_path / "m.tflite", {})
    classifier = Classifier.load(model)
    model.write_bytes(b"not a model any more")
    photos = val_photos["dog"][:8]
    results = list(classifier.classify_many(photos, workers=2, interpreters=2))
    assert [type(r) for r in results] == [Prediction] * 8
    assert [r.label for r in results] == [classifier.classify(p).label for p in photos]


def test_python_api_accepts_paths_pil_images_and_arrays(bundled_model, val_photos):
    from PIL import Image

    classifier = Classifier.load(bundled_model)
    path = val_photos["cat"][40]
    image = Image.open(path)
    by_path = Classifier.load(bundled_model, draft=False).classify(path)
    by_image = classifier.classify(image)
    by_array = classifier.classify(np.asarray(image.convert("RGB")))
    assert by_path.path == str(path) and by_image.path is None
    assert by_path.scores == by_image.scores == by_array.scores


def test_flip_averages_the_photo_and_its_mirror_image(compact_model, val_photos):
    plain = Classifier.load(compact_model)
    flipped = Classifier.load(compact_model, flip=True)
    for path in val_photos["cat"][:5] + val_photos["dog"][:5]:
        pixels = plain.preprocess(path)
        mirror = np.ascontiguousarray(pixels[:, ::-1])
        expected = (plain.predict(pixels) + plain.predict(mirror)) / 2
        np.testing.assert_allclose(flipped.predict(pixels), expected, atol=1e-6)
        np.testing.assert_allclose(flipped.predict(mirror), flipped.predict(pixels), atol=1e-6)  # mirror-invariant
        prediction = flipped.classify(path)
        assert prediction.scores == pytest.approx(dict(zip(plain.contract.labels, expected.tolist())), abs=1e-6)


# --- "none": the default model's presence score -------------------------------------------------------


def test_the_default_model_answers_none_for_empty_scenes_and_a_label_for_cats_and_dogs(
        bundled_model, val_photos, nothing_photos):
    classifier = Classifier.load(bundled_model)
    empty = [classifier.classify(p) for p in nothing_photos[::25]]  # 21 photos over every kind of scene
    assert sum(p.label == "none" for p in empty) >= len(empty) - 1, [(p.path, p.presence) for p in empty]
    for p in empty:
        assert p.present is (p.label != "none") and p.index == (2 if p.label == "none" else p.index)
        assert 0.0 <= p.confidence <= 1.0 and set(p.scores) == {"cat", "dog"}
    animals = [classifier.classify(p) for p in val_photos["cat"][:10] + val_photos["dog"][:10]]
    assert sum(p.label == "none" for p in animals) <= 1
    assert all(p.presence > classifier.presence_threshold for p in animals if p.label != "none")


def test_no_presence_forces_a_label_and_the_threshold_can_be_moved(bundled_model, nothing_photos, val_photos):
    empty, cat = nothing_photos[0], val_photos["cat"][0]
    forced = Classifier.load(bundled_model, presence=False).classify(empty)
    assert forced.label in ("cat", "dog") and forced.present is None and forced.presence is None
    assert "present" not in forced.to_dict()
    never = Classifier.load(bundled_model, presence_threshold=-1e9)
    always = Classifier.load(bundled_model, presence_threshold=1e9)
    assert never.classify(empty).label == forced.label and never.classify(empty).present is True
    assert always.classify(cat).label == "none"
    default = Classifier.load(bundled_model).classify(cat)
    assert default.to_dict()["present"] is True and default.to_dict()["presence"] == pytest.approx(default.presence, abs=1e-6)


def test_presence_threshold_needs_a_model_with_a_presence_score(compact_model):
    with pytest.raises(ModelError, match="no presence score"):
        Classifier.load(compact_model, presence_threshold=3.0)


def test_flip_averages_the_presence_score_too(bundled_model, val_photos):
    plain, flipped = Classifier.load(bundled_model), Classifier.load(bundled_model, flip=True)
    pixels = plain.preprocess(val_photos["dog"][0])
    mirror = plain.outputs(np.ascontiguousarray(pixels[:, ::-1]))
    both = flipped.outputs(pixels)
    assert both.presence == pytest.approx((plain.outputs(pixels).presence + mirror.presence) / 2)


def test_copies_of_the_interpreter_keep_the_presence_options(bundled_model, val_photos):
    photos = val_photos["cat"][:4] + val_photos["dog"][:4]
    always_none = Classifier.load(bundled_model, presence_threshold=1e9)
    answers = list(always_none.classify_many(photos, workers=2, interpreters=2))
    assert always_none.last_plan.interpreters == 2 and [a.label for a in answers] == ["none"] * len(photos)
    forced = Classifier.load(bundled_model, presence=False)
    answers = list(forced.classify_many(photos, workers=2, interpreters=2))
    assert all(a.present is None for a in answers) and {a.label for a in answers} <= {"cat", "dog"}
