"""catdog edge: run a quantized cat/dog .tflite model on small devices, without TensorFlow."""

from .classify import Classifier, Failure, Prediction
from .contract import ModelContract
from .quantization import Quantization
from .models import bundled_models, default_model_path, resolve_model
from .errors import (
    CameraSetupError,
    CatDogError,
    ImageError,
    ModelError,
    RuntimeMissingError,
    SourceError,
)
from .preprocess import prepare

__all__ = [
    "CameraSetupError",
    "CatDogError",
    "Classifier",
    "Failure",
    "ImageError",
    "ModelContract",
    "ModelError",
    "Prediction",
    "Quantization",
    "RuntimeMissingError",
    "SourceError",
    "bundled_models",
    "default_model_path",
    "prepare",
    "resolve_model",
]
