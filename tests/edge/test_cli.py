"""catdog-edge classify through the CLI: text and JSON output, exit codes, bad files among good ones."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from catdog.edge import Classifier
from catdog.edge.cli import app

runner = CliRunner()


def test_json_output_one_object_per_photo(bundled_model, val_photos):
    photos = [str(val_photos["cat"][3]), str(val_photos["dog"][3])]
    result = runner.invoke(app, ["classify", *photos, "--format", "json", "--model", str(bundled_model)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == photos
    for line in lines:
        assert set(line) == {"path", "label", "confidence", "scores", "ms", "present", "presence"}
        assert set(line["scores"]) == {"cat", "dog"} and line["label"] == max(line["scores"], key=line["scores"].get)
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


def _tree(tmp_path, val_photos):
    top = tmp_path / "tree"
    (top / "sub").mkdir(parents=True)
    (top / "a.jpg").write_bytes(val_photos["cat"][20].read_bytes())
    (top / "sub" / "b.jpg").write_bytes(val_photos["dog"][20].read_bytes())
    return top


def test_recursive_glob_and_stdin_inputs(bundled_model, val_photos, tmp_path):
    top = _tree(tmp_path, val_photos)
    flat = runner.invoke(app, ["classify", str(top), "-m", str(bundled_model), "-f", "json"])
    deep = runner.invoke(app, ["classify", str(top), "--recursive", "-m", str(bundled_model), "-f", "json"])
    assert [json.loads(x)["path"] for x in flat.stdout.splitlines()] == [str(top / "a.jpg")]
    assert [json.loads(x)["path"] for x in deep.stdout.splitlines()] == [str(top / "a.jpg"), str(top / "sub" / "b.jpg")]
    pattern = runner.invoke(app, ["classify", str(top / "*.jpg"), str(top / "*.png"), "-m", str(bundled_model)])
    assert pattern.exit_code == 1 and "a.jpg" in pattern.stdout and "matches no files" in pattern.stderr
    piped = runner.invoke(
        app, ["classify", "-", "-m", str(bundled_model), "-f", "json"], input=f"{top / 'a.jpg'}\n\n{top / 'sub' / 'b.jpg'}\n"
    )
    assert piped.exit_code == 0 and len(piped.stdout.splitlines()) == 2


def test_csv_output_has_a_header_and_a_row_per_photo(bundled_model, val_photos, tmp_path):
    import csv
    import io

    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    result = runner.invoke(app, ["classify", str(val_photos["cat"][6]), str(bad), "-m", str(bundled_model), "-f", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert result.exit_code == 1 and len(rows) == 2
    assert rows[0]["label"] == Classifier.load(bundled_model).classify(val_photos["cat"][6]).label and abs(float(rows[0]["score_cat"]) + float(rows[0]["score_dog"]) - 1) <= 2 / 256 + 1e-6  # two uint8 scores, each rounded to 1/256
    assert rows[1]["label"] == "" and "not an image" in rows[1]["error"]


def test_threshold_moves_the_decision_and_top_k_lists_labels(bundled_model, val_photos):
    photo = str(val_photos["dog"][7])
    base = json.loads(runner.invoke(app, ["classify", photo, "-m", str(bundled_model), "-f", "json"]).stdout)
    p_dog = base["scores"]["dog"]
    low = json.loads(runner.invoke(app, ["classify", photo, "-m", str(bundled_model), "-f", "json",
                                         "--threshold", str(max(p_dog - 0.001, 0.0001))]).stdout)
    high = json.loads(runner.invoke(app, ["classify", photo, "-m", str(bundled_model), "-f", "json",
                                          "--threshold", str(min(p_dog + 0.001, 0.9999))]).stdout)
    assert low["label"] == "dog" and high["label"] == "cat"
    top = json.loads(runner.invoke(app, ["classify", photo, "-m", str(bundled_model), "-f", "json", "--top-k", "2"]).stdout)
    assert [t["label"] for t in top["top_k"]] == sorted(top["scores"], key=lambda k: -top["scores"][k])
    for bad in ("1.5", "1", "0", "-0.2"):  # one rule, one message: strictly between 0 and 1
        result = runner.invoke(app, ["classify", photo, "--threshold", bad])
        assert result.exit_code == 2 and "--threshold must be strictly between 0 and 1" in result.output, result.output


def test_info_and_bench(bundled_model, compact_model, val_photos, tmp_path):
    info = runner.invoke(app, ["info", "-m", str(bundled_model), "-f", "json"])
    assert info.exit_code == 0, info.output
    record = json.loads(info.stdout)
    assert record["contract"]["labels"] == ["cat", "dog"]
    assert record["tensors"]["input"]["dtype"] == "uint8" and record["runtime"] in ("litert", "tflite-runtime")
    standard = record["standard_metadata"]  # what MediaPipe Tasks and the Task Library read
    assert standard["labels"] == ["cat", "dog"] and standard["outputs"][0]["label_file"] == "labels.txt"
    assert standard["inputs"][0]["color"] == "RGB" and standard["inputs"][0]["mean"] == [0.0]
    text = runner.invoke(app, ["info", "-m", str(bundled_model)])
    assert "labels     0=cat, 1=dog" in text.stdout
    assert "output is  softmax, threshold 0.5 for dog" in text.stdout
    assert "           output probability, labels from labels.txt" in text.stdout
    assert "           labels cat, dog" in text.stdout
    assert "recipe     catdog-train fit " in text.stdout  # the bundled model says how to retrain it
    top = _tree(tmp_path, val_photos)
    bench = runner.invoke(app, ["bench", "-m", str(compact_model), "--runs", "20", "--photos", str(top), "-f", "json",
                                "--threads", "1", "--workers", "2"])
    assert bench.exit_code == 0, bench.output
    result = json.loads(bench.stdout)
    ms = result["invoke_ms"]
    assert ms["runs"] == 20 and 0 < ms["min"] <= ms["p50"] <= ms["p95"] <= ms["p99"]
    assert result["photos"] == 2 and result["failed"] == 0 and result["photos_per_second"] > 0
    assert result["threads"] == 1
    # Two photos are both classified while classify_many times its first photos: no threads were started.
    assert (result["workers"], result["interpreters"]) == (1, 1)


def test_installed_console_script_finds_the_bundled_model(val_photos, tmp_path):
    """The catdog-edge of this environment, run from an unrelated folder, with no --model."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "catdog-edge"
    env = {k: v for k, v in os.environ.items() if k != "CATDOG_MODEL"}
    result = subprocess.run([str(script), "classify", str(val_photos["dog"][8]), "-f", "json"],
                            capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["label"] == Classifier.load().classify(val_photos["dog"][8]).label  # the bundled model's answer


def test_flip_option_gives_the_mirror_averaged_scores(bundled_model, val_photos):
    from catdog.edge import Classifier

    plain, flipped = Classifier.load(bundled_model), Classifier.load(bundled_model, flip=True)
    # A photo whose mirror image scores differently (a confident model gives many identical ones).
    photo = next(p for p in val_photos["cat"][:20] + val_photos["dog"][:20]
                 if flipped.classify(p).scores != plain.classify(p).scores)
    result = runner.invoke(app, ["classify", str(photo), "--flip", "--format", "json", "--model", str(bundled_model)])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["scores"]
    expected = flipped.classify(photo).scores
    assert set(scores) == set(expected) and all(abs(scores[k] - expected[k]) < 1e-5 for k in expected)
    assert any(abs(scores[k] - plain.classify(photo).scores[k]) > 1e-3 for k in expected)  # the flag did something


# --- Output injection (issue 19, target 5): labels from the model file and names from disk are untrusted. ---

HOSTILE_LABELS = ["=cmd|' /C calc'!A0", "\x1b[31mdog\n"]
HOSTILE_NAMES = [b"\x1b[2Jcat\nfake line.jpg", b"=HYPERLINK(1)\xff\xfe.jpg", b"line\xe2\x80\xa8sep\r.jpg"]  # \xe2\x80\xa8: U+2028


def _no_raw_controls(text: str) -> None:
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in text), repr(text)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, val_photos):
    """A compact model whose labels carry a formula and an escape sequence, and photos with hostile names.

    If the contract refuses such labels (a ModelError), that is a safe outcome too: the model is then None.
    """
    import os
    from pathlib import Path

    from catdog.edge import ModelError, resolve_model
    from tests.conftest import copy_model_with_contract

    d = tmp_path_factory.mktemp("hostile")
    model = copy_model_with_contract(resolve_model("compact"), d / "hostile.tflite", {"labels": HOSTILE_LABELS})
    try:
        Classifier.load(model)
    except ModelError:
        model = None
    photos = d / "photos"
    photos.mkdir()
    for name in HOSTILE_NAMES:
        Path(os.fsdecode(bytes(photos) + b"/" + name)).write_bytes(Path(val_photos["cat"][30]).read_bytes())
    (photos / "\x1b[31mbroken\n.jpg").write_bytes(b"not a photo")
    return model, photos


