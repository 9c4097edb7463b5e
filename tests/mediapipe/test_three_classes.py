"""A three-class model that catdog-train fits and exports: MediaPipe Tasks names its classes and scores as catdog does."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from catdog.edge.classify import Classifier
from catdog.trainer.cli import app
from tests.trainer.conftest import TINY_SIZE, three_class_tree


@pytest.fixture(scope="module")
def three_class(data_dir, tmp_path_factory):
    """(.keras path, val folder) of a tiny cat/dog/mono model (tests/trainer/test_train.py's tree)."""
    tmp = tmp_path_factory.mktemp("three")
    train = three_class_tree(data_dir, tmp / "train", 10, "train")
    val = three_class_tree(data_dir, tmp / "val", 4, "val")
    model = tmp / "three.keras"
    fit = CliRunner().invoke(app, ["fit", str(train), "--val", str(val), "--out", str(model), "--epochs", "1",
                                   "--image-size", str(TINY_SIZE), "--batch-size", "30"])
    assert fit.exit_code == 0, fit.output
    return model, val


@pytest.mark.parametrize("mode", ["int8", "none"])
def test_mediapipe_names_three_classes_and_scores_as_catdog(mediapipe, three_class, mode, tmp_path):
    keras_model, val = three_class
    out = tmp_path / f"three-{mode}.tflite"
    export = CliRunner().invoke(app, ["export", str(keras_model), "--mode", mode, "--calibration-count", "15", "--out", str(out),
                                      "--data-root", str(val.parent)])
    assert export.exit_code == 0, export.output
    classifier = Classifier.load(out)
    assert classifier.contract.labels == ("cat", "dog", "mono")
    photos = sorted(val.glob("*/*.jpg"))
    pixels = np.stack([classifier.preprocess(path) for path in photos])
    answer = mediapipe.classify(out, tmp_path, pixels=pixels)
    for result, image in zip(answer["results"], pixels, strict=True):
        assert [c["name"] for c in result] == ["cat", "dog", "mono"]
        np.testing.assert_allclose([c["score"] for c in result], classifier.predict(image), atol=1e-5, rtol=0)
    # On the photo files MediaPipe decodes and resizes itself: the labels still agree.
    on_files = mediapipe.classify(out, tmp_path, photos=photos)
    theirs = [max(result, key=lambda c: c["score"])["name"] for result in on_files["results"]]
    ours = [p.label for p in classifier.classify_many(photos)]
    assert np.mean([a == b for a, b in zip(ours, theirs, strict=True)]) >= 0.75, (ours, theirs)
