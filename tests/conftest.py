"""Shared fixtures: the real photo data set beside the project, and a tiny model trained once per session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CATDOG_DATA", ROOT.parent / "shared" / "datasets" / "catdog"))
#: Photos with no cat and no dog (../shared/datasets/nothing/photos), beside the cat/dog set.
NOTHING = Path(os.environ.get("CATDOG_NOTHING", DATA.parent / "nothing" / "photos"))
BUNDLED = ROOT / "models" / "catdog.tflite"
#: The small bundled model (--model compact, 96x96, about 1/9 of the default's multiply-adds).
COMPACT = ROOT / "models" / "catdog-compact.tflite"


@pytest.fixture(scope="session", autouse=True)
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """catdog's caches ($XDG_CACHE_HOME/catdog: fit's photos, the model probe's verdicts) in a folder of this
    test session, never the user's; the commands the tests start inherit it."""
    home = tmp_path_factory.mktemp("xdg-cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(home)
    yield home
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


def missing_data(reason: str) -> None:
    """A data set the tests need is absent: skip with the reason, or fail under CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must provide ../shared beside the clone")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/datasets/catdog: skipped when absent, a failure under CI=true."""
    if not (DATA / "train").is_dir() or not (DATA / "val").is_dir():
        missing_data(f"photo data set not found at {DATA} (expected train/ and val/ with cat/ and dog/ inside)")
    return DATA


@pytest.fixture(scope="session")
def nothing_photos() -> list[Path]:
    """../shared/datasets/nothing/photos, sorted: photos with no cat and no dog; skipped when absent, a
    failure under CI=true."""
    photos = sorted(NOTHING.glob("*.jpg")) if NOTHING.is_dir() else []
    if not photos:
        missing_data(f"photos of empty scenes not found at {NOTHING} (expected the nothing/ data set beside catdog/)")
    return photos


@pytest.fixture(scope="session")
def val_photos(data_dir: Path) -> dict[str, list[Path]]:
    """Validation photo paths per label, sorted."""
    return {label: sorted((data_dir / "val" / label).glob("*.jpg")) for label in ("cat", "dog")}


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    """The shipped int8 model."""
    assert BUNDLED.is_file(), f"{BUNDLED} is missing: the repository must ship a trained model"
    return BUNDLED


@pytest.fixture(scope="session")
def compact_model() -> Path:
    """The small shipped int8 model, for tests of what runs around a model (the camera loop, workers,
    flip averaging), not of the default model's answers: each photo costs about a ninth of the default
    model's work, which matters most on the emulated Raspberry Pis (make test-pi)."""
    assert COMPACT.is_file(), f"{COMPACT} is missing: the repository must ship the compact model"
    return COMPACT


def copy_model_with_contract(src: Path, dst: Path, changes: dict, sidecar: bool = True) -> Path:
    """Copy a .tflite model to dst with its contract changed, embedded and (optionally) as sidecar."""
    import json

    from catdog.edge.contract import contract_for_model
    from catdog.edge.metadata import embed_contract

    data = contract_for_model(src).to_dict() | changes
    text = json.dumps(data).encode()
    dst.write_bytes(embed_contract(src.read_bytes(), text))
    if sidecar:
        dst.with_suffix(".json").write_bytes(text)
    return dst
