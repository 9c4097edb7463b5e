"""Typed, validated configuration of the trainer's commands."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from edge.errors import DataError


class Arch(str, Enum):
    """Model architectures catdog-train can fit."""

    compact = "compact"
    seed = "seed"


class ExportMode(str, Enum):
    """How export stores the model's weights and tensors."""

    int8 = "int8"
    float32 = "float32"


@dataclass(frozen=True)
class FitConfig:
    """Configuration of catdog-train fit."""

    data_dir: Path
    """Class-per-folder photos to train on (folder names are the labels, sorted)."""
    out: Path = Path("runs/catdog.keras")
    """Where the best model goes; its contract (.json) and history (.history.json) go beside it."""
    val_dir: Path | None = None
    """Class-per-folder validation photos; None to split val_split off data_dir."""
    val_split: float = 0.2
    """Fraction of each class held out for validation when val_dir is None."""
    arch: Arch = Arch.compact
    """Model architecture."""
    image_hw: tuple[int, int] = (128, 128)
    """Model input (height, width)."""
    epochs: int = 30
    """Maximum number of epochs (early stopping may end sooner)."""
    batch_size: int = 32
    """Photos per training step."""
    learning_rate: float = 2e-3
    """Peak Adam learning rate (cosine decay to 2% of it over the epochs)."""
    seed: int = 1337
    """Seed for the split, shuffling, augmentation and weights."""
    augment: bool = True
    """Random flips, rotations, zooms and contrast changes while training."""
    patience: int = 10
    """Epochs without a better validation accuracy before training stops."""
    limit_per_class: int | None = None
    """Use at most this many photos per class from each folder (quick runs, tests)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.val_split < 1.0:
            raise DataError(f"--val-split must be between 0 and 1, got {self.val_split}")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise DataError("--epochs, --batch-size and --patience must be at least 1")
        if min(self.image_hw) < 32:
            raise DataError(f"--image-size must be at least 32 px, got {self.image_hw}")
        if self.learning_rate <= 0:
            raise DataError(f"--lr must be positive, got {self.learning_rate}")
        if self.limit_per_class is not None and self.limit_per_class < 2:
            raise DataError("--limit-per-class must be at least 2")
        if self.out.suffix != ".keras":
            raise DataError(f"--out must end in .keras, got {self.out}")


@dataclass(frozen=True)
class ExportConfig:
    """Configuration of catdog-train export."""

    model_path: Path
    """The .keras model (its .json contract beside it)."""
    out: Path | None = None
    """Output .tflite path; None for the model's path with .tflite."""
    mode: ExportMode = ExportMode.int8
    """int8: full-integer, calibrated, uint8 input of raw pixels; float32: no quantization."""
    calibration_dir: Path | None = None
    """Class-per-folder photos for int8 calibration; None for the training photos in the contract."""
    calibration_count: int = 200
    """Calibration photos, drawn evenly from each class."""
    parity_dir: Path | None = None
    """Photos for the parity check after export; None for the validation photos in the contract."""
    seed: int = 1337
    """Seed for drawing calibration photos."""

    def __post_init__(self) -> None:
        if self.calibration_count < 1:
            raise DataError("--calibration-count must be at least 1")
        if self.out is not None and self.out.suffix != ".tflite":
            raise DataError(f"--out must end in .tflite, got {self.out}")

    @property
    def out_path(self) -> Path:
        """Where the .tflite file goes."""
        return self.out if self.out is not None else self.model_path.with_suffix(".tflite")
