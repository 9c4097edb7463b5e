"""The installed wheel: one namespaced import package, the bundled model inside, no tests or benchmarks.

make test installs the edge-only and legacy environments from the wheel and sets CATDOG_INSTALLED=1
there; in the development environment (an editable install of the checkout) these tests skip.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import catdog.edge

DISTRIBUTION = "catdog-toolkit"

installed_only = pytest.mark.skipif(
    os.environ.get("CATDOG_INSTALLED") != "1",
    reason="runs against the installed wheel (make test-edge / test-legacy set CATDOG_INSTALLED=1)",
)


@installed_only
def test_the_imported_package_is_the_installed_one_not_the_checkout():
    package = Path(catdog.edge.__file__).resolve()
    environment = Path(sys.prefix).resolve()
    assert package.is_relative_to(environment), f"{package} is outside {environment}: the checkout shadows the wheel"


@installed_only
def test_the_wheel_holds_the_bundled_model_and_contract_and_no_tests_or_benchmarks():
    # Asked of the environment's site-packages only: the checkout (on sys.path under pytest) holds the
    # development install's .egg-info, which would answer for the same name.
    site_packages = Path(catdog.edge.__file__).resolve().parents[2]
    (dist,) = metadata.distributions(name=DISTRIBUTION, path=[str(site_packages)])
    files = {str(f) for f in dist.files or ()}
    assert {"catdog/edge/bundled/catdog.tflite", "catdog/edge/bundled/catdog.json"} <= files
    assert "catdog/edge/classify.py" in files and "catdog/trainer/train.py" in files
    top_level = {f.split("/")[0] for f in files if not f.startswith("..")}
    assert top_level == {"catdog", f"{DISTRIBUTION.replace('-', '_')}-{dist.version}.dist-info"} | (
        {"__pycache__"} & top_level
    ), top_level
    assert not [f for f in files if f.startswith(("tests/", "benchmarks/")) or "/tests/" in f], files
    assert catdog.edge.default_model_path().is_file()


@installed_only
@pytest.mark.parametrize("name", ["edge", "trainer"])
def test_no_generic_top_level_names_are_installed(name, tmp_path):
    result = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, result.stderr


@installed_only
def test_catdog_train_without_the_train_extra_says_what_to_install_in_one_line(tmp_path, data_dir):
    if importlib.util.find_spec("tensorflow") is not None or importlib.util.find_spec("typer") is not None:
        pytest.skip("the [train] extra's TensorFlow or typer is installed in this environment")
    catdog_train = Path(sys.executable).with_name("catdog-train")
    for argv in (["fit", str(data_dir / "train"), "--out", str(tmp_path / "m.keras")], ["--help"]):
        result = subprocess.run([str(catdog_train), *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert result.returncode == 2 and result.stdout == "", result
        assert result.stderr.splitlines() == [
            "error: catdog-train needs typer: install the wheel's [train] extra "
            "(pip install tensorflow matplotlib 'typer>=0.12,<0.25')"
        ]
    assert not (tmp_path / "m.keras").exists()
