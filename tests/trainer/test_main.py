"""The catdog-train console script (catdog.trainer.__main__.run): the typer app, or one line without typer."""

from __future__ import annotations

import importlib.util

import pytest

from catdog.trainer.__main__ import run


def test_runs_the_trainer_commands(capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["catdog-train", "--help"])
    with pytest.raises(SystemExit) as done:
        run()
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in ("fit", "evaluate", "export", "parity"))


def test_without_typer_says_what_to_install_in_one_line(capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "typer" else real(name, *a))
    with pytest.raises(SystemExit) as done:
        run()
    captured = capsys.readouterr()
    assert done.value.code == 2 and captured.out == ""
    assert captured.err.splitlines() == [
        "error: catdog-train needs typer: install the wheel's [train] extra "
        "(pip install tensorflow matplotlib 'typer>=0.12,<0.25')"
    ]
