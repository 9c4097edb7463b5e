"""TensorFlow and Keras, imported in one place: quiet unless verbose, and a clear error when missing.

Importing TensorFlow prints start-up lines (oneDNN, "Could not find cuda drivers", absl's "All log
messages before absl::InitializeLog()") straight to file descriptor 2, before any log level applies,
and the first device enumeration prints "failed call to cuInit" on a machine without a GPU. Those
calls run inside quiet(); later C++ lines are filtered by TF_CPP_MIN_LOG_LEVEL (errors still show).
CATDOG_VERBOSE=1 (catdog-train --verbose) shows everything.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

from catdog.edge._quiet import Captured, captured_stderr, verbose

from .errors import TensorFlowMissingError

#: What an edge-only install lacks for catdog-train: the [train] extra's packages (pyproject.toml).
TRAIN_EXTRA = "pip install tensorflow matplotlib 'typer>=0.12,<0.25'"
#: The error an edge-only install gives for a command that needs TensorFlow.
MISSING_MESSAGE = f"catdog-train needs TensorFlow: install the wheel's [train] extra ({TRAIN_EXTRA})"


def require_tensorflow() -> None:
    """Check that TensorFlow is installed, without importing it (fast: for the start of a command).

    Raises:
        TensorFlowMissingError: it is not (an edge-only install).
    """
    if importlib.util.find_spec("tensorflow") is None:
        raise TensorFlowMissingError(MISSING_MESSAGE)


@contextmanager
def quiet() -> Iterator[Captured]:
    """Around one TensorFlow call that prints: its lines on file descriptor 2 and its Python warnings are
    kept (in the yielded Captured, for an error message) instead of shown, unless verbose()."""
    with captured_stderr() as printed, warnings.catch_warnings():
        if not verbose():
            warnings.simplefilter("ignore")
        yield printed


def import_tensorflow() -> tuple[Any, Any]:
    """The tensorflow and keras modules, imported (once) without their start-up lines unless verbose().

    Raises:
        TensorFlowMissingError: TensorFlow is not installed or cannot be imported (with its reason).
    """
    require_tensorflow()
    return _import()


@functools.cache
def _import() -> tuple[Any, Any]:
    if not verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ INFO and WARNING lines after start-up
    try:
        with quiet() as printed:
            import absl.logging

            if not verbose():
                absl.logging.set_verbosity(absl.logging.ERROR)
            import keras
            import tensorflow as tf

            tf.config.list_physical_devices()  # the first device enumeration: CUDA's cuInit line
    except ImportError as exc:
        raise TensorFlowMissingError(
            f"cannot import TensorFlow ({printed.reason(exc)}); {MISSING_MESSAGE}"
        ) from None
    if not verbose():
        tf.get_logger().setLevel("ERROR")
    return tf, keras
