"""Architectures: the seed baseline's size, the compact model's budget, heads for 2 and N classes."""

from __future__ import annotations

import numpy as np

from catdog.trainer.config import Arch
from catdog.trainer.model import build_model, multiply_adds


def test_seed_architecture_is_the_articles_32_5m_parameter_cnn():
    model = build_model(Arch.seed, (128, 128, 3), 2)
    assert 32_400_000 < model.count_params() < 32_600_000
    assert model.output_shape == (None, 1)


def test_compact_model_fits_the_edge_budget_and_takes_raw_pixels():
    import keras

    model = build_model(Arch.compact, (96, 96, 3), 2)
    assert model.count_params() < 300_000  # <= 300 KB as int8
    assert multiply_adds(model) <= 50_000_000  # <= 100 MFLOPs per photo
    # Scaling is the model's first layer: raw 0..255 pixels in, -1..1 to the convolutions.
    scale = next(layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling))
    assert np.allclose(scale(np.array([0.0, 127.5, 255.0], np.float32)), [-1.0, 0.0, 1.0])
    head = model.layers[-1]
    assert head.units == 1 and head.activation is keras.activations.sigmoid
    out = model.predict(np.stack([np.zeros((96, 96, 3)), np.full((96, 96, 3), 255.0)]).astype(np.float32), verbose=0)
    assert out.shape == (2, 1) and out[0, 0] != out[1, 0]  # the answer depends on the pixels


def test_multiply_adds_counts_convolutions_depthwise_and_dense_layers():
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8*4 outputs x 3*3*3 = 6912
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 4*4*4 outputs x 9 = 576
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2)(x)  # 4*2 = 8
    assert multiply_adds(keras.Model(inputs, outputs)) == 6912 + 576 + 8


def test_three_classes_get_a_softmax_head():
    model = build_model(Arch.compact, (64, 64, 3), 3)
    out = model.predict(np.zeros((1, 64, 64, 3), dtype=np.float32), verbose=0)
    assert out.shape == (1, 3) and abs(out.sum() - 1.0) < 1e-5


def test_softmax_head_is_the_sigmoid_head_exactly_and_leaves_other_models_alone():
    from catdog.trainer.model import softmax_head

    model = build_model(Arch.compact, (32, 32, 3), 2)
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    p = model.predict(pixels, verbose=0)[:, 0]
    two = softmax_head(model)
    assert two.output_shape == (None, 2) and two.layers[-1].activation.__name__ == "softmax"
    scores = two.predict(pixels, verbose=0)
    np.testing.assert_allclose(scores, np.stack([1 - p, p], axis=1), atol=1e-6)
    assert softmax_head(two) is two
    three = build_model(Arch.compact, (32, 32, 3), 3)
    assert softmax_head(three) is three


def test_softmax_head_keeps_further_outputs_after_the_class_scores():
    import keras

    from catdog.trainer.model import softmax_head

    inputs = keras.Input((8,))
    features = keras.layers.Dense(4, activation="relu")(inputs)
    prob = keras.layers.Dense(1, activation="sigmoid", name="prob")(features)
    presence = keras.layers.Dense(1, activation="sigmoid", name="presence")(features)
    model = keras.Model(inputs, [prob, presence])
    x = np.random.default_rng(1).normal(size=(3, 8)).astype(np.float32)
    before = model.predict(x, verbose=0)
    after = softmax_head(model).predict(x, verbose=0)
    np.testing.assert_allclose(after[0][:, 1], before[0][:, 0], atol=1e-6)
    np.testing.assert_array_equal(after[1], before[1])


def test_with_features_adds_the_pooled_features_output_to_pretrained_models_only():
    import keras

    from catdog.edge.contract import ModelContract
    from catdog.trainer.model import with_features

    inputs = keras.Input((8,))
    pooled = keras.layers.Dense(6, activation="relu", name="features")(inputs)  # the pretrained backbone's layer name
    scores = keras.layers.Dense(2, activation="softmax", name="probs")(pooled)
    contract = ModelContract(labels=("cat", "dog"), input_hw=(8, 8), activation="softmax")
    model, record = with_features(keras.Model(inputs, scores), contract)
    x = np.random.default_rng(2).normal(size=(3, 8)).astype(np.float32)
    out = model.predict(x, verbose=0)
    assert set(out) == {"scores", "features"} and out["features"].shape == (3, 6)
    assert record.output_name == "scores" and record.features.output == "features" and record.features.size == 6
    compact = build_model(Arch.compact, (32, 32, 3), 2)
    assert with_features(compact, contract) == (compact, contract)
