"""edge.learn: a new head learned on the device from the base model's features is a valid model that answers as the
numpy head does, with new classes, without TensorFlow; a failed learn writes nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from catdog.edge.classify import Classifier
from catdog.edge.contract import contract_for_model, sidecar_path
from catdog.edge.errors import ModelError
from catdog.edge.familiarity import familiarity, fit_familiarity, rescaling, unit
from catdog.edge.head import search_head
from catdog.edge.learn import LearnConfig, LearnError, learn, softmax_kernel
from catdog.edge.modelcheck import check_model
from catdog.edge.std_metadata import read_standard_metadata
from tests.conftest import ROOT
from tests.edge.test_runtimes_agree import legacy_edge  # noqa: F401 (a fixture: tflite-runtime 2.14's catdog-edge)
from tests.photo_trees import three_class_tree

PER_CLASS = 12


@pytest.fixture(scope="session")
def three_classes(data_dir, tmp_path_factory) -> Path:
    """cat/, dog/ and mono/ (grayscale copies of other cats and dogs): a class the base model never had."""
    tree = three_class_tree(data_dir, tmp_path_factory.mktemp("learn") / "photos", PER_CLASS, "train")
    (tree / "inbox").mkdir()  # frames waiting for a label, and a hidden folder: never classes
    (tree / ".trash").mkdir()
    first = sorted((tree / "cat").iterdir())[0]
    for folder in ("inbox", ".trash"):
        (tree / folder / "frame.jpg").write_bytes(first.read_bytes())
    return tree


@pytest.fixture(scope="session")
def learned(three_classes, bundled_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("learned") / "learned.tflite"
    result = learn(LearnConfig(data_dir=three_classes, out_path=out, model=bundled_model, seed=3))
    return result


def test_a_learned_model_is_valid_and_names_its_new_classes(learned, val_photos):
    content = learned.out_path.read_bytes()
    contract = contract_for_model(learned.out_path, content)
    assert contract.labels == ("cat", "dog", "mono") == learned.labels
    assert learned.photos == {"cat": PER_CLASS, "dog": PER_CLASS, "mono": PER_CLASS}
    check_model(content, contract, str(learned.out_path))
    meta = read_standard_metadata(learned.out_path)  # what MediaPipe and the Task Library read
    assert meta is not None and meta.labels == ("cat", "dog", "mono")
    assert sidecar_path(learned.out_path).is_file() and contract.training["command"] == "catdog-edge learn"
    classifier = Classifier.load(learned.out_path)
    assert classifier.contract.presence is not None and classifier.contract.features is not None
    prediction = classifier.classify(val_photos["dog"][0])
    assert set(prediction.scores) == {"cat", "dog", "mono"}
    assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=0.02)
    assert learned.agreement == 1.0


@pytest.fixture(scope="session")
def base_features(three_classes, bundled_model) -> tuple[np.ndarray, np.ndarray]:
    """The base's features of the learned photos (N, 1280) and their labels, as learn computes them."""
    base = Classifier.load(bundled_model)
    folders = sorted(p for p in three_classes.iterdir() if p.is_dir() and p.name not in ("inbox", ".trash"))
    paths = [(path, i) for i, folder in enumerate(folders) for path in sorted(folder.iterdir())]
    return np.stack([base.features(base.preprocess(path)) for path, _ in paths]), np.array([i for _, i in paths])


def test_its_answers_are_the_numpy_heads_within_quantization_error(learned, base_features, bundled_model, val_photos):
    """The head learn fits, recomputed here from the base's features, against the written int8 model."""
    x, y = base_features
    search = search_head(x, y, 3, seed=3)
    assert search.l2 == learned.l2
    base, model = Classifier.load(bundled_model), Classifier.load(learned.out_path)
    photos = val_photos["cat"][:6] + val_photos["dog"][:6]
    features = np.stack([base.features(base.preprocess(p)) for p in photos])
    expected = softmax_kernel(search.head).probabilities(features)
    got = np.stack([model.predict(model.preprocess(p)) for p in photos])
    assert np.array_equal(np.argmax(got, axis=1), np.argmax(expected, axis=1))
    assert np.max(np.abs(got - expected)) < 0.05  # int8 weights and a 1/256 output step


def test_its_presence_score_is_the_numpy_familiarity_within_quantization_error(learned, base_features, bundled_model,
                                                                              val_photos, nothing_photos):
    x, y = base_features
    centroids, oof = fit_familiarity(x, y, seed=3)
    threshold, width = rescaling(oof)
    base, model = Classifier.load(bundled_model), Classifier.load(learned.out_path)
    photos = val_photos["cat"][:4] + nothing_photos[:4]
    features = np.stack([base.features(base.preprocess(p)) for p in photos])
    expected = (familiarity(unit(features), centroids) - threshold) / width
    got = np.array([model.classify(p).presence for p in photos])
    step = model.contract.presence.quantization.scale
    # the int8 unit features (L2_NORMALIZATION: 1/128 a step, an element ~0.03) move a cosine by 0.01-0.02, a
    # quarter to a half of a width (measured: 0.42 here; the exported base model differs from Keras by up to 2.6)
    diff = np.max(np.abs(got - np.clip(expected, *model.contract.presence.quantization.dequantize([0, 255]))))
    assert diff < 0.5 + step


