"""The models shipped inside catdog, and how --model picks one: a .tflite path, or a bundled model's name.

The bundled models live in models/ in the repository and in catdog/edge/bundled/ once installed:
catdog.tflite is the default; catdog-NAME.tflite is the bundled model NAME (e.g. compact).
"""

from __future__ import annotations

import os
from pathlib import Path

#: File name of the default bundled model; the others are catdog-NAME.tflite.
DEFAULT_FILE = "catdog.tflite"
#: The name of the default bundled model.
DEFAULT_NAME = "default"


def bundled_dir() -> Path:
    """Where the bundled models are: package data beside this file once installed, else the checkout's models/."""
    # Plain paths rather than importlib.resources, which costs ~10 ms of every start-up.
    here = Path(__file__).resolve().parent
    installed = here / "bundled"
    return installed if (installed / DEFAULT_FILE).is_file() else here.parent / "models"


def bundled_models() -> dict[str, Path]:
    """Every bundled model by name ("default" first, then the others by name) -> its .tflite file."""
    folder = bundled_dir()
    found = {DEFAULT_NAME: folder / DEFAULT_FILE}
    for path in sorted(folder.glob("catdog-*.tflite")):
        found[path.stem.removeprefix("catdog-")] = path
    return found


def resolve_model(model: str | Path | None = None) -> Path:
    """The .tflite file a --model value means.

    Args:
        model: None for $CATDOG_MODEL or else the default bundled model; an existing path; or the
            name of a bundled model (e.g. "compact"). Anything else is returned as a path, so that
            loading it reports a missing file with the names there are.
    """
    if model is None:
        env = os.environ.get("CATDOG_MODEL")
        return Path(env) if env else bundled_dir() / DEFAULT_FILE  # no folder listing on every start
    path = Path(model)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path
    return bundled_models().get(str(model), path)


def is_bundled(path: Path) -> bool:
    """True for a model file shipped inside catdog (installed with the package, like its code), which
    therefore needs no structural pre-check on each load (tests/edge/test_bundled.py checks them)."""
    return (path.name.startswith("catdog") and path.suffix == ".tflite" and path.resolve().parent == bundled_dir()
            and path.is_file())


def default_model_path() -> Path:
    """The model used when none is given: $CATDOG_MODEL, else the default bundled model."""
    return resolve_model(None)
