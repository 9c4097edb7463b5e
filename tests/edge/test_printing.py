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
