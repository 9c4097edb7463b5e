"""Fit a Keras CNN on a class-per-folder photo tree and save the best (or last) epoch with its contract."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from catdog.edge.contract import ModelContract, sidecar_path
from catdog.edge.files import atomic_write_bytes
from catdog.edge.errors import CatDogError

from ._tf import import_tensorflow, require_tensorflow
from .config import FitConfig, Keep
from .batches import batches, loss_for, training_batches
from .data import LoadedPhotos, load_for, load_photos
from .model import build_model, multiply_adds
from .pretrained import resolve_weights
from .recipe import command_line, config_record
from .run_state import check_start, checkpoint_dir_for, new_state, resume_state, run_state_callback, save_model
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
    checkpoint folder is removed. A model already at config.out is replaced only with overwrite=True.

    Args:
        config: what to train on and how.
        verbose: Keras progress output (0 silent, 1 bar, 2 a line per epoch).
        log: receives short progress messages (the data table, warnings, skipped photos).
        progress: progress(done, total) while the photos are checked.
        callbacks: extra Keras callbacks, run after catdog's own at each epoch end.

    Returns:
        The paths written and the best validation accuracy.

    Raises:
        TensorFlowMissingError: TensorFlow is not installed (raised first).
        RunStateError: a model is in the way at config.out (without overwrite), or resume finds no
            checkpoint (both raised before any photo is read), or one made by other settings.
        DataError: the photo folders are unusable (raised before TensorFlow is imported).
        TrainingInterrupted: Ctrl-C; the message says what was saved and how to resume.
    """
    require_tensorflow()
    check_start(config, log)
    # Pretrained weights are found and read before any photo: a missing package or a bad file is one
    # line, and nothing is written.
    weights = resolve_weights(config.weights) if config.arch.pretrained else None
    report = check_data(config, progress)
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
    # A pretrained fit computes features once, from photos fed exactly as the edge feeds them.
    if config.arch.pretrained:
        train = load_for(report.train, contract)
    else:
        train = load_photos(report.train, config.source_hw, contract.color, contract.resize)
    val = load_for(report.val, contract)
    for path, reason in train.skipped + val.skipped:  # files that changed since the check
        log(f"warning: skipped {reason}")

    tf, keras = import_tensorflow()
    if config.arch.pretrained:
        return _fit_pretrained(config, contract, train, val, weights, report, log)
    out = Path(config.out)
    ckpt = checkpoint_dir_for(out)
    keras.utils.set_random_seed(config.seed)
    if config.resume:
        state = resume_state(config, contract.labels)
        log(f"resuming from {ckpt} after epoch {state['epoch']} (best so far: epoch {state['best_epoch']})")
        model = keras.models.load_model(ckpt / "last.keras", compile=True, safe_mode=True)
    else:
        shutil.rmtree(ckpt, ignore_errors=True)
        state = new_state(config, contract.labels)
        model = build_model(config.arch, _training_input_shape(config, contract), n_classes, config.seed)
        steps_per_epoch = -(-len(train.labels) // config.batch_size)
        # Cosine decay over the whole run: large steps early, fine ones at the end; no noisy plateau logic.
        schedule = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.02
        )
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                      loss=loss_for(n_classes, config.label_smoothing), metrics=["accuracy"])
    ckpt.mkdir(parents=True, exist_ok=True)
    resumed_from = state["epoch"]
    val_ds = batches(val, n_classes, config.batch_size).prefetch(tf.data.AUTOTUNE)
    patience = config.patience if config.keep is Keep.best else None
    run_state = run_state_callback(keras, ckpt, state, patience, save_best=config.keep is Keep.best)
    try:
        for out_hw, last_epoch in _phases(config):
            stopped = patience is not None and state["wait"] >= patience
            if state["epoch"] >= last_epoch or stopped:
                continue
            # Seeded by the epoch it starts at, so a resumed run does not replay the first epochs' batches.
            seed = config.seed + state["epoch"]
            train_ds = training_batches(train, n_classes, config.batch_size, seed, out_hw, config.augment)
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
    _, keras = import_tensorflow()
    trained = keras.models.load_model(path, compile=False, safe_mode=True)
    model = build_model(config.arch, contract.input_shape, len(contract.labels), config.seed)
    model.set_weights(trained.get_weights())
    return model