def test_the_learned_presence_score_is_the_familiarity_of_new_centroids(learned, val_photos, nothing_photos):
    model = Classifier.load(learned.out_path)
    part = model.contract.presence.calibration["parts"][0]
    assert model.contract.presence.method == "familiarity" and part["units"] >= 1
    scores = [model.classify(p).presence for p in val_photos["cat"][:5] + nothing_photos[:5]]
    assert all(s is not None and np.isfinite(s) for s in scores)
    # photos like the training ones score higher than empty scenes, on average
    assert np.mean(scores[:5]) > np.mean(scores[5:])


def test_tflite_runtime_2_14_reads_a_learned_model_and_answers_alike(learned, legacy_edge, val_photos):
    import json

    photos = val_photos["cat"][:4] + val_photos["dog"][:4]
    result = subprocess.run([str(legacy_edge), "classify", *map(str, photos), "-m", str(learned.out_path), "-f", "json",
                             "--runtime", "tflite-runtime"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    legacy = [json.loads(line) for line in result.stdout.splitlines()]
    here = Classifier.load(learned.out_path)
    for photo, other in zip(photos, legacy, strict=True):
        mine = here.classify(photo)
        assert other["label"] == mine.label
        assert max(abs(other["scores"][k] - v) for k, v in mine.scores.items()) <= 0.02


def test_empty_scene_photos_in_none_move_the_presence_threshold(three_classes, bundled_model, nothing_photos, tmp_path):
    data = tmp_path / "photos"
    for folder in ("cat", "dog"):
        (data / folder).mkdir(parents=True)
        for path in sorted((three_classes / folder).iterdir()):
            (data / folder / path.name).write_bytes(path.read_bytes())
    (data / "none").mkdir()
    for path in nothing_photos[:8]:
        (data / "none" / path.name).write_bytes(path.read_bytes())
    result = learn(LearnConfig(data_dir=data, out_path=tmp_path / "m.tflite", model=bundled_model, seed=3))
    assert result.labels == ("cat", "dog")  # none/ is not a class
    presence = Classifier.load(result.out_path).contract.presence
    assert presence.calibration["none_photos"] == 8 and presence.calibration["none_dir"] == "none"
    assert presence.threshold != 0.0 and presence.calibration["rule"]


def test_a_learned_model_can_be_the_base_of_the_next_learn(learned, three_classes, tmp_path):
    again = learn(LearnConfig(data_dir=three_classes, out_path=tmp_path / "again.tflite", model=learned.out_path,
                              seed=3, presence=False))
    assert again.labels == learned.labels and again.agreement == 1.0
    assert Classifier.load(again.out_path).contract.presence is None


@pytest.mark.parametrize("case", ["missing folder", "one class", "unreadable base", "base without features"])
def test_a_failed_learn_leaves_nothing_at_out(case, three_classes, bundled_model, compact_model, tmp_path):
    data, model = three_classes, bundled_model
    if case == "missing folder":
        data = tmp_path / "nowhere"
    elif case == "one class":
        data = tmp_path / "one"
        (data / "cat").mkdir(parents=True)
        for path in sorted((three_classes / "cat").iterdir())[:3]:
            (data / "cat" / path.name).write_bytes(path.read_bytes())
    elif case == "unreadable base":
        model = tmp_path / "broken.tflite"
        model.write_bytes(bundled_model.read_bytes()[:5000])
    else:
        model = compact_model
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises((LearnError, ModelError)) as failed:
        learn(LearnConfig(data_dir=data, out_path=out_dir / "model.tflite", model=model))
    assert "\n" not in str(failed.value)
    assert list(out_dir.iterdir()) == []  # no model, no sidecar, no temporary file


def test_learn_runs_without_tensorflow(three_classes, bundled_model, tmp_path):
    out = tmp_path / "model.tflite"
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules['tensorflow'] = None  # importing it now fails
        sys.modules['keras'] = None
        from catdog.edge.cli import run
        try:
            run(['learn', {str(three_classes)!r}, '--model', {str(bundled_model)!r}, '--out', {str(out)!r}, '--no-presence'])
        except SystemExit as exc:
            heavy = sorted(m for m in sys.modules if m.startswith('catdog.trainer'))
            assert not heavy, heavy
            raise
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "cat, dog, mono" in result.stdout
    assert Classifier.load(out).contract.labels == ("cat", "dog", "mono")
