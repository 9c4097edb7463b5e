"""pi.run's pure parts: the fixed photo subset, the Pi /proc/cpuinfo, pytest's report counts."""

from __future__ import annotations

from pi.run import cpuinfo_file, junit_counts, pick_photos
from pi.targets import TARGETS


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
