"""Data checks before training, on copies of real photos with broken, tiny and duplicate files mixed in."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from catdog.trainer.errors import DataError
from tests.conftest import ROOT
from tests.trainer.conftest import copy_photos
from catdog.trainer.cli import app
from catdog.trainer.config import CheckConfig
from catdog.trainer.scan import check_data


@pytest.fixture()
def messy(data_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """train/ with 12 real photos per class plus one file of each problem kind; val/ with 4 per class."""
    train = copy_photos(data_dir, tmp_path / "train", 12)
    val = copy_photos(data_dir, tmp_path / "val", 4, split="val")
    real = sorted((train / "cat").glob("*.jpg"))[0]
    (train / "cat" / "empty.jpg").write_bytes(b"")
    data = (train / "dog" / "dog.1.jpg").read_bytes()
    (train / "dog" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (train / "cat" / "notes.jpg").write_text("not a photo")
    (train / "cat" / "readme.txt").write_text("labels come from folder names")
    with Image.open(real) as img:
        img.resize((24, 20)).save(train / "dog" / "tiny.png")
    shutil.copy(real, val / "cat" / "leaked.jpg")  # a training photo again in validation
    shutil.copy(real, train / "cat" / "copy.jpg")  # the same photo twice in training
    return train, val


def test_problem_files_are_listed_and_left_out(messy):
    train, val = messy
    report = check_data(CheckConfig(data_dir=train, val_dir=val))
    kinds = {Path(p.path).name: p.kind for p in report.problems}
    assert kinds == {
        "readme.txt": "unsupported", "empty.jpg": "unreadable", "notes.jpg": "unreadable",
        "truncated.jpg": "unreadable", "tiny.png": "too small", "copy.jpg": "duplicate", "leaked.jpg": "duplicate",
    }
    leaked = next(p for p in report.problems if p.path.endswith("leaked.jpg"))
    assert "training photo" in leaked.detail
    assert report.train.counts() == {"cat": 12, "dog": 12} and report.val.counts() == {"cat": 4, "dog": 4}
    assert not {Path(p).name for p in report.train.paths + report.val.paths} & set(kinds)
    table = report.table()
    assert "cat" in table and "12" in table and "1 unsupported, 3 unreadable, 1 too small, 2 duplicate" in table
    assert report.warnings == ()


def test_strict_makes_any_problem_fatal(messy):
    train, val = messy
    with pytest.raises(DataError, match=r"--strict: 7 problem file\(s\)"):
        check_data(CheckConfig(data_dir=train, val_dir=val, strict=True))


def test_class_count_errors_and_imbalance_warning(data_dir, tmp_path):
    root = copy_photos(data_dir, tmp_path / "few", 12)
    for path in sorted((root / "dog").glob("*.jpg"))[3:]:
        path.unlink()
    with pytest.raises(DataError, match=r"class 'dog' has 2 usable training photo\(s\), under --min-per-class 10"):
        check_data(CheckConfig(data_dir=root))
    report = check_data(CheckConfig(data_dir=root, min_per_class=2, val_split=0.34))
    assert report.train.counts() == {"cat": 8, "dog": 2}
    assert len(report.warnings) == 1 and "imbalanced" in report.warnings[0] and "'cat'" in report.warnings[0]
    args = ["check", str(root), "--min-per-class", "2", "--val-split", "0.34", "--format", "json"]
    assert json.loads(CliRunner().invoke(app, args).stdout)["warnings"] == list(report.warnings)
    assert json.loads(CliRunner().invoke(app, [*args, "--imbalance-ratio", "4"]).stdout)["warnings"] == []  # 8 is not over 4x2
    (root / "bird").mkdir()
    with pytest.raises(DataError, match="no photos"):
        check_data(CheckConfig(data_dir=root))


def test_bad_folders_fail_before_tensorflow_is_imported(data_dir, tmp_path):
    root = copy_photos(data_dir, tmp_path / "one", 3)
    shutil.rmtree(root / "dog")
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from catdog.trainer.errors import DataError
        from catdog.trainer.config import FitConfig
        from catdog.trainer.train import fit
        try:
            fit(FitConfig(data_dir=Path({str(root)!r}), out=Path({str(tmp_path / 'm.keras')!r})))
        except DataError as exc:
            print(exc)
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "need at least 2" in result.stdout
    assert not (tmp_path / "m.keras").exists()


def test_check_command_json_and_text(messy):
    train, val = messy
    runner = CliRunner()
    result = runner.invoke(app, ["check", str(train), "--val", str(val), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["labels"] == ["cat", "dog"] and report["train"] == {"cat": 12, "dog": 12}
    assert len(report["problems"]) == 7
    text = runner.invoke(app, ["check", str(train), "--val", str(val)])
    assert text.exit_code == 0 and "truncated or corrupt" in text.stdout and "empty file" in text.stdout
    strict = runner.invoke(app, ["check", str(train), "--val", str(val), "--strict"])
    assert strict.exit_code == 2 and strict.stderr.startswith("error: --strict")
