"""Loading .keras models: Keras safe mode refuses a model that carries Python code."""

from __future__ import annotations

import pytest

from catdog.edge.contract import ModelContract, sidecar_path
from catdog.edge.errors import ModelError
from catdog.trainer.keras_model import load_keras


def test_a_model_with_a_python_lambda_layer_is_refused(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)  # arbitrary Python: runs on load unless refused
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    path = tmp_path / "unsafe.keras"
    model.save(path)
    ModelContract(labels=("cat", "dog"), input_hw=(32, 32), mode="keras").save(sidecar_path(path))
    with pytest.raises(ModelError, match="cannot load the Keras model safely.*Lambda"):
        load_keras(path)


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="no such .keras model"):
        load_keras(tmp_path / "nothing.keras")
