"""Fit a Keras CNN on a class-per-folder photo tree and save the best model with its contract."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge.contract import ModelContract, atomic_write_bytes, sidecar_path
from edge.errors import DataError
from trainer.config import FitConfig
from trainer.data import LoadedPhotos, PhotoSet, load_photos, per_class_sample, scan_folder, stratified_split
from trainer.versions import library_versions


@dataclass(frozen=True)
class FitResult:
    """What fit produced."""

    model_path: Path
    """The best .keras model (by validation accuracy)."""
    contract_path: Path
    """Its contract (.json)."""
    history_path: Path
    """Per-epoch loss and accuracy (.history.json)."""
    best_val_accuracy: float
    """Validation accuracy of the saved model."""
    best_epoch: int
    """1-based epoch of the saved model."""
    epochs_run: int
    """Epochs actually run."""
    train_photos: int
    """Photos trained on."""
    val_photos: int
    """Photos validated on."""
    skipped: tuple[tuple[str, str], ...]
    """(path, reason) of photos that could not be read."""


def history_path_for(model_path: Path) -> Path:
    """models/catdog.keras -> models/catdog.history.json."""
    return model_path.with_suffix(".history.json")


def select_photos(config: FitConfig) -> tuple[PhotoSet, PhotoSet]:
    """The (train, val) photo sets a fit config describes.

    Raises:
        DataError: folders missing, empty or with different labels.
    """
    train = scan_folder(config.data_dir)
    if config.val_dir is not None:
        val = scan_folder(config.val_dir)
        if val.class_names != train.class_names:
            raise DataError(
                f"--val {config.val_dir} has classes {list(val.class_names)}, "
                f"{config.data_dir} has {list(train.class_names)}; they must match"
            )
    else:
        train, val = stratified_split(train, config.val_split, config.seed)
    if config.limit_per_class is not None:
        train = per_class_sample(train, config.limit_per_class, config.seed)
        val = per_class_sample(val, config.limit_per_class, config.seed)
    return train, val


def _augmenter(keras: Any, seed: int) -> Any:
    """Photo augmentations, applied to training batches only (raw 0..255 pixels in and out)."""
    layers = keras.layers
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.06, fill_mode="reflect", seed=seed + 1),
            layers.RandomZoom((-0.2, 0.0), fill_mode="reflect", seed=seed + 2),
            layers.RandomTranslation(0.08, 0.08, fill_mode="reflect", seed=seed + 3),
            layers.RandomContrast(0.2, value_range=(0, 255), seed=seed + 4),
        ],
        name="augment",
    )


def _dataset(tf: Any, photos: LoadedPhotos, batch_size: int, shuffle_seed: int | None, augment: Any) -> Any:
    """A tf.data pipeline over already decoded photos: no JPEG work after loading."""
    ds = tf.data.Dataset.from_tensor_slices((photos.images, photos.labels))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(photos.labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def fit(config: FitConfig, verbose: int = 2, log: Callable[[str], None] = lambda _: None) -> FitResult:
    """Train a model as the config says and save the best epoch's weights, contract and history.

    Args:
        config: what to train on and how.
        verbose: Keras progress output (0 silent, 1 bar, 2 a line per epoch).
        log: receives short progress messages (photo counts, skipped photos).

    Returns:
        The paths written and the best validation accuracy.

    Raises:
        DataError: the photo folders are unusable.
    """
    train_set, val_set = select_photos(config)
    contract = ModelContract(labels=train_set.class_names, input_hw=config.image_hw, mode="keras")
    log(f"photos: train {train_set.counts()}, val {val_set.counts()}")
    train = load_photos(train_set, contract.input_hw, contract.color, contract.resize)
    val = load_photos(val_set, contract.input_hw, contract.color, contract.resize)
    skipped = train.skipped + val.skipped
    for path, reason in skipped:
        log(f"warning: skipped {reason}")

    import keras
    import tensorflow as tf

    from trainer.model import build_model

    keras.utils.set_random_seed(config.seed)
    n_classes = len(contract.labels)
    model = build_model(config.arch, contract.input_shape, n_classes, config.seed)
    binary = n_classes == 2
    steps_per_epoch = -(-len(train.labels) // config.batch_size)
    # Cosine decay over the whole run: large steps early, fine ones at the end; no noisy plateau logic.
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.02
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    augment = _augmenter(keras, config.seed) if config.augment else None
    train_ds = _dataset(tf, train, config.batch_size, config.seed, augment)
    val_ds = _dataset(tf, val, config.batch_size, None, None)

    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".fit-") as tmp:
        best = Path(tmp) / "best.keras"
        callbacks = [
            keras.callbacks.ModelCheckpoint(str(best), monitor="val_accuracy", mode="max", save_best_only=True),
            keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=config.patience),
        ]
        history = model.fit(
            train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks, verbose=verbose
        )
        shutil.move(best, out)

    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    best_epoch = int(np.argmax(hist["val_accuracy"])) + 1
    best_acc = float(hist["val_accuracy"][best_epoch - 1])
    history_path = history_path_for(out)
    atomic_write_bytes(history_path, (json.dumps(hist, indent=1) + "\n").encode())
    contract = contract.replace(
        training={
            "arch": config.arch.value,
            "train_dir": str(Path(config.data_dir).resolve()),
            "val_dir": str(Path(config.val_dir).resolve()) if config.val_dir else None,
            "val_split": None if config.val_dir else config.val_split,
            "limit_per_class": config.limit_per_class,
            "train_photos": len(train.labels),
            "val_photos": len(val.labels),
            "epochs_run": len(hist["val_accuracy"]),
            "best_epoch": best_epoch,
            "config": _config_record(config),
            "versions": library_versions(),
        },
        metrics={"keras_val_accuracy": round(best_acc, 4)},
    )
    contract.save(sidecar_path(out))
    return FitResult(
        model_path=out,
        contract_path=sidecar_path(out),
        history_path=history_path,
        best_val_accuracy=best_acc,
        best_epoch=best_epoch,
        epochs_run=len(hist["val_accuracy"]),
        train_photos=len(train.labels),
        val_photos=len(val.labels),
        skipped=skipped,
    )


def _config_record(config: FitConfig) -> dict[str, Any]:
    record = asdict(config)
    for key, value in record.items():
        if isinstance(value, Path):
            record[key] = str(value)
        elif hasattr(value, "value"):
            record[key] = value.value
    record["image_hw"] = list(config.image_hw)
    return record


def recorded_photos(contract: ModelContract) -> tuple[PhotoSet, PhotoSet]:
    """The (train, val) photo sets a model was fitted on, rebuilt from its contract's training record.

    Raises:
        DataError: the contract has no training record, or its folders are gone.
    """
    record = contract.training.get("config")
    if not record:
        raise DataError("the model's contract records no training data; pass the photo folders explicitly")
    config = FitConfig(
        data_dir=Path(record["data_dir"]),
        val_dir=Path(record["val_dir"]) if record.get("val_dir") else None,
        val_split=float(record["val_split"]),
        image_hw=tuple(record["image_hw"]),
        seed=int(record["seed"]),
        limit_per_class=record.get("limit_per_class"),
    )
    return select_photos(config)
