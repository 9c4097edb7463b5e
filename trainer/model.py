"""Keras model architectures. Every model takes raw 0..255 pixels: scaling is a layer inside it."""

from __future__ import annotations

from typing import Any

from trainer.config import Arch


def build_model(arch: Arch, input_shape: tuple[int, int, int], n_classes: int, seed: int = 1337) -> Any:
    """Build an uncompiled Keras model.

    Args:
        arch: "compact" (default, edge-friendly) or "seed" (the seed article's baseline).
        input_shape: (height, width, channels) of raw 0..255 pixels.
        n_classes: 2 gives one sigmoid output (probability of class 1); more give a softmax.
        seed: weight initialisation seed.

    Returns:
        keras.Model, input float32 (N, H, W, C) 0..255, output (N, 1) sigmoid or (N, n_classes) softmax.
    """
    import keras

    keras.utils.set_random_seed(seed)
    if arch is Arch.seed:
        return _seed(keras, input_shape, n_classes)
    return _compact(keras, input_shape, n_classes)


def _head(keras: Any, x: Any, n_classes: int) -> Any:
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name="prob")(x)
    return keras.layers.Dense(n_classes, activation="softmax", name="probs")(x)


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


def _compact(keras: Any, input_shape: tuple[int, int, int], n_classes: int) -> Any:
    """A small CNN for the edge: a strided stem, depthwise-separable blocks with batch norm,
    residual connections where shapes allow, global average pooling. About 0.2M parameters and
    0.09 GFLOPs (45M multiply-adds) at 128x128. Batch-norm momentum 0.9: with ~60 steps an epoch on
    small folders, the default 0.99 leaves the inference statistics far behind the weights."""
    layers = keras.layers
    inputs = keras.Input(input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = layers.Conv2D(24, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.ReLU()(x)
    # (filters, stride) of each separable block; the spatial size halves where stride is 2, and a
    # block that keeps shape adds its input back (residual), which makes the deep stack train faster.
    for filters, stride in ((48, 1), (96, 2), (96, 1), (192, 2), (192, 1), (256, 2), (256, 1)):
        shortcut = x
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(filters, 1, use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        if stride == 1 and shortcut.shape[-1] == filters:
            x = layers.Add()([shortcut, x])
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(inputs, _head(keras, x, n_classes), name="compact")
