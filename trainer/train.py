"""Fit a Keras CNN on a class-per-folder photo tree and save the best (or last) epoch with its contract."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from catdog.edge.contract import ModelContract, atomic_write_bytes, sidecar_path
from catdog.edge.errors import CatDogError

from .errors import DataError
from .config import FitConfig, Keep
from . import data
from .augment import augment_batch
from .data import LoadedPhotos, PhotoSet, load_for, load_photos
from .scan import DataReport, check_data
from .versions import library_versions


class TrainingInterrupted(CatDogError):
    """Training was stopped (Ctrl-C); what had been learnt is saved and the run can be resumed."""

    exit_code = 130


@dataclass(frozen=True)
class FitResult:
    """What fit produced."""

    model_path: Path
    """The saved .keras model (the best epoch by validation accuracy, or the last; see FitConfig.keep)."""
    contract_path: Path
    """Its contract (.json)."""
    history_path: Path
    """Per-epoch loss, accuracy and learning rate (.history.json; the same as CSV in .history.csv)."""
    curves_path: Path | None
    """Training curves (.curves.png); None when matplotlib is missing."""
    val_accuracy: float
    """Validation accuracy of the saved model."""
    saved_epoch: int
    """1-based epoch of the saved model."""
    best_epoch: int
    """1-based epoch with the best validation accuracy (the saved one when keep=best)."""
    epochs_run: int
    """Epochs run, counting those before a resume."""
    resumed_from: int
    """Epochs already done by the checkpoint this run resumed from (0 for a fresh run)."""
    train_photos: int
    """Photos trained on."""
    val_photos: int
    """Photos validated on."""
    data: DataReport
    """The data checks' findings (problem files left out, warnings)."""


def history_path_for(model_path: Path) -> Path:
    """models/catdog.keras -> models/catdog.history.json."""
    return model_path.with_suffix(".history.json")


def checkpoint_dir_for(model_path: Path) -> Path:
    """models/catdog.keras -> models/catdog.ckpt/ (last and best epoch, run state; removed after success)."""
    return model_path.with_suffix(".ckpt")


