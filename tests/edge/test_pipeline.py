"""plan_pipeline: workers and interpreters as a pure function of the measured cost, the cores and the overrides."""

from __future__ import annotations

import pytest

from catdog.edge.pipeline import Plan, plan_pipeline, usable_cores


def test_a_model_slower_than_its_decoding_gets_a_second_interpreter_on_two_cores():
    # EfficientNet-Lite0 here: decode ~2.2 ms, one-thread invoke ~4.5 ms. One interpreter would finish a photo
    # every 4.5 ms while two busy cores manage one every (2.2 + 4.5) / 2 = 3.35 ms.
    assert plan_pipeline(decode_ms=2.2, invoke_ms=4.5, cores=2) == Plan(workers=2, interpreters=2)


def test_a_model_cheaper_than_its_decoding_keeps_one_interpreter():
    # The compact model: decode ~1.2 ms, invoke ~0.3 ms: the invokes fit in the time the cores decode.
    assert plan_pipeline(decode_ms=1.2, invoke_ms=0.3, cores=2) == Plan(workers=2, interpreters=1)
    assert plan_pipeline(decode_ms=3.0, invoke_ms=3.0, cores=2) == Plan(workers=2, interpreters=1)  # exactly even


def test_interpreters_grow_with_the_cores_only_as_far_as_the_model_needs():
    # A Pi 4 with the default model (decode 15 ms, invoke 40 ms): 4 cores finish a photo every 13.75 ms,
    # which takes ceil(40 / 13.75) = 3 interpreters, not 4.
    assert plan_pipeline(decode_ms=15.0, invoke_ms=40.0, cores=4) == Plan(workers=4, interpreters=3)
    assert plan_pipeline(decode_ms=0.5, invoke_ms=40.0, cores=4) == Plan(workers=4, interpreters=4)
    assert plan_pipeline(decode_ms=10.0, invoke_ms=1.0, cores=8) == Plan(workers=8, interpreters=1)


def test_one_core_runs_everything_on_the_calling_thread():
    assert plan_pipeline(decode_ms=2.2, invoke_ms=4.5, cores=1) == Plan(workers=1, interpreters=1)
    assert plan_pipeline(decode_ms=2.2, invoke_ms=4.5, cores=0) == Plan(workers=1, interpreters=1)


def test_interpreter_threads_count_against_the_cores():
    # Two threads per interpreter fill both cores with one interpreter.
    assert plan_pipeline(decode_ms=2.2, invoke_ms=2.6, cores=2, threads=2) == Plan(workers=2, interpreters=1)
    assert plan_pipeline(decode_ms=2.2, invoke_ms=20.0, cores=4, threads=2) == Plan(workers=4, interpreters=2)


def test_explicit_workers_and_interpreters_are_kept():
    assert plan_pipeline(decode_ms=2.2, invoke_ms=4.5, cores=2, workers=3) == Plan(workers=3, interpreters=2)
    assert plan_pipeline(decode_ms=2.2, invoke_ms=4.5, cores=2, workers=1) == Plan(workers=1, interpreters=1)
    assert plan_pipeline(decode_ms=1.2, invoke_ms=0.3, cores=2, interpreters=2) == Plan(workers=2, interpreters=2)
    # Never more interpreters than threads to run them.
    assert plan_pipeline(decode_ms=1.0, invoke_ms=9.0, cores=2, workers=4, interpreters=6) == Plan(4, 4)


def test_a_plan_refuses_more_interpreters_than_workers():
    with pytest.raises(ValueError, match="interpreters <= workers"):
        Plan(workers=1, interpreters=2)


def test_usable_cores_is_at_least_one():
    assert usable_cores() >= 1
