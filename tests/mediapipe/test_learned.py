"""A model catdog-edge learn writes on the device: MediaPipe Tasks names its new classes and scores as catdog does."""

from __future__ import annotations

import numpy as np

from catdog.edge.classify import Classifier
from catdog.edge.learn import LearnConfig, learn
from tests.conftest import BUNDLED
from tests.photo_trees import three_class_tree


def test_mediapipe_names_the_learned_classes_and_scores_as_catdog(mediapipe, data_dir, tmp_path):
    train = three_class_tree(data_dir, tmp_path / "train", 10, "train")
    val = three_class_tree(data_dir, tmp_path / "val", 3, "val")
    out = learn(LearnConfig(data_dir=train, out_path=tmp_path / "learned.tflite", model=BUNDLED)).out_path
    classifier = Classifier.load(out)
    photos = sorted(val.glob("*/*.jpg"))
    pixels = np.stack([classifier.preprocess(path) for path in photos])
    answer = mediapipe.classify(out, tmp_path, pixels=pixels)
    assert answer["head_name"] == "probability"
    for result, image in zip(answer["results"], pixels, strict=True):
        assert [c["name"] for c in result] == ["cat", "dog", "mono"]
        theirs = np.array([c["score"] for c in result], dtype=np.float32)
        np.testing.assert_allclose(theirs, classifier.predict(image), atol=1e-5, rtol=0)
