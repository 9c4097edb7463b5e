"""catdog-edge classify through the CLI: text and JSON output, exit codes, bad files among good ones."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from edge.cli import app

runner = CliRunner()


def test_json_output_one_object_per_photo(bundled_model, val_photos):
    photos = [str(val_photos["cat"][3]), str(val_photos["dog"][3])]
    result = runner.invoke(app, ["classify", *photos, "--format", "json", "--model", str(bundled_model)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == photos
    for line in lines:
        assert set(line) == {"path", "label", "confidence", "scores", "ms"}
        assert line["label"] in ("cat", "dog") and set(line["scores"]) == {"cat", "dog"}
        assert line["confidence"] == max(line["scores"].values())


def test_default_model_is_the_bundled_one(val_photos):
    result = runner.invoke(app, ["classify", str(val_photos["dog"][5])])
    assert result.exit_code == 0, result.output
    assert str(val_photos["dog"][5]) in result.stdout


def test_unreadable_file_among_good_ones_exits_1_and_loses_nothing(bundled_model, val_photos, tmp_path):
    bad = tmp_path / "empty.jpg"
    bad.write_bytes(b"")
    good = [str(val_photos["cat"][4]), str(val_photos["dog"][4])]
    args = ["classify", good[0], str(bad), good[1], "--model", str(bundled_model)]

    text = runner.invoke(app, args)
    assert text.exit_code == 1
    assert all(path in text.stdout for path in good)
    assert text.stderr.count("error:") == 1 and "empty file" in text.stderr

    as_json = runner.invoke(app, [*args, "--format", "json"])
    assert as_json.exit_code == 1
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [r["path"] for r in records] == [good[0], str(bad), good[1]]
    assert set(records[1]) == {"path", "error"} and "label" in records[0] and "label" in records[2]


def test_directory_input_and_missing_path(bundled_model, val_photos, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in val_photos["cat"][:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    result = runner.invoke(app, ["classify", str(folder), str(tmp_path / "missing.jpg"), "--model", str(bundled_model)])
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 3
    assert "no such file" in result.stderr


def test_model_errors_exit_2_with_one_line(tmp_path, val_photos):
    result = runner.invoke(app, ["classify", str(val_photos["cat"][0]), "--model", str(tmp_path / "none.tflite")])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "model not found" in result.stderr


def test_usage_error_exits_2():
    assert runner.invoke(app, ["classify", "--format", "xml", "x.jpg"]).exit_code == 2
