"""The catdog-train console script (also `python -m catdog.trainer`): the trainer's command line, or, on an
edge-only install without the [train] extra's typer, one line that says what to install."""

from __future__ import annotations

import importlib.util
import sys

from ._tf import TRAIN_EXTRA


def run() -> None:
    """Run catdog-train; exit 2 with one line on stderr when typer, its command-line library, is missing."""
    if importlib.util.find_spec("typer") is None:
        print(f"error: catdog-train needs typer: install the wheel's [train] extra ({TRAIN_EXTRA})", file=sys.stderr)
        raise SystemExit(2)
    from .cli import app

    app(prog_name="catdog-train")


if __name__ == "__main__":
    run()
