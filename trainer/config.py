"""Typed, validated configuration of the trainer's commands."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from catdog.edge.contract import CROP_RANGE
from catdog.edge.std_metadata import ModelInfo
from .errors import DataError
from .augment import AugmentConfig


class Arch(str, Enum):
    """Model architectures catdog-train can fit."""

    compact = "compact"
    """A small CNN trained from scratch (trainer.model)."""
    seed = "seed"
    """The seed article's CNN, the baseline."""
    efficientnet_lite0 = "efficientnet-lite0"
    """EfficientNet-Lite0 with ImageNet weights (trainer.efficientnet); fit trains a new head on its
    frozen features (trainer.transfer)."""

    @property
    def pretrained(self) -> bool:
        """Whether fit starts from pretrained weights (--weights) and trains a head on frozen features."""
        return self is Arch.efficientnet_lite0


#: The input size each architecture is fitted at when --image-size is not given.
ARCH_IMAGE_HW = {Arch.compact: (96, 96), Arch.seed: (96, 96), Arch.efficientnet_lite0: (224, 224)}


class Keep(str, Enum):
    """Which epoch's weights fit saves."""

    best = "best"
    """The epoch with the best validation accuracy; training stops after `patience` epochs without one."""
    last = "last"
    """The final epoch, all epochs run: the validation photos are only measured, never used to choose,
    so their accuracy is an unbiased estimate (the bundled model's recipe)."""


class Distribute(str, Enum):
    """How fit spreads training over devices and machines (tf.distribute; trainer.distribute)."""

    none = "none"
    """One process, TensorFlow's default device (a GPU when there is one)."""
    mirrored = "mirrored"
    """tf.distribute.MirroredStrategy: one replica per local GPU (one on a machine without GPUs)."""
    multi_worker = "multi-worker"
    """tf.distribute.MultiWorkerMirroredStrategy over the machines TF_CONFIG lists: the same command on
    each; worker 0 (or the "chief" task) writes every file."""


class PresenceMethod(str, Enum):
    """The presence score a pretrained fit adds, so the model can answer "none" (trainer.presence)."""

    auto = "auto"
    """When every label is one the ImageNet head knows (cat, dog) and the weights carry that head: both
    from 512 training photos on, imagenet below (trainer.presence.BOTH_FROM_PHOTOS); else familiarity;
    off for the architectures trained from scratch."""
    both = "both"
    """The larger of the imagenet and familiarity parts: a photo either accepts counts as present."""
    imagenet = "imagenet"
    """The backbone's ImageNet logits of the classes the labels stand for."""
    familiarity = "familiarity"
    """Cosine similarity of the features to centroids of the training photos' features."""
    off = "off"
    """No presence score: the model always answers one of its labels."""


class ExportMode(str, Enum):
    """How export stores the model's weights and tensors."""

    int8 = "int8"
    """Full integer: int8 weights and activations, uint8 input of raw pixels and uint8 output (calibrated)."""
    float16 = "float16"
    """float16 weights, float32 input, output and arithmetic: half the size, float accuracy."""
    dynamic = "dynamic"
    """Dynamic-range: int8 weights, float32 input and output, activations quantized on the fly."""
    none = "none"
    """No quantization: float32 throughout."""

    @property
    def stored_as(self) -> str:
        """The contract's mode for this export: "int8", "float16", "dynamic" or "float32"."""
        return "float32" if self is ExportMode.none else self.value


