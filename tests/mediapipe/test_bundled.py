"""MediaPipe Tasks reads the bundled models as catdog-edge does: class names, scores, labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catdog.edge.classify import Classifier
from tests.conftest import BUNDLED, COMPACT

#: Every 5th validation photo of each class (200 of 1000): the whole of val/ is benchmarks/mediapipe_agreement.py's.
STEP = 5


def sample(val_photos: dict[str, list[Path]], step: int = STEP) -> list[Path]:
    return [path for label in sorted(val_photos) for path in val_photos[label][::step]]


@pytest.mark.parametrize("model", [BUNDLED, COMPACT], ids=["default", "compact"])
def test_mediapipe_names_the_classes_and_scores_catdogs_pixels_as_catdog_does(mediapipe, val_photos, model, tmp_path):
    classifier = Classifier.load(model)
    photos = sample(val_photos, step=25)  # 40 photos
    pixels = np.stack([classifier.preprocess(path) for path in photos])
    answer = mediapipe.classify(model, tmp_path, pixels=pixels)
    assert answer["head_name"] == "probability"
    assert len(answer["results"]) == len(photos)
    for result, image in zip(answer["results"], pixels):
        assert [c["name"] for c in result] == list(classifier.contract.labels)
        ours = classifier.predict(image)
        theirs = np.array([c["score"] for c in result], dtype=np.float32)
        np.testing.assert_allclose(theirs, ours, atol=1e-5, rtol=0)
        assert int(np.argmax(theirs)) == classifier.contract.decide(ours)


#: Top-1 agreement on photo files, each model. MediaPipe decodes and resizes the photos itself (OpenCV
#: bilinear, without area averaging): from a 500-pixel photo to the default model's 224 that changes
#: almost no answer; to the compact model's 96 it aliases, and the compact model's close calls (it is 90%
#: accurate) flip. On the same pixels the two agree on every photo (the test above).
AGREEMENT = {BUNDLED: 0.99, COMPACT: 0.93}


@pytest.mark.parametrize("model", [BUNDLED, COMPACT], ids=["default", "compact"])
def test_mediapipe_agrees_with_catdog_edge_on_photo_labels(mediapipe, val_photos, model, tmp_path):
    """A centre crop below 1 is passed as MediaPipe's region of interest."""
    classifier = Classifier.load(model)
    photos = sample(val_photos)
    answer = mediapipe.classify(model, tmp_path, photos=photos, crop=classifier.contract.crop)
    ours = [p.label for p in classifier.classify_many(photos)]
    theirs = [max(result, key=lambda c: c["score"])["name"] for result in answer["results"]]
    agreement = np.mean([a == b for a, b in zip(ours, theirs)])
    assert len(theirs) == len(ours) == len(photos)
    assert agreement >= AGREEMENT[model], f"MediaPipe agrees with catdog-edge on {agreement:.3f} of {len(photos)} photos"
