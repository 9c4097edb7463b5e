"""Fixtures shared by tests/edge, session-scoped: the camera tests' model loaded once, and the frames
that it labels with confidence (used by tests/edge/camera and test_cli_camera.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.edge.camera.helpers import RUN, to_frame


@pytest.fixture(scope="session")
def camera_model(compact_model):
    """The camera tests' model: the compact bundled one. They test the loop, its sources, smoothing,
    preview and sinks around whatever model it runs; every frame is an invoke, and the compact model's
    are about nine times cheaper than the default's (minutes on the emulated Pis of make test-pi)."""
    return compact_model


@pytest.fixture(scope="session")
def classifier(camera_model):
    """The camera tests' model, loaded once."""
    from catdog.edge.classify import Classifier

    return Classifier.load(camera_model)


@pytest.fixture(scope="session")
def confident_frames(classifier, val_photos) -> dict[str, list[np.ndarray]]:
    """RUN frames per label that the bundled model labels correctly with confidence >= 0.8.

    The compact model is right on about 90% of val photos; picking frames it is sure about makes
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
