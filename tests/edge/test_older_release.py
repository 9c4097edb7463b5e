"""A model with named outputs read by the catdog-edge release before them (efb06f2): its class scores stay output 0.

That release reads output 0 of a bundled model without a structural check, and refuses a user's own model
file whose outputs are not exactly one (its edge.modelcheck): with the default model installed as its
bundled one it must give the labels and scores of today's catdog-edge with --no-presence, and given the
file with -m it must refuse it in one line, never read the presence score as the probability of "dog".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from catdog.edge import Classifier
from tests.conftest import ROOT

#: The last commit before models had named outputs and a presence score.
OLDER_RELEASE = "efb06f2"


@pytest.fixture(scope="module")
def older_edge(tmp_path_factory: pytest.TempPathFactory, bundled_model: Path) -> Path:
    """The older release's catdog.edge, from git, with today's default model as its bundled one: a folder to
    put first on sys.path."""
    reason = None
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        reason = "git or the repository's history is not here"
    else:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", OLDER_RELEASE, "edge"],
                                 capture_output=True)
        if archive.returncode != 0:
            reason = f"commit {OLDER_RELEASE} is not in this clone ({archive.stderr.decode(errors='replace').strip()})"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI clones the repository with its history")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("older")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(root / "src", filter="data")
    package = root / "catdog"
    package.mkdir()
    shutil.move(str(root / "src" / "edge"), package / "edge")
    bundled = package / "edge" / "bundled"
    bundled.mkdir()
    for name in ("catdog.tflite", "catdog.json"):
        shutil.copy(bundled_model.parent / name, bundled / name)
    return root


def _older(older_edge: Path, *args: str) -> subprocess.CompletedProcess:
    """The older catdog-edge, without site (no .pth file can put today's catdog first), on this environment's packages."""
    paths = [str(older_edge), *{sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}]
    code = f"import sys; sys.path[:0] = {paths!r}; from catdog.edge.cli import run; run()"
    return subprocess.run([sys.executable, "-S", "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_the_older_release_reads_the_class_scores_of_the_default_model(older_edge, bundled_model, val_photos, nothing_photos):
    photos = [val_photos["cat"][0], val_photos["dog"][0], nothing_photos[0]]
    result = _older(older_edge, "classify", *map(str, photos), "-f", "json")
    assert result.returncode == 0, result.stderr
    assert str(older_edge) in _older(older_edge, "info", "-f", "json").stdout  # it is the older code that ran
    today = Classifier.load(bundled_model, presence=False)
    for line, photo in zip(result.stdout.splitlines(), photos):
        older, now = json.loads(line), today.classify(photo)
        assert older["label"] == now.label and older["scores"] == pytest.approx(now.scores, abs=1e-6)


def test_the_older_release_refuses_the_file_as_a_model_of_ones_own_in_one_line(older_edge, bundled_model, val_photos, tmp_path):
    own = tmp_path / "mine.tflite"
    shutil.copy(bundled_model, own)
    result = _older(older_edge, "classify", "-m", str(own), str(val_photos["cat"][0]))
    assert result.returncode == 2 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "output(s)" in errors[0], result.stderr  # its check allows one output
