"""edge.camera.smoothing: a label is reported after a supermajority of the window, and does not flicker."""

from __future__ import annotations

import numpy as np
import pytest

from catdog.edge.camera.smoothing import Smoother
from catdog.edge.errors import CatDogError

LABELS = ("cat", "dog")


def _feed(smoother: Smoother, p_dogs: list[float]) -> list[tuple[int, str]]:
    """Feed frames by p(dog); return (frame, label) for each change."""
    changes = []
    for i, p in enumerate(p_dogs):
        change = smoother.update(int(p >= 0.5), np.array([1 - p, p]))
        if change is not None:
            changes.append((i, change.label))
    return changes


def test_needed_votes_make_a_dead_band():
    assert [Smoother(LABELS, k).needed for k in (1, 2, 3, 4, 5, 6, 9, 10)] == [1, 2, 2, 3, 4, 4, 6, 7]
    assert Smoother(LABELS, 5, agree=0.51).needed == 3


def test_label_appears_after_enough_votes_and_switches_once():
    changes = _feed(Smoother(LABELS, 5), [0.1] * 6 + [0.9] * 6)
    assert changes == [(3, "cat"), (9, "dog")]


def test_odd_frames_do_not_flicker():
    # cat with one or two stray dog frames in every window of five: never reported as dog
    noisy = [0.1, 0.1, 0.1, 0.1, 0.9, 0.1, 0.9, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.1]
    assert _feed(Smoother(LABELS, 5), noisy) == [(3, "cat")]
    # without smoothing the same frames flip the label eight times
    assert len(_feed(Smoother(LABELS, 1), noisy)) == 1 + 8


def test_a_split_window_keeps_the_current_label():
    smoother = Smoother(LABELS, 4)  # needs 3 of 4
    assert _feed(smoother, [0.9, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1]) == [(2, "dog")]
    assert smoother.current.label == "dog"


def test_min_confidence_gates_the_change_and_confidence_is_the_window_mean():
    smoother = Smoother(LABELS, 3, min_confidence=0.8)
    assert _feed(smoother, [0.6, 0.6, 0.6, 0.95]) == []  # dog has the votes from frame 1 on, not the confidence
    change = smoother.update(1, np.array([0.05, 0.95]))
    assert change.label == "dog" and change.confidence == pytest.approx((0.6 + 0.95 + 0.95) / 3, abs=1e-6)
    smoother.update(1, np.array([0.05, 0.95]))
    assert smoother.current.confidence == pytest.approx(0.95, abs=1e-6)  # kept current for heartbeats


def test_bad_settings_are_refused():
    for kwargs in ({"window": 0}, {"agree": 0.5}, {"agree": 1.2}, {"min_confidence": 1.5}):
        with pytest.raises(CatDogError):
            Smoother(LABELS, **{"window": 5, **kwargs})
