"""Fixtures shared by tests/edge, session-scoped: the bundled model loaded once, and the camera tests'
frames that it labels with confidence (used by tests/edge/camera and test_cli_camera.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.edge.camera.helpers import RUN, to_frame


@pytest.fixture(scope="session")
def classifier(bundled_model):
    """The bundled model, loaded once."""
    from catdog.edge.classify import Classifier

    return Classifier.load(bundled_model)


@pytest.fixture(scope="session")
def confident_frames(classifier, val_photos) -> dict[str, list[np.ndarray]]:
    """RUN frames per label that the bundled model labels correctly with confidence >= 0.8.

    The bundled model is right on about 78% of val photos; picking frames it is sure about makes
    the camera tests about the loop (order, smoothing, counts), not about the model's accuracy.
    """
    chosen: dict[str, list[np.ndarray]] = {}
    for label, paths in val_photos.items():
        frames = []
        for path in paths:
            frame = to_frame(path)
            p = classifier.classify(frame)
            if p.label == label and p.confidence >= 0.8:
                frames.append(frame)
                if len(frames) == RUN:
                    break
        assert len(frames) == RUN, f"only {len(frames)} confident {label} photos in val/"
        chosen[label] = frames
    return chosen
