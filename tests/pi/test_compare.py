"""pi.compare: an emulated run against the x86 run, photo by photo, in quantization steps."""

from __future__ import annotations

import json

from pi.compare import MAX_STEPS, compare, photo_key, read_records

STEP = 1 / 256


def record(path: str, dog: float) -> dict:
    return {"path": path, "label": "dog" if dog >= 0.5 else "cat", "scores": {"cat": 1 - dog, "dog": dog}}


def lines(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def test_photos_match_by_their_place_in_the_set_not_the_mount():
    assert photo_key("/data/val/cat/cat.1.jpg") == photo_key("/work/shared/datasets/catdog/val/cat/cat.1.jpg")
    text = lines(record("/data/val/cat/cat.1.jpg", 0.1), {"path": "/data/val/cat/bad.jpg", "error": "x"})
    assert list(read_records(text)) == ["val/cat/cat.1.jpg"]  # failures are not answers


def test_identical_runs_agree_exactly():
    ref = read_records(lines(record("/x/val/cat/a.jpg", 10 * STEP), record("/x/val/dog/b.jpg", 250 * STEP)))
    result = compare(ref, ref, STEP)
    assert (result.photos, result.same_label, result.exact, result.max_steps) == (2, 2, 2, 0) and result.ok


def test_differences_are_counted_in_steps_and_bounded():
    ref = read_records(lines(record("/x/val/cat/a.jpg", 10 * STEP)))
    run = read_records(lines(record("/y/val/cat/a.jpg", 13 * STEP)))
    result = compare(run, ref, STEP)
    assert result.max_steps == 3 and result.exact == 0 and result.ok
    far = read_records(lines(record("/y/val/cat/a.jpg", (10 + MAX_STEPS + 1) * STEP)))
    assert not compare(far, ref, STEP).ok


def test_a_label_may_flip_only_within_rounding_of_the_threshold():
    ref = read_records(lines(record("/x/val/dog/a.jpg", 129 * STEP)))  # just above 0.5
    near = read_records(lines(record("/y/val/dog/a.jpg", 127 * STEP)))
    result = compare(near, ref, STEP)
    assert result.same_label == 0 and result.near_threshold_only and result.ok
    ref_far = read_records(lines(record("/x/val/dog/a.jpg", 200 * STEP)))
    flipped = read_records(lines({"path": "/y/val/dog/a.jpg", "label": "cat", "scores": {"cat": 0.2, "dog": 200 * STEP}}))
    assert not compare(flipped, ref_far, STEP).near_threshold_only


def test_a_missing_photo_fails_the_comparison():
    ref = read_records(lines(record("/x/val/cat/a.jpg", 0.1), record("/x/val/cat/b.jpg", 0.1)))
    run = read_records(lines(record("/y/val/cat/a.jpg", 0.1)))
    result = compare(run, ref, STEP)
    assert result.missing == ("val/cat/b.jpg",) and not result.ok
