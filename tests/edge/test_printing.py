"""The result printer: one record per photo in each format, failures on stderr where a table is read."""

from __future__ import annotations

import csv
import io
import json

from catdog.edge.classify import Failure, Prediction
from catdog.edge.printing import OutputFormat, ResultPrinter

LABELS = ("cat", "dog", "fox")
PREDICTION = Prediction(path="a.jpg", label="dog", index=1, confidence=0.7, scores={"cat": 0.1, "dog": 0.7, "fox": 0.2}, ms=3.25)
FAILURE = Failure(path="b.jpg", error="b.jpg: not an image")


def _print(format: OutputFormat, capsys, top_k: int = 1) -> tuple[str, str]:
    printer = ResultPrinter(format, LABELS, top_k)
    printer.prediction(PREDICTION)
    printer.failure(FAILURE)
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_json_lines_with_top_k(capsys):
    out, err = _print(OutputFormat.json, capsys, top_k=2)
    first, second = map(json.loads, out.splitlines())
    assert first["label"] == "dog" and first["top_k"] == [{"label": "dog", "score": 0.7}, {"label": "fox", "score": 0.2}]
    assert second == {"path": "b.jpg", "error": "b.jpg: not an image"} and err == ""


def test_csv_has_a_header_a_row_each_and_the_error_on_stderr_too(capsys):
    out, err = _print(OutputFormat.csv, capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["path"] for r in rows] == ["a.jpg", "b.jpg"]
    assert rows[0]["score_fox"] == "0.200000" and rows[0]["error"] == "" and rows[1]["error"] == "b.jpg: not an image"
    assert err == "error: b.jpg: not an image\n"


def test_text_is_one_line_per_photo_best_scores_first(capsys):
    out, err = _print(OutputFormat.text, capsys)
    assert out.splitlines() == ["dog       0.700      3.2 ms  a.jpg  [dog 0.700  fox 0.200]"]
    assert err == "error: b.jpg: not an image\n"


# Labels come from a model file and paths from disk: both may carry escape sequences, newlines, formulas
# and bytes that are not UTF-8 (os.fsdecode turns those into lone surrogates).
HOSTILE_LABELS = ("=cmd|' /C calc'!A0", "\x1b[31mdog\n")
HOSTILE_PATH = "\x1b]0;owned\x07+1\n\u2028" + "@photo" + "\udcff.jpg"
HOSTILE = Prediction(path=HOSTILE_PATH, label=HOSTILE_LABELS[1], index=1, confidence=0.9,
                     scores={HOSTILE_LABELS[0]: 0.1, HOSTILE_LABELS[1]: 0.9}, ms=1.0)
HOSTILE_FAILURE = Failure(path="-x\n.jpg", error="-x\n.jpg: truncated or corrupt image (\x1b[2J)")


def _print_hostile(format: OutputFormat, capsys) -> tuple[str, str]:
    printer = ResultPrinter(format, HOSTILE_LABELS, top_k=2)
    printer.prediction(HOSTILE)
    printer.failure(HOSTILE_FAILURE)
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):
        text.encode("utf-8")  # strict, as a UTF-8 terminal's stdout: no lone surrogate reaches it
        assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) <= 0x9F for c in text), repr(text)
    return captured.out, captured.err


def test_text_shows_hostile_labels_and_paths_escaped_on_one_line(capsys):
    out, err = _print_hostile(OutputFormat.text, capsys)
    assert out.splitlines() == [
        "\\x1b[31mdog\\n  0.900      1.0 ms  \\x1b]0;owned\\x07+1\\n\\u2028@photo\\xff.jpg  "
        "[\\x1b[31mdog\\n 0.900  =cmd|' /C calc'!A0 0.100]"
    ]
    assert err == "error: -x\\n.jpg: truncated or corrupt image (\\x1b[2J)\n"


def test_csv_neutralises_formulas_and_keeps_one_row_per_photo(capsys):
    out, err = _print_hostile(OutputFormat.csv, capsys)
    assert len(out.splitlines()) == 3
    header, row, failure = csv.reader(io.StringIO(out))
    assert header[3:5] == ["score_=cmd|' /C calc'!A0", "score_\\x1b[31mdog\\n"]
    assert row[:2] == ["\\x1b]0;owned\\x07+1\\n\\u2028@photo\\xff.jpg", "\\x1b[31mdog\\n"]
    assert failure[0] == "'-x\\n.jpg" and failure[-1] == "'-x\\n.jpg: truncated or corrupt image (\\x1b[2J)"
    assert err == "error: -x\\n.jpg: truncated or corrupt image (\\x1b[2J)\n"
    formula = ResultPrinter(OutputFormat.csv, ("cat", "dog"), 1)
    capsys.readouterr()
    formula.prediction(Prediction(path="=1+1.jpg", label="@SUM(A1)", index=0, confidence=1.0,
                                  scores={"cat": 1.0, "dog": 0.0}, ms=1.0))
    assert capsys.readouterr().out.startswith("'=1+1.jpg,'@SUM(A1),")


def test_json_is_exact_ascii_and_one_object_per_line(capsys):
    out, err = _print_hostile(OutputFormat.json, capsys)
    assert out.isascii() and err == ""
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) == 3 and len(out.splitlines()) == 2  # no U+2028 left to split on
    first, second = map(json.loads, lines[:2])
    assert first["path"] == HOSTILE_PATH and first["label"] == HOSTILE_LABELS[1]  # exact: the path round-trips
    assert [t["label"] for t in first["top_k"]] == [HOSTILE_LABELS[1], HOSTILE_LABELS[0]]
    assert second == HOSTILE_FAILURE.to_dict()
