"""pi.targets: what is left out under emulation names real tests, so a rename cannot silently run them again
(or leave them out of every run)."""

from __future__ import annotations

import ast
from pathlib import Path

from pi.targets import COVERED_BY_END_TO_END, EMULATION_FAILURES, NATIVE_ONLY, NATIVE_ONLY_TESTS, RUNTIME_TESTS, TARGETS

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


def test_runtime_tests_are_test_modules_and_none_is_native_only():
    for path in RUNTIME_TESTS:
        assert (ROOT / path).is_file(), f"{path}: no such test module"
        assert not any((ROOT / path).match(pattern) for pattern in NATIVE_ONLY), path


def test_every_native_only_test_says_what_covers_it_under_emulation():
    assert all(len(reason) > 20 for reason in NATIVE_ONLY_TESTS.values())


def test_target_names_are_unique_and_every_target_runs_the_tests_somewhere():
    assert len({t.name for t in TARGETS}) == len(TARGETS)
    assert all(any(e.tests and e.e2e for e in t.environments) for t in TARGETS)
    assert {e.tests for t in TARGETS for e in t.environments} <= {"all", "runtime", ""}
    assert any(e.tests == "all" for t in TARGETS for e in t.environments)
