"""Load a saved .keras model safely and get per-label probabilities from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from catdog.edge.contract import ModelContract, sidecar_path
from catdog.edge.errors import ModelError

from ._tf import import_tensorflow, require_tensorflow


def load_keras(path: Path) -> tuple[Any, ModelContract]:
    """Load a .keras model in Keras safe mode, with the contract beside it.

    The .keras and the .tflite exported from it share that contract: when it says softmax, a sigmoid
    head is returned as the two-unit softmax head export made of it (trainer.model.softmax_head).

    Raises:
        TensorFlowMissingError: TensorFlow is not installed (checked first).
        ModelError: file or contract missing, not a Keras model, or it holds unsafe (lambda) code.
    """
    require_tensorflow()
    path = Path(path)
    if path.suffix != ".keras" or not path.is_file():
        raise ModelError(f"{path}: no such .keras model; train one with catdog-train fit")
    contract = ModelContract.load(sidecar_path(path))
    _, keras = import_tensorflow()
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"{path}: cannot load the Keras model safely ({first})") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the Keras model ({exc})") from None
    if contract.activation == "softmax":
        from .model import softmax_head

        model = softmax_head(model)
    return model, contract


def keras_scores(model: Any, images: np.ndarray, contract: ModelContract, batch_size: int = 64) -> np.ndarray:
    """Per-label probabilities of a Keras model.

    Args:
        model: the Keras model.
        images: uint8 (N, H, W, C) from edge.preprocess.
        contract: its contract.

    Returns:
        float32 (N, n_labels), the same layout as ModelContract.scores.
    """
    return keras_outputs(model, images, contract, batch_size)[0]


def keras_outputs(
    model: Any, images: np.ndarray, contract: ModelContract, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-label probabilities and presence scores of a Keras model.

    Args:
        model: the Keras model: one output, or {"scores", "presence"} for a model with a presence score.
        images: uint8 (N, H, W, C) from edge.preprocess.
        contract: its contract.

    Returns:
        (float32 (N, n_labels) in the layout of ModelContract.scores, float32 (N,) presence scores or
        None when the contract has no presence score).
    """
    raw = model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)
    presence = None
    if isinstance(raw, dict):
        if contract.presence is not None:
            presence = np.asarray(raw[contract.presence.output], np.float32).reshape(-1)
        raw = raw[contract.output_name]
    float_contract = contract.replace(output_quantization=None)
    return np.stack([float_contract.scores(row) for row in raw]), presence