def _fit_pretrained(
    config: FitConfig, contract: ModelContract, train: LoadedPhotos, val: LoadedPhotos, weights: Any,
    report: DataReport, log: Callable[[str], None],
) -> FitResult:
    """The pretrained path: a new head on frozen features (trainer.transfer), written like any fit."""
    from .transfer import fit_transfer

    done = fit_transfer(config, contract, train, val, weights, log)
    search = done.search
    history = {
        "head_l2": search.l2,
        "head_cv_folds": search.folds,
        "head_cv_accuracy": {f"{l2:g}": accuracy for l2, accuracy in search.cv_accuracy.items()},
        "accuracy": done.train_accuracy,
        "val_accuracy": done.val_accuracy,
    }
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(done.model, out)
    history_path = history_path_for(out)
    atomic_write_bytes(history_path, (json.dumps(history, indent=1) + "\n").encode())
    extra = {"weights": config.weights, "head_l2": search.l2, "head_cv_accuracy": history["head_cv_accuracy"]}
    result = _write_contract(config, contract, done.model, train, val, report, 1, 1, 1, done.val_accuracy, extra)
    return FitResult(**result, history_path=history_path, curves_path=None, resumed_from=0, data=report)


def _finish(
    config: FitConfig, contract: ModelContract, state: dict[str, Any], ckpt: Path, train: LoadedPhotos,
    val: LoadedPhotos, report: DataReport, log: Callable[[str], None],
) -> dict[str, Any]:
    """Write the best model, its contract, the history (JSON, CSV) and the curves beside config.out."""
    from .plots import PlotError, plot_history

    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    hist = state["history"]
    if config.keep is Keep.best:
        saved_epoch, val_accuracy = state["best_epoch"], state["best_val_accuracy"]
    else:
        saved_epoch, val_accuracy = state["epoch"], hist["val_accuracy"][state["epoch"] - 1]
    model = _fixed_size(ckpt / f"{config.keep.value}.keras", config, contract)
    save_model(model, out)
    history_path = history_path_for(out)
    atomic_write_bytes(history_path, (json.dumps(hist, indent=1) + "\n").encode())
    atomic_write_bytes(out.with_suffix(".history.csv"), _history_csv(hist).encode())
    try:
        curves: Path | None = plot_history(hist, out.with_suffix(".curves.png"), title=out.stem)
    except PlotError as exc:
        log(f"warning: no training curves: {exc}")
        curves = None
    result = _write_contract(
        config, contract, model, train, val, report, saved_epoch, state["best_epoch"], state["epoch"], val_accuracy, {}
    )
    return {**result, "history_path": history_path, "curves_path": curves}


def _write_contract(
    config: FitConfig, contract: ModelContract, model: Any, train: LoadedPhotos, val: LoadedPhotos,
    report: DataReport, saved_epoch: int, best_epoch: int, epochs_run: int, val_accuracy: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Write the saved model's contract beside config.out, with how it was trained and measured."""
    out = Path(config.out)
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
            "epochs_run": epochs_run,
            "command": command_line(config),
            "saved_epoch": saved_epoch,
            "best_epoch": best_epoch,
            "config": config_record(config),
            "versions": library_versions(),
            **extra,
        },
        metrics={"keras_val_accuracy": round(val_accuracy, 4)},
    )
    contract.save(sidecar_path(out))
    return {
        "model_path": out,
        "contract_path": sidecar_path(out),
        "val_accuracy": float(val_accuracy),
        "saved_epoch": int(saved_epoch),
        "best_epoch": int(best_epoch),
        "epochs_run": int(epochs_run),
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
