"""Keras model architectures. Every model takes raw 0..255 pixels: scaling is a layer inside it."""

from __future__ import annotations

from typing import Any

import numpy as np

from catdog.edge.contract import ModelContract
from catdog.edge.features import OUTPUT as FEATURES, Features

from ._tf import import_tensorflow
from .config import Arch
from .presence import SCORES


def build_model(
    arch: Arch, input_shape: tuple[int, int, int], n_classes: int, seed: int = 1337, synchronized: bool = False
) -> Any:
    """Build an uncompiled Keras model.

    Args:
        arch: "compact" (default, edge-friendly) or "seed" (the seed article's baseline).
        input_shape: (height, width, channels) of raw 0..255 pixels.
        n_classes: 2 gives one sigmoid output (probability of class 1); more give a softmax.
        seed: weight initialisation seed.
        synchronized: batch norm computes each step's statistics over the global batch, across replicas
            (fit under a strategy with more than one): every replica then keeps the same moving statistics.
            The layers are otherwise the same (the saved model is rebuilt without it).

    Returns:
        keras.Model, input float32 (N, H, W, C) 0..255, output (N, 1) sigmoid or (N, n_classes) softmax.
    """
    _, keras = import_tensorflow()
    keras.utils.set_random_seed(seed)
    if arch is Arch.seed:
        return _seed(keras, input_shape, n_classes)
    return _compact(keras, input_shape, n_classes, synchronized)


def _head(keras: Any, x: Any, n_classes: int) -> Any:
    # float32 whatever the global policy: under mixed_float16 (--mixed-precision) a float16 sigmoid or
    # softmax saturates (float16 cannot tell 0.9995 from 1), and the loss would be computed on that.
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name="prob", dtype="float32")(x)
    return keras.layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(x)


def _seed(keras: Any, input_shape: tuple[int, int, int], n_classes: int) -> Any:
    """The seed article's CNN, corrected to take 3-channel raw pixels (32.5M parameters at 128x128)."""
    layers = keras.layers
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, _head(keras, x, n_classes), name="seed")


def _compact(keras: Any, input_shape: tuple[int, int, int], n_classes: int, synchronized: bool = False) -> Any:
    """A small CNN for the edge, shaped by what trains fast on a 2-core CPU: plain 3x3 convolutions
    where channels are few (they run several times faster per multiply-add than depthwise ones),
    depthwise-separable blocks where channels are many (a plain 3x3 there would blow the size
    budget), batch norm, max pooling, global average pooling. At 96x96: 236k parameters, 45M
    multiply-adds (89 MFLOPs). Batch-norm momentum 0.9: with ~60 steps an epoch on small folders,
    the default 0.99 leaves the inference statistics far behind the weights."""
    layers = keras.layers

    def conv(x: Any, filters: int, kernel: int = 3, strides: int = 1) -> Any:
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9, synchronized=synchronized)(x)
        return layers.ReLU()(x)

    def separable(x: Any, filters: int) -> Any:
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9, synchronized=synchronized)(x)
        x = layers.ReLU()(x)
        return conv(x, filters, kernel=1)

    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = conv(x, 16, strides=2)  # 1/2
    x = conv(x, 32)
    x = layers.MaxPooling2D(2)(x)  # 1/4
    x = conv(x, 64)
    x = layers.MaxPooling2D(2)(x)  # 1/8
    x = conv(x, 96)
    x = conv(x, 96)
    x = layers.MaxPooling2D(2)(x)  # 1/16
    x = separable(x, 192)
    x = separable(x, 256)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, _head(keras, x, n_classes), name="compact")


def multiply_adds(model: Any) -> int:
    """Multiply-adds of one forward pass for one photo: convolutions, depthwise convolutions and
    dense layers (batch norm folds into the convolutions on export; pooling and activations are
    comparatively free). FLOPs are about twice this."""
    _, keras = import_tensorflow()
    layers = keras.layers
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def softmax_head(model: Any) -> Any:
    """The same model with a two-class sigmoid head turned into the equivalent two-unit softmax head.

    The first output's layer, Dense(1, sigmoid) "prob" computing sigmoid(z) with z = x.W + b, becomes
    Dense(2, softmax) "probs" with weights [-W/2, W/2] and bias [-b/2, b/2]: its scores are
    softmax([-z/2, z/2]) = [1 - sigmoid(z), sigmoid(z)], so nothing is retrained and the answers stay the
    same (to float rounding). One score per label is what the standard TFLite metadata can label
    (edge.std_metadata). Other outputs are kept as they are, after it. Any other model is returned as it is.

    Args:
        model: a keras.Model whose first output is the class scores, or whose outputs are {"scores", ...}.

    Returns:
        keras.Model, output 0 (N, 2) softmax when it was (N, 1) sigmoid.
    """
    _, keras = import_tensorflow()
    named = model.output if isinstance(model.output, dict) else None  # {"scores", "presence"}: trainer.presence
    outputs = list(model.outputs)
    first = named[SCORES] if named is not None else outputs[0]
    head = first._keras_history.operation
    if not (isinstance(head, keras.layers.Dense) and head.units == 1 and head.activation is keras.activations.sigmoid):
        return model
    kernel, bias = head.get_weights()  # (features, 1), (1,)
    two = keras.layers.Dense(2, activation="softmax", name="probs", dtype="float32")
    scores = two(head.input)
    two.set_weights([np.concatenate([-kernel / 2, kernel / 2], axis=1), np.concatenate([-bias / 2, bias / 2])])
    if named is not None:
        return keras.Model(model.inputs, {**named, SCORES: scores}, name=model.name)
    return keras.Model(model.inputs, [scores, *outputs[1:]] if len(outputs) > 1 else scores, name=model.name)


def with_features(model: Any, contract: ModelContract) -> tuple[Any, ModelContract]:
    """The model with its pooled backbone features as one more output, "features", for catdog-edge learn.

    Only a pretrained model has them (the layer trainer.efficientnet.BACKBONE_OUTPUT, (N, 1280)); any other
    model and its contract are returned as they are. The outputs become a dict {"scores", ..., "features"} and
    the contract names the class scores and the features (edge.features); its dtype and quantization are
    filled in from the converted model.

    Args:
        model: a keras.Model whose first output is the class scores, or whose outputs are {"scores", ...}.
        contract: its contract.
    """
    from .efficientnet import BACKBONE_OUTPUT

    _, keras = import_tensorflow()
    try:
        layer = model.get_layer(BACKBONE_OUTPUT)
    except ValueError:
        return model, contract
    named = dict(model.output) if isinstance(model.output, dict) else {SCORES: model.outputs[0]}
    named[FEATURES] = layer.output
    record = Features(output=FEATURES, size=int(layer.output.shape[-1]))
    return keras.Model(model.inputs, named, name=model.name), contract.replace(output_name=SCORES, features=record)
