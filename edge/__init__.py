"""catdog edge: run a quantized cat/dog .tflite model on small devices, without TensorFlow."""

from edge.classify import Classifier, Failure, Prediction, default_model_path
from edge.contract import ModelContract, Quantization
from edge.errors import (
    CameraSetupError,
    CatDogError,
    DataError,
    ImageError,
    ModelError,
    ParityError,
    RuntimeMissingError,
    SourceError,
)
from edge.preprocess import prepare

__all__ = [
    "CameraSetupError",
    "CatDogError",
    "Classifier",
    "DataError",
    "Failure",
    "ImageError",
    "ModelContract",
    "ModelError",
    "ParityError",
    "Prediction",
    "Quantization",
    "RuntimeMissingError",
    "SourceError",
    "default_model_path",
    "prepare",
]