def test_hostile_labels_and_names_print_escaped_in_text_and_csv(hostile):
    import csv
    import io

    model, photos = hostile
    model_args = ["--model", str(model)] if model else ["--model", "compact"]
    text = runner.invoke(app, ["classify", str(photos), *model_args])
    assert text.exit_code == 1, text.output
    _no_raw_controls(text.stdout + text.stderr)
    assert len(text.stdout.splitlines()) == len(HOSTILE_NAMES) and len(text.stderr.splitlines()) == 1
    assert "\\x1b[2Jcat\\nfake line.jpg" in text.stdout and "\\xff\\xfe" in text.stdout and "\\u2028sep\\r" in text.stdout
    assert "error: " in text.stderr and "\\x1b[31mbroken\\n.jpg" in text.stderr
    if model:
        assert "\\x1b[31mdog\\n" in text.stdout or "=cmd" in text.stdout
    table = runner.invoke(app, ["classify", str(photos), *model_args, "--format", "csv"])
    _no_raw_controls(table.stdout)
    rows = list(csv.reader(io.StringIO(table.stdout)))
    assert len(rows) == 1 + len(HOSTILE_NAMES) + 1 == len(table.stdout.splitlines())
    cells = [cell for row in rows[1:] for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert any(cell.startswith("'=") for cell in cells)  # the =HYPERLINK file name, and the =cmd label if loaded


def test_hostile_labels_in_info_and_camera_lines_are_escaped(hostile):
    model, photos = hostile
    if model is None:
        pytest.skip("the contract refuses hostile labels (a safe outcome, tested by test_contract)")
    info = runner.invoke(app, ["info", "--model", str(model)])
    assert info.exit_code == 0, info.output
    _no_raw_controls(info.stdout)
    assert "labels     0==cmd|' /C calc'!A0, 1=\\x1b[31mdog\\n" in info.stdout
    camera = runner.invoke(app, ["camera", "-s", str(photos), "-m", str(model), "--smooth", "1"])
    _no_raw_controls(camera.stdout + camera.stderr)
    events = camera.stdout.splitlines()[:-1]
    assert events and all(" now " in line for line in events), camera.output
    assert camera.stdout.splitlines()[-1].startswith("summary:")


def test_undecodable_names_never_crash_a_strict_utf8_terminal_and_round_trip_in_json(hostile):
    """Real stdout, strict UTF-8 (as under an en_US.UTF-8 locale): a lone surrogate must never reach it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    _, photos = hostile
    script = Path(sys.executable).parent / "catdog-edge"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for format in ("text", "json", "csv"):
        result = subprocess.run([str(script), "classify", str(photos), "-m", "compact", "-f", format, "--workers", "1"],
                                capture_output=True, cwd=photos, env=env)
        assert result.returncode == 1, result.stderr  # the one broken photo; no Traceback
        lines = {"text": len(HOSTILE_NAMES), "json": len(HOSTILE_NAMES) + 1, "csv": len(HOSTILE_NAMES) + 2}[format]
        assert b"Traceback" not in result.stderr and result.stdout.count(b"\n") == lines
        _no_raw_controls(result.stdout.decode("utf-8") + result.stderr.decode("utf-8"))
        if format == "json":
            paths = {os.fsencode(json.loads(line)["path"]) for line in result.stdout.splitlines()}
            assert paths == {bytes(photos) + b"/" + name for name in [*HOSTILE_NAMES, b"\x1b[31mbroken\n.jpg"]}


def test_a_classify_start_loads_neither_typer_nor_the_camera_command(val_photos):
    """run() (the console script) parses with click alone, and builds the camera command's options only when
    camera is run, listed or suggested: what keeps a one-photo start near a bare interpreter script's."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from catdog.edge.cli import run\n"
        "try:\n"
        f"    run(['--verbose', 'classify', '--format', 'json', {str(val_photos['cat'][0])!r}])\n"
        "finally:\n"
        "    print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich') or m.endswith('cli_camera')),"
        " file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["label"] == "cat"
    assert result.stderr.splitlines()[-1] == "[]", result.stderr


def test_help_and_suggestions_know_every_command(val_photos, capsys):
    from catdog.edge.cli import run

    with pytest.raises(SystemExit) as done:
        run(["--help"])
    listing = capsys.readouterr().out
    assert done.value.code == 0
    assert [line.split()[0] for line in listing.split("Commands:")[1].strip().splitlines()] == [
        "classify", "info", "bench", "learn", "camera"]
    for typo, meant in (("clasify", "classify"), ("camra", "camera")):
        with pytest.raises(SystemExit) as done:
            run([typo, str(val_photos["cat"][0])])
        assert done.value.code == 2 and f"Did you mean '{meant}'?" in capsys.readouterr().err

def test_an_empty_scene_is_answered_none_with_exit_0_in_every_format(bundled_model, nothing_photos, val_photos):
    import csv
    import io

    empty, cat = str(nothing_photos[1]), str(val_photos["cat"][8])
    base = ["classify", empty, cat, "-m", str(bundled_model)]
    lines = [json.loads(line) for line in runner.invoke(app, [*base, "-f", "json"]).stdout.splitlines()]
    assert [(line["label"], line["present"]) for line in lines] == [("none", False), ("cat", True)]
    assert lines[0]["presence"] < lines[1]["presence"]
    result = runner.invoke(app, [*base, "-f", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["label"], r["present"]) for r in rows] == [("none", "false"), ("cat", "true")]
    text = runner.invoke(app, base)
    assert text.exit_code == 0 and text.stdout.split()[0] == "none" and "presence" in text.stdout
    forced = runner.invoke(app, [*base, "-f", "csv", "--no-presence"])
    rows = list(csv.DictReader(io.StringIO(forced.stdout)))
    assert "present" not in rows[0] and rows[0]["label"] in ("cat", "dog")
    everything = runner.invoke(app, [*base, "-f", "json", "--presence-threshold", "-1000"])
    assert [json.loads(line)["label"] for line in everything.stdout.splitlines()][1] == "cat"
    assert json.loads(everything.stdout.splitlines()[0])["label"] in ("cat", "dog")
