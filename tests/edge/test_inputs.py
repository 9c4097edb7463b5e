"""Expanding command-line inputs into photo paths."""

from __future__ import annotations

from catdog.edge.classify import Failure
from catdog.edge.inputs import expand_inputs


def test_directories_files_and_problems(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("b.jpg", "a.PNG", "notes.txt"):
        (folder / name).write_bytes(b"x")
    empty = tmp_path / "empty"
    empty.mkdir()
    odd = tmp_path / "odd.txt"
    odd.write_text("named directly, so it is kept and gets its own error later")
    result = expand_inputs([folder, odd, empty, tmp_path / "missing.jpg"])
    assert [p.name for p in result.photos] == ["a.PNG", "b.jpg", "odd.txt"]
    assert [p.error.split(": ", 1)[1][:12] for p in result.failures] == ["directory ha", "no such file"]
    assert all(isinstance(f, Failure) for f in result.failures)
    assert [f.path for f in result.failures] == [str(empty), str(tmp_path / "missing.jpg")]
