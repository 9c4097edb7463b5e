"""pi.run's pure parts: the fixed photo subset, the Pi /proc/cpuinfo, pytest's report counts, the slots."""

from __future__ import annotations

import threading

import pytest

from pi.chroot import Stopped
from pi.run import Slots, cpuinfo_file, junit_counts, pick_photos, spread
from pi.targets import TARGETS
from tests.edge.camera.helpers import PATIENCE_S, wait_for


def test_the_photo_subset_is_fixed_spread_and_balanced(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / "val" / label).mkdir(parents=True)
        for i in range(500):
            (tmp_path / "val" / label / f"{label}.{4001 + i}.jpg").touch()
    chosen = pick_photos(tmp_path, 200)
    assert len(chosen) == 200 and chosen == pick_photos(tmp_path, 200)
    assert chosen[:2] == ["val/cat/cat.4001.jpg", "val/cat/cat.4006.jpg"] and chosen[100] == "val/dog/dog.4001.jpg"
    assert len(pick_photos(tmp_path, 0)) == 1000


def test_each_target_gets_a_pi_cpuinfo_with_one_block_per_core(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 3)
    for target in TARGETS:
        text = cpuinfo_file(target, tmp_path).read_text()
        assert [line for line in text.splitlines() if line.startswith("processor")] == [
            "processor\t: 0", "processor\t: 1", "processor\t: 2"]
        assert "Raspberry Pi" in text and "{n}" not in text and "---" not in text


def test_junit_counts_name_the_failing_tests(tmp_path):
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4" time="12.34">'
        '<testcase classname="tests.edge.test_a" name="test_ok"/><testcase classname="tests.edge.test_a" name="test_ok2"/>'
        '<testcase classname="tests.edge.test_b" name="test_bad"><failure message="x"/></testcase>'
        '<testcase classname="tests.edge.test_c" name="test_skip"><skipped message="y"/></testcase>'
        "</testsuite></testsuites>")
    counts = junit_counts(report)
    assert (counts["passed"], counts["failed"], counts["skipped"], counts["seconds"]) == (2, 1, 1, 12.3)
    assert counts["failing"] == ["tests.edge.test_b::test_bad"]


def test_slots_let_n_steps_in_at_once_and_a_freed_slot_goes_to_the_lowest_rank():
    slots = Slots(2)
    inside, release, order = threading.Barrier(3, timeout=PATIENCE_S), threading.Event(), []

    def step(rank: tuple, name: str, hold: bool) -> None:
        with slots.hold(rank):
            order.append(name)
            if hold:  # the first two are inside together, then keep their slots until released
                inside.wait()
                assert release.wait(PATIENCE_S)

    first = [threading.Thread(target=step, args=((5,), name, True)) for name in ("a", "b")]
    for thread in first:
        thread.start()
    inside.wait()  # both holders are in: two slots
    later = [threading.Thread(target=step, args=(rank, name, False)) for rank, name in
             (((3, 1), "rank 3 e2e"), ((1, 1), "rank 1 e2e"), ((1, 0), "rank 1 tests"))]
    for thread in later:
        thread.start()
        assert wait_for(lambda: slots.waiting == later.index(thread) + 1)  # each asks in this order
    release.set()
    for thread in first + later:
        thread.join(PATIENCE_S)
    assert sorted(order[:2]) == ["a", "b"]
    assert order[2:] == ["rank 1 tests", "rank 1 e2e", "rank 3 e2e"] and slots.waiting == 0


def test_a_step_waiting_for_a_slot_stops_with_the_run(monkeypatch):
    stopping = threading.Event()
    monkeypatch.setattr("pi.run.stopping", stopping)
    slots, raised = Slots(1), []
    with slots.hold((0,)):
        def waiter() -> None:
            with pytest.raises(Stopped):
                with slots.hold((0,)):
                    pass
            raised.append(True)

        thread = threading.Thread(target=waiter)
        thread.start()
        assert wait_for(lambda: slots.waiting == 1)
        stopping.set()
        thread.join(PATIENCE_S)
    assert raised == [True] and slots.waiting == 0


def test_spread_takes_photos_evenly_over_both_labels():
    photos = tuple(f"val/cat/{i}.jpg" for i in range(100)) + tuple(f"val/dog/{i}.jpg" for i in range(100))
    chosen = spread(photos, 50)
    assert len(chosen) == len(set(chosen)) == 50
    assert sum("/cat/" in p for p in chosen) == 25
    assert spread(photos, 0) == photos and spread(photos, 500) == photos
