"""The trainer's errors: members of catdog's one exception family (catdog.edge.errors.CatDogError)."""

from __future__ import annotations

from catdog.edge.errors import CatDogError


class DataError(CatDogError):
    """A training or evaluation photo folder is missing, empty or laid out wrongly, or a setting is invalid."""

    exit_code = 2


class RunStateError(CatDogError):
    """fit would lose or mix up work: a model is in the way at --out, or --resume finds no checkpoint,
    an unreadable one, or one made by other settings."""

    exit_code = 2


class TensorFlowMissingError(CatDogError):
    """TensorFlow cannot be imported: an edge-only install, or a broken TensorFlow."""

    exit_code = 2


class WeightsError(CatDogError):
    """Pretrained weights cannot be found, read or fitted to the architecture (no half-written model is left)."""

    exit_code = 2


class CacheError(CatDogError):
    """fit's photo cache cannot be written, or (inside trainer.cache) a cache file is damaged and is rebuilt."""

    exit_code = 2


class DistributeError(CatDogError):
    """--distribute cannot be set up: TF_CONFIG missing or malformed, or a batch the replicas cannot split."""

    exit_code = 2