def _train_dataset(
    tf: Any, photos: LoadedPhotos, n_classes: int, batch_size: int, seed: int, out_hw: tuple[int, int], augment: bool
) -> Any:
    """Shuffled training batches at out_hw, augmented (trainer.augment) or, without augmentation, resized
    when out_hw is not the photos' size. Seeded: the same seed gives the same batches."""
    ds = _batches(tf, photos, n_classes, batch_size, shuffle_seed=seed)
    if augment:
        generator = tf.random.Generator.from_seed(seed)
        # The generator is stateful: one map call at a time keeps the draws in order (reproducible);
        # prefetch still runs it beside the training step.
        ds = ds.map(lambda x, y: (augment_batch(x, out_hw, generator), y))
    elif tuple(out_hw) != photos.images.shape[1:3]:
        ds = ds.map(lambda x, y: (tf.image.resize(x, out_hw, antialias=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _batches(tf: Any, photos: LoadedPhotos, n_classes: int, batch_size: int, shuffle_seed: int | None = None) -> Any:
    """Batches of float32 pixels (as decoded: no JPEG work after loading) and targets: 0/1 for two classes
    (one sigmoid output), one-hot for more (see _loss). Shuffled each epoch when shuffle_seed is given."""
    targets = photos.labels.astype(np.float32) if n_classes == 2 else np.eye(n_classes, dtype=np.float32)[photos.labels]
    ds = tf.data.Dataset.from_tensor_slices((photos.images, targets))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(photos.labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)


def _loss(keras: Any, n_classes: int, label_smoothing: float) -> Any:
    """Binary cross-entropy for one sigmoid output, else categorical on one-hot targets (label
    smoothing needs them: the sparse loss has no such option)."""
    if n_classes == 2:
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def _run_state_callback(
    keras: Any, ckpt: Path, state: dict[str, Any], patience: int | None, save_best: bool = True
) -> Any:
    """A Keras callback that, after every epoch, saves the last (and, with save_best, the best) model and the run state.

    It also stops training after `patience` epochs without a better validation accuracy (None: never); it replaces
    ModelCheckpoint and EarlyStopping because their counters cannot be carried across a resume.
    """

    class RunState(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = dict(logs or {})
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            for key, value in logs.items():
                state["history"].setdefault(key, []).append(float(value))
            accuracy = float(logs["val_accuracy"])
            if state["best_epoch"] == 0 or accuracy > state["best_val_accuracy"]:
                state.update(best_epoch=epoch + 1, best_val_accuracy=accuracy, wait=0)
                if save_best:  # keep=last never reads it (a 390 MB write per epoch for the seed model)
                    _save_model(self.model, ckpt / "best.keras")
            else:
                state["wait"] += 1
            _save_model(self.model, ckpt / "last.keras")
            state["epoch"] = epoch + 1
            atomic_write_bytes(ckpt / "state.json", (json.dumps(state, indent=1) + "\n").encode())
            if patience is not None and state["wait"] >= patience:
                self.model.stop_training = True

    return RunState()


def _save_model(model: Any, path: Path) -> None:
    """model.save, atomically: an interruption mid-write leaves the previous file."""
    tmp = path.with_name(f".tmp-{path.name}")
    model.save(tmp)
    os.replace(tmp, path)


def _resume_state(config: FitConfig, ckpt: Path, labels: tuple[str, ...], log: Callable[[str], None]) -> dict | None:
    """The saved run state to resume from, None to start afresh.

    Raises:
        DataError: --resume with a checkpoint made by different settings or photos.
    """
    state_path = ckpt / "state.json"
    if not state_path.is_file() or not (ckpt / "last.keras").is_file():
        if config.resume:
            log(f"no checkpoint at {ckpt}; starting from scratch")
        return None
    if not config.resume:
        log(f"warning: replacing the checkpoint of an interrupted run at {ckpt} (pass --resume to continue it)")
        return None
    try:
        state = json.loads(state_path.read_text())
        saved_config, saved_labels = state["config"], tuple(state["labels"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"--resume: cannot read the checkpoint state {state_path} ({exc}); delete {ckpt} and start again") from None
    ours = _config_record(config)
    differs = sorted(k for k in set(ours) | set(saved_config) if ours.get(k) != saved_config.get(k))
    if differs or saved_labels != labels:
        what = ", ".join(f"{k}: {saved_config.get(k)!r} -> {ours.get(k)!r}" for k in differs) or "the labels"
        raise DataError(
            f"--resume: the checkpoint at {ckpt} was made with other settings ({what}); "
            f"rerun the interrupted command unchanged with --resume, or delete {ckpt}"
        )
    return state


def _phases(config: FitConfig) -> list[tuple[tuple[int, int], int]]:
    """(training photo size, last epoch) of each phase: small_size first when small_epochs, then image_hw."""
    small = [((config.small_size, config.small_size), config.small_epochs)] if config.small_epochs else []
    return [*small, (config.image_hw, config.epochs)]


def _training_input_shape(config: FitConfig, contract: ModelContract) -> tuple[int | None, int | None, int]:
    """The input shape of the model being trained: any size when it trains at more than one (progressive
    resizing), else the contract's. The saved model always has the contract's (see _fixed_size)."""
    return (None, None, contract.input_shape[2]) if config.small_epochs else contract.input_shape


def fit(
    config: FitConfig,
    verbose: int = 2,
    log: Callable[[str], None] = lambda _: None,
    progress: Callable[[int, int], None] | None = None,
    callbacks: Sequence[Any] = (),
) -> FitResult:
    """Check the photos, train a model as the config says, and save the best (or last) epoch with its contract.

    Every epoch the last and best models and the run state are saved in checkpoint_dir_for(config.out);
    on Ctrl-C the best (or last) model so far is written to config.out and TrainingInterrupted is raised; the
    same config with resume=True continues from the last finished epoch. After a run completes, the
    checkpoint folder is removed.

    Args:
        config: what to train on and how.
        verbose: Keras progress output (0 silent, 1 bar, 2 a line per epoch).
        log: receives short progress messages (the data table, warnings, skipped photos).
        progress: progress(done, total) while the photos are checked.
        callbacks: extra Keras callbacks, run after catdog's own at each epoch end.

    Returns:
        The paths written and the best validation accuracy.

    Raises:
        DataError: the photo folders are unusable (raised before TensorFlow is imported).
        TrainingInterrupted: Ctrl-C; the message says what was saved and how to resume.
    """
    report = check_data(config.check_config(), progress)
    log(report.table())
    for problem in report.problems:
        log(f"warning: skipped {problem.path}: {problem.kind} ({problem.detail})")
    for warning in report.warnings:
        log(f"warning: {warning}")
    n_classes = len(report.train.class_names)
    contract = ModelContract(
        labels=report.train.class_names, input_hw=config.image_hw, color=config.color, crop=config.input_crop,
        activation="sigmoid" if n_classes == 2 else "softmax", mode="keras",
    )
    # Same decode, orientation, colour and resize method as the edge; larger when augmenting (see source_size).
    # Training photos are whole (augmentation crops them at random); validation is fed as the edge feeds it.
    train = load_photos(report.train, config.source_hw, contract.color, contract.resize)
    val = load_for(report.val, contract)
    for path, reason in train.skipped + val.skipped:  # files that changed since the check
        log(f"warning: skipped {reason}")

    import keras
    import tensorflow as tf

    from .model import build_model

    out = Path(config.out)
    ckpt = checkpoint_dir_for(out)
    state = _resume_state(config, ckpt, contract.labels, log)
    keras.utils.set_random_seed(config.seed)
    if state is not None:
        log(f"resuming from {ckpt} after epoch {state['epoch']} (best so far: epoch {state['best_epoch']})")
        model = keras.models.load_model(ckpt / "last.keras", compile=True, safe_mode=True)
    else:
        shutil.rmtree(ckpt, ignore_errors=True)
        state = {"config": _config_record(config), "labels": list(contract.labels), "epoch": 0, "best_epoch": 0,
                 "best_val_accuracy": 0.0, "wait": 0, "history": {}}
        model = build_model(config.arch, _training_input_shape(config, contract), n_classes, config.seed)
        steps_per_epoch = -(-len(train.labels) // config.batch_size)
        # Cosine decay over the whole run: large steps early, fine ones at the end; no noisy plateau logic.
        schedule = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.02
        )
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                      loss=_loss(keras, n_classes, config.label_smoothing), metrics=["accuracy"])
    ckpt.mkdir(parents=True, exist_ok=True)
    resumed_from = state["epoch"]
    val_ds = _batches(tf, val, n_classes, config.batch_size).prefetch(tf.data.AUTOTUNE)
    patience = config.patience if config.keep is Keep.best else None
    run_state = _run_state_callback(keras, ckpt, state, patience, save_best=config.keep is Keep.best)
    try:
        for out_hw, last_epoch in _phases(config):
            stopped = patience is not None and state["wait"] >= patience
            if state["epoch"] >= last_epoch or stopped:
                continue
            # Seeded by the epoch it starts at, so a resumed run does not replay the first epochs' batches.
            seed = config.seed + state["epoch"]
            train_ds = _train_dataset(tf, train, n_classes, config.batch_size, seed, out_hw, config.augment)
            model.fit(
                train_ds, validation_data=val_ds, epochs=last_epoch, initial_epoch=state["epoch"],
                callbacks=[run_state, *callbacks], verbose=verbose, shuffle=False,  # the dataset shuffles itself
            )
    except KeyboardInterrupt:
        if state["best_epoch"] == 0:
            raise TrainingInterrupted("training interrupted before the first epoch ended; nothing was saved") from None
        saved = _finish(config, contract, state, ckpt, train, val, report, log)
        raise TrainingInterrupted(
            f"training interrupted after epoch {state['epoch']}; saved the {config.keep.value} model so far (epoch "
            f"{saved['saved_epoch']}, val accuracy {saved['val_accuracy']:.4f}) to {out}; "
            "run the same command with --resume to continue"
        ) from None
    result = _finish(config, contract, state, ckpt, train, val, report, log)
    shutil.rmtree(ckpt, ignore_errors=True)
    return FitResult(**result, resumed_from=resumed_from, data=report)


def _fixed_size(path: Path, config: FitConfig, contract: ModelContract) -> Any:
    """The checkpointed model at path rebuilt with the contract's input size and without optimizer state
    (which nothing after training reads): what export and the edge expect, whatever size it trained at."""
    import keras

    from .model import build_model

    trained = keras.models.load_model(path, compile=False, safe_mode=True)
    model = build_model(config.arch, contract.input_shape, len(contract.labels), config.seed)
    model.set_weights(trained.get_weights())
    return model


def _finish(
    config: FitConfig, contract: ModelContract, state: dict[str, Any], ckpt: Path, train: LoadedPhotos,
    val: LoadedPhotos, report: DataReport, log: Callable[[str], None],
) -> dict[str, Any]:
    """Write the best model, its contract, the history (JSON, CSV) and the curves beside config.out."""
    from .model import multiply_adds
    from .plots import PlotError, plot_history

    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    hist = state["history"]
    if config.keep is Keep.best:
        saved_epoch, val_accuracy = state["best_epoch"], state["best_val_accuracy"]
    else:
        saved_epoch, val_accuracy = state["epoch"], hist["val_accuracy"][state["epoch"] - 1]
    model = _fixed_size(ckpt / f"{config.keep.value}.keras", config, contract)
    _save_model(model, out)
    history_path = history_path_for(out)
    atomic_write_bytes(history_path, (json.dumps(hist, indent=1) + "\n").encode())
    atomic_write_bytes(out.with_suffix(".history.csv"), _history_csv(hist).encode())
    try:
        curves: Path | None = plot_history(hist, out.with_suffix(".curves.png"), title=out.stem)
    except PlotError as exc:
        log(f"warning: no training curves: {exc}")
        curves = None
    contract = contract.replace(
        training={
            "arch": config.arch.value,
            "train_dir": str(Path(config.data_dir).resolve()),
            "val_dir": str(Path(config.val_dir).resolve()) if config.val_dir else None,
            "val_split": None if config.val_dir else config.val_split,
            "limit_per_class": config.limit_per_class,
            "grayscale": config.grayscale,
            "train_photos": len(train.labels),
            "val_photos": len(val.labels),
            "skipped_files": len(report.problems) + len(train.skipped) + len(val.skipped),
            "data_warnings": list(report.warnings),
            "params": int(model.count_params()),
            "multiply_adds": multiply_adds(model),
            "epochs_run": state["epoch"],
            "command": command_line(config),
            "saved_epoch": saved_epoch,
            "best_epoch": state["best_epoch"],
            "config": _config_record(config),
            "versions": library_versions(),
        },
        metrics={"keras_val_accuracy": round(val_accuracy, 4)},
    )
    contract.save(sidecar_path(out))
    return {
        "model_path": out,
        "contract_path": sidecar_path(out),
        "history_path": history_path,
        "curves_path": curves,
        "val_accuracy": float(val_accuracy),
        "saved_epoch": int(saved_epoch),
        "best_epoch": int(state["best_epoch"]),
        "epochs_run": int(state["epoch"]),
        "train_photos": len(train.labels),
        "val_photos": len(val.labels),
    }


def _history_csv(history: dict[str, list[float]]) -> str:
    """The history as CSV: an epoch column, then one column per metric."""
    keys = sorted(history)
    rows = [",".join(["epoch", *keys])]
    for epoch in range(max((len(v) for v in history.values()), default=0)):
        rows.append(",".join([str(epoch + 1), *(f"{history[k][epoch]:.6g}" if epoch < len(history[k]) else "" for k in keys)]))
    return "\n".join(rows) + "\n"


def _config_record(config: FitConfig) -> dict[str, Any]:
    """The config as JSON-ready values, without resume (which does not change what is trained)."""
    record = asdict(config)
    record.pop("resume")
    for key, value in record.items():
        if isinstance(value, Path):
            record[key] = str(value)
        elif hasattr(value, "value"):
            record[key] = value.value
    record["image_hw"] = list(config.image_hw)
    return record


def command_line(config: FitConfig) -> str:
    """The catdog-train fit command that trains this config (recorded in the contract as the recipe)."""
    parts = ["catdog-train", "fit", str(config.data_dir)]
    parts += ["--val", str(config.val_dir)] if config.val_dir else ["--val-split", str(config.val_split)]
    parts += ["--out", str(config.out), "--arch", config.arch.value, "--image-size", str(config.image_hw[0]),
              "--epochs", str(config.epochs), "--batch-size", str(config.batch_size), "--lr", str(config.learning_rate),
              "--weight-decay", str(config.weight_decay), "--label-smoothing", str(config.label_smoothing),
              "--seed", str(config.seed), "--keep", config.keep.value]
    parts += ["--small-fraction", str(config.small_fraction), "--small-size", str(config.small_size),
              "--source-size", str(config.source_size)]
    if config.crop is not None:  # else the default, derived from the augmentation (see FitConfig.crop)
        parts += ["--crop", str(config.crop)]
    if config.keep is Keep.best:
        parts += ["--patience", str(config.patience)]
    if not config.augment:
        parts.append("--no-augment")
    if config.grayscale:
        parts.append("--grayscale")
    if config.limit_per_class is not None:
        parts += ["--limit-per-class", str(config.limit_per_class)]
    return shlex.join(parts)


def recorded_photos(contract: ModelContract) -> tuple[PhotoSet, PhotoSet]:
    """The (train, val) photo sets a model was fitted on, rebuilt from its contract's training record.

    Raises:
        DataError: the contract has no training record, or its folders are gone.
    """
    record = contract.training.get("config")
    if not record:
        raise DataError("the model's contract records no training data; pass the photo folders explicitly")
    return data.select_photos(
        Path(record["data_dir"]), Path(record["val_dir"]) if record.get("val_dir") else None,
        float(record["val_split"]), int(record["seed"]), record.get("limit_per_class"),
    )