@dataclass(frozen=True)
class CheckConfig:
    """Configuration of the data checks run before training (catdog-train check, and the first step of fit).

    The photo sets they leave are the ones fit trains and validates on, and the ones export rebuilds
    from a model's contract for calibration and parity (trainer.recipe.recorded_check).
    """

    data_dir: Path
    """Class-per-folder training photos (folder names are the labels, sorted)."""
    val_dir: Path | None = None
    """Class-per-folder validation photos; None to split val_split off data_dir."""
    val_split: float = 0.2
    """Fraction of each class held out for validation when val_dir is None."""
    seed: int = 1337
    """Seed for the split and the limit_per_class sampling (and, in fit, shuffling, augmentation and weights)."""
    limit_per_class: int | None = None
    """Check (and train on) at most this many photos per class from each folder (quick runs, tests)."""
    min_per_class: int = 10
    """Fewest usable training photos a class may have."""
    min_side: int = 32
    """Photos whose shorter side is under this many pixels are left out."""
    imbalance_ratio: float = 3.0
    """Warn when the largest class has more than this many times the photos of the smallest."""
    strict: bool = False
    """Any problem file (unreadable, too small, duplicate, unsupported) is an error instead of a warning."""

    def __post_init__(self) -> None:
        if not 0.0 < self.val_split < 1.0:
            raise DataError(f"--val-split must be between 0 and 1, got {self.val_split}")
        if self.limit_per_class is not None and self.limit_per_class < 2:
            raise DataError("--limit-per-class must be at least 2")
        if self.min_per_class < 1 or self.min_side < 1:
            raise DataError("--min-per-class and --min-side must be at least 1")
        if self.imbalance_ratio < 1.0:
            raise DataError(f"--imbalance-ratio must be at least 1, got {self.imbalance_ratio}")


