"""pi.targets: what is left out under emulation names real tests, so a rename cannot silently run them again
(or leave them out of every run)."""

from __future__ import annotations

import ast
from pathlib import Path

from pi.targets import (COVERED_BY_END_TO_END, EMULATION_FAILURES, NATIVE_ONLY, NATIVE_ONLY_TESTS, PAIR_TESTS, RUNTIME_TESTS,
                        TARGETS)

ROOT = Path(__file__).resolve().parents[2]


def test_deselected_tests_exist():
    for node in EMULATION_FAILURES + COVERED_BY_END_TO_END + tuple(NATIVE_ONLY_TESTS):
        path, _, name = node.partition("::")
        name = name.partition("[")[0]  # a parametrized test's id
        tree = ast.parse((ROOT / path).read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert name in names, f"{node}: no such test"


def test_native_only_patterns_each_match_a_test_module():
    for pattern in NATIVE_ONLY:
        assert list(ROOT.glob(pattern)), f"{pattern} matches nothing"


def test_emulated_selections_are_test_modules_and_none_is_native_only():
    for path in RUNTIME_TESTS + PAIR_TESTS + tuple(p for t in TARGETS for e in t.environments for p in e.tests):
        assert (ROOT / path).is_file(), f"{path}: no such test module"
        assert not any((ROOT / path).match(pattern) for pattern in NATIVE_ONLY), path


def test_every_native_only_test_says_what_covers_it_under_emulation():
    assert all(len(reason) > 20 for reason in NATIVE_ONLY_TESTS.values())


def test_target_names_are_unique_and_every_target_runs_the_tests_somewhere():
    assert len({t.name for t in TARGETS}) == len(TARGETS)
    assert all(any(e.tests and e.e2e for e in t.environments) for t in TARGETS)
    # every module of the runtime selection runs on both ARM architectures
    for arch in ("arm64", "armhf"):
        assert any(set(RUNTIME_TESTS) <= set(e.tests) for t in TARGETS if t.arch == arch for e in t.environments)
    # the cross-runtime tests run where both runtimes are installed
    assert all({"litert", "tflite-runtime"} <= {e.runtime for e in t.environments}
               for t in TARGETS for e in t.environments if "tests/edge/test_runtimes_agree.py" in e.tests)