@dataclass(frozen=True)
class FitConfig(CheckConfig):
    """Configuration of catdog-train fit: the data checks it runs first (CheckConfig's fields), then training."""

    out: Path = Path("runs/catdog.keras")
    """Where the model goes; its contract (.json) and history (.history.json) go beside it."""
    arch: Arch = Arch.compact
    """Model architecture."""
    image_hw: tuple[int, int] | None = None
    """Model input (height, width); None: the architecture's (ARCH_IMAGE_HW), filled in on creation."""
    weights: str | None = None
    """Pretrained architectures: "imagenet" (the pretrained extra's package), a .pth / .weights.h5
    path, or "none" (random initialisation); None: "imagenet" for them, "none" for the others
    (trainer.pretrained.resolve_weights). Filled in on creation."""
    epochs: int = 63
    """Maximum number of epochs (early stopping may end sooner), the small ones included."""
    small_fraction: float = 0.7
    """Fraction of the epochs trained first on photos at small_size (progressive resizing): such an
    epoch costs about (small/full)^2 of a full-size one, so the same time buys more epochs. Applies to
    --arch compact (the seed model takes one input size only) when small_size is under image_hw."""
    small_size: int = 64
    """Square size of the photos in the small epochs."""
    source_size: int = 128
    """With augmentation, the training photos are decoded once with their shorter side at this size
    (never under image_hw) and every random crop is resampled from them to the training size, so a
    zoomed-in crop keeps its detail instead of being enlarged from an image_hw copy. The model's
    input stays image_hw; validation and the edge decode at image_hw as before."""
    crop: float | None = None
    """Side of the centred region of each photo the model is fed, as a fraction of each side: the
    contract's crop, used for validation, export and on the edge. None: with augmentation, the mean
    side of the random training crops (AugmentConfig.mean_crop_side, 0.83 with the defaults), so
    subjects appear at the size the model learnt them; without augmentation, 1.0 (the whole photo)."""
    batch_size: int = 32
    """Photos per training step."""
    learning_rate: float = 2e-3
    """Peak AdamW learning rate (cosine decay to 2% of it over the epochs)."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay (0 for plain Adam)."""
    label_smoothing: float = 0.0
    """Targets softened towards uniform by this much: less over-confident, better-calibrated scores."""
    augment: bool = True
    """Random flips, rotations, crops, shifts and colour changes while training (trainer.augment.AugmentConfig)."""
    patience: int = 10
    """Epochs without a better validation accuracy before training stops (keep=best only)."""
    keep: Keep = Keep.best
    """Save the best epoch by validation accuracy (with early stopping) or the last epoch."""
    grayscale: bool = False
    """Train a 1-channel model on grayscale photos (contract color "L"; the edge converts likewise)."""
    presence: PresenceMethod = PresenceMethod.auto
    """Pretrained architectures: the presence score that lets the model answer "none" (PresenceMethod)."""
    none_dir: Path | None = None
    """A folder of the user's own photos with none of the labels in them (e.g. frames of the empty scene
    from their camera): they move the presence threshold (trainer.presence.calibrate_with_none)."""
    distribute: Distribute | None = None
    """How training is spread (Distribute); None: mirrored when TensorFlow sees more than one GPU, else
    none. batch_size is the global batch whatever the number of replicas; the contract records the
    strategy, replicas and global batch used."""
    mixed_precision: bool = False
    """Compute in float16 with float32 weights (keras mixed_float16): faster on recent GPUs, slower on CPUs."""
    cache_dir: Path | None = None
    """Folder of the decoded-photo cache (trainer.cache); None: the user's cache folder
    (trainer.cache.default_cache_dir). Not part of the recipe: it changes where pixels are kept, not them."""
    no_cache: bool = False
    """Decode the photos into memory for this run instead of using the cache (not part of the recipe)."""
    resume: bool = False
    """Continue from the checkpoint an interrupted run with the same settings left beside out (not part
    of the recipe: it does not change what is trained)."""
    overwrite: bool = False
    """Replace a model already at out; without it, an existing out is an error (not part of the recipe)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # Defaults that depend on the architecture are filled in, so the recorded recipe states them.
        if self.image_hw is None:
            object.__setattr__(self, "image_hw", ARCH_IMAGE_HW[self.arch])
        if self.weights is None:
            object.__setattr__(self, "weights", "imagenet" if self.arch.pretrained else "none")
        if self.weights != "none" and not self.arch.pretrained:
            raise DataError(f"--weights {self.weights}: only --arch efficientnet-lite0 starts from pretrained weights")
        if self.arch.pretrained and self.resume:
            raise DataError("--resume: a pretrained fit trains its head in one step and leaves no checkpoint to continue")
        if self.arch.pretrained and (self.distribute not in (None, Distribute.none) or self.mixed_precision):
            raise DataError("--distribute and --mixed-precision: a pretrained fit computes its features once "
                            "and trains no network; drop them or use --arch compact")
        if self.arch.pretrained and self.grayscale:
            raise DataError("--grayscale: the pretrained weights take RGB photos; drop --grayscale or use --arch compact")
        if not self.arch.pretrained and self.presence not in (PresenceMethod.auto, PresenceMethod.off):
            raise DataError(f"--presence {self.presence.value}: only --arch efficientnet-lite0 has a presence score")
        if self.none_dir is not None and (not self.arch.pretrained or self.presence is PresenceMethod.off):
            raise DataError("--none DIR needs a presence score: use --arch efficientnet-lite0 without --presence off")
        if self.no_cache and self.cache_dir is not None:
            raise DataError("--cache DIR and --no-cache contradict each other; pass one of them")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise DataError("--epochs, --batch-size and --patience must be at least 1")
        if min(self.image_hw) < 32:
            raise DataError(f"--image-size must be at least 32 px, got {self.image_hw}")
        if not 0.0 <= self.small_fraction < 1.0:
            raise DataError(f"--small-fraction must be at least 0 and under 1, got {self.small_fraction}")
        if self.small_size < 32:
            raise DataError(f"--small-size must be at least 32 px, got {self.small_size}")
        if self.source_size < 32:
            raise DataError(f"--source-size must be at least 32 px, got {self.source_size}")
        if self.crop is not None and not CROP_RANGE[0] <= self.crop <= CROP_RANGE[1]:
            raise DataError(f"--crop must be between 0.25 and 1 (a fraction of each side), got {self.crop}")
        if self.learning_rate <= 0:
            raise DataError(f"--lr must be positive, got {self.learning_rate}")
        if self.weight_decay < 0 or not 0.0 <= self.label_smoothing < 0.5:
            raise DataError("--weight-decay must be 0 or more and --label-smoothing between 0 and 0.5")
        if self.out.suffix != ".keras":
            raise DataError(f"--out must end in .keras, got {self.out}")

    @property
    def small_epochs(self) -> int:
        """Epochs trained at small_size before the rest at image_hw (0 when progressive resizing does not
        apply); at least one epoch is always at full size."""
        if self.arch is not Arch.compact or self.small_size >= min(self.image_hw):
            return 0
        return min(round(self.epochs * self.small_fraction), self.epochs - 1)

    @property
    def source_hw(self) -> tuple[int, int]:
        """(height, width) the training photos are decoded at: image_hw scaled up so that its shorter
        side is source_size when augmenting (never scaled down), else image_hw."""
        height, width = self.image_hw
        scale = self.source_size / min(height, width)
        if not self.augment or scale <= 1.0:
            return self.image_hw
        return round(height * scale), round(width * scale)

    @property
    def input_crop(self) -> float:
        """The contract's centre crop: crop if given, else the default described there."""
        if self.crop is not None:
            return self.crop
        # A pretrained fit computes its features once, from whole photos: no random crops to match.
        return round(AugmentConfig().mean_crop_side, 2) if self.augment and not self.arch.pretrained else 1.0

    @property
    def color(self) -> str:
        """The contract's colour: "L" for grayscale, else "RGB"."""
        return "L" if self.grayscale else "RGB"


@dataclass(frozen=True)
class ExportConfig:
    """Configuration of catdog-train export."""

    model_path: Path
    """The .keras model (its .json contract beside it)."""
    out: Path | None = None
    """Output .tflite path; None for the model's path with .tflite."""
    mode: ExportMode = ExportMode.none
    """How weights and tensors are stored (see ExportMode); float32 unless asked (--mode, --quantize for int8)."""
    calibration_dir: Path | None = None
    """Class-per-folder photos for int8 calibration; None for the training photos in the contract."""
    calibration_count: int = 300
    """int8 calibration photos, stratified: each class in proportion to its share of the folder."""
    parity_dir: Path | None = None
    """Photos for the parity check after export; None for the validation photos in the contract."""
    data_root: Path | None = None
    """The folder that holds the photo folders the contract records (it records them relative to where fit
    ran, or by their final name when they were elsewhere; trainer.recipe.recorded_check); None: the
    working directory."""
    seed: int = 1337
    """Seed for drawing calibration photos."""
    info: ModelInfo = ModelInfo()
    """Name, description, version, author and licence written in the standard TFLite metadata."""

    def __post_init__(self) -> None:
        if self.calibration_count < 1:
            raise DataError("--calibration-count must be at least 1")
        if self.out is not None and self.out.suffix != ".tflite":
            raise DataError(f"--out must end in .tflite, got {self.out}")

    @property
    def out_path(self) -> Path:
        """Where the .tflite file goes."""
        return self.out if self.out is not None else self.model_path.with_suffix(".tflite")


@dataclass(frozen=True)
class EvaluateConfig:
    """Configuration of catdog-train evaluate."""

    model_path: Path
    """The .keras or .tflite model (its contract beside it)."""
    data_dir: Path
    """Class-per-folder labelled photos; the folder names must be the model's labels."""
    plots_dir: Path | None = None
    """Where to write the confusion-matrix PNG; None for no plot."""
    most_wrong: int = 10
    """How many of the most confidently wrong photos to list."""
    limit_per_class: int | None = None
    """Evaluate at most this many photos per class (drawn with seed)."""
    seed: int = 1337
    """Seed for limit_per_class sampling."""
    negatives_dir: Path | None = None
    """A folder of photos with none of the labels in them: the report says how many the presence score
    rejects (answers "none")."""
    record: bool = False
    """Write the none-rate figures into the model's contract (metrics.evaluation; the .tflite's embedded
    contract and the sidecar), atomically."""

    def __post_init__(self) -> None:
        if Path(self.model_path).suffix not in (".keras", ".tflite"):
            raise DataError(f"{self.model_path}: expected a .keras or .tflite model")
        if self.most_wrong < 0:
            raise DataError("--most-wrong must be 0 or more")
        if self.limit_per_class is not None and self.limit_per_class < 1:
            raise DataError("--limit-per-class must be at least 1")
