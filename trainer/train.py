"""Fit a Keras CNN on a class-per-folder photo tree and save the best (or last) epoch with its contract."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from catdog.edge.contract import ModelContract
from catdog.edge.files import atomic_write_bytes
from catdog.edge.errors import CatDogError

from ._tf import import_tensorflow, require_tensorflow
from .batches import Photos, batches, loss_for, training_batches
from .cache import Preprocessing, default_cache_dir, open_cache
from .config import FitConfig, Keep
from .data import load_photos, load_unlabelled
from .distribute import Placement, distributed, is_chief, place, precision
from .model import build_model
from .outputs import finish, history_path_for, saved_epoch, write_contract, written
from .presence import SCORES as PRESENCE_SCORES
from .pretrained import resolve_weights
from .recipe import recorded_value
from .run_state import check_start, checkpoint_dir_for, new_state, restore, run_state_callback, save_model
from .scan import DataReport, check_data


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
    wrote: bool = True
    """Whether this process wrote the files (False on a multi-worker run's workers other than the chief,
    which train the same replicas and write nothing; the paths are where the chief writes)."""


def _phases(config: FitConfig) -> list[tuple[tuple[int, int], int]]:
    """(training photo size, last epoch) of each phase: small_size first when small_epochs, then image_hw."""
    small = [((config.small_size, config.small_size), config.small_epochs)] if config.small_epochs else []
    return [*small, (config.image_hw, config.epochs)]


def _training_input_shape(config: FitConfig, contract: ModelContract) -> tuple[int | None, int | None, int]:
    """The input shape of the model being trained: any size when it trains at more than one (progressive
    resizing), else the contract's. The saved model always has the contract's (see outputs.fixed_size)."""
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
    The photos are read from the disk cache (trainer.cache) unless config.no_cache; under a distributed
    strategy (config.distribute) only the chief writes files.

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
        DistributeError: multi-worker without a valid TF_CONFIG (raised before any photo is read), or a
            global batch the replicas cannot split.
        RunStateError: a model is in the way at config.out (without overwrite), or resume finds no
            checkpoint (both raised before any photo is read), or one made by other settings.
        DataError: the photo folders are unusable (raised before TensorFlow is imported).
        CacheError: the photo cache cannot be written.
        TrainingInterrupted: Ctrl-C; the message says what was saved and how to resume.
    """
    require_tensorflow()
    chief = is_chief(config.distribute)
    if chief:  # the others write nothing, and on --resume receive the chief's checkpoint
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
    edge_prep = Preprocessing(contract.input_hw, contract.color, contract.resize, contract.crop)
    if config.arch.pretrained:
        # A pretrained fit computes features once, from photos fed exactly as the edge feeds them (cached, and
        # read a batch at a time, like any fit's).
        train, val = _photos(config, report, edge_prep, edge_prep, log)
        _log_skipped(train, val, log)
        import_tensorflow()
        return _fit_pretrained(config, contract, train, val, weights, report, log)
    train, val = _photos(config, report, Preprocessing(config.source_hw, contract.color, contract.resize, 1.0), edge_prep, log)
    _log_skipped(train, val, log)

    tf, keras = import_tensorflow()
    placement = place(config.distribute, config.batch_size, log)
    out = Path(config.out)
    ckpt = checkpoint_dir_for(out)
    keras.utils.set_random_seed(config.seed)
    with placement.strategy.scope(), precision(config.mixed_precision):
        model = build_model(config.arch, _training_input_shape(config, contract), n_classes, config.seed,
                            synchronized=placement.replicas > 1)
        steps_per_epoch = -(-len(train.labels) // config.batch_size)
        # Cosine decay over the whole run: large steps early, fine ones at the end; no noisy plateau logic.
        schedule = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, decay_steps=config.epochs * steps_per_epoch, alpha=0.02
        )
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                      loss=loss_for(n_classes, config.label_smoothing), metrics=["accuracy"])
        model.optimizer.build(model.trainable_variables)
    if config.resume:
        state = restore(placement, config, contract.labels, model)
        log(f"resuming from {ckpt} after epoch {state['epoch']} (best so far: epoch {state['best_epoch']})")
    else:
        if chief:
            shutil.rmtree(ckpt, ignore_errors=True)
        state = new_state(config, contract.labels)
    if chief:
        ckpt.mkdir(parents=True, exist_ok=True)
    resumed_from = state["epoch"]
    batch = config.batch_size
    # Every worker measures every validation photo (no shard): shards cut to a multiple of the workers would
    # leave up to workers - 1 photos out of the accuracy that picks the best epoch and goes in the contract.
    val_ds = distributed(placement, lambda _, size: batches(val, n_classes, size).prefetch(tf.data.AUTOTUNE), batch)
    patience = config.patience if config.keep is Keep.best else None
    run_state = run_state_callback(keras, ckpt, state, patience, save_best=config.keep is Keep.best, write=chief)
    extra = {"distribute": placement.record(batch), "mixed_precision": config.mixed_precision}
    try:
        for out_hw, last_epoch in _phases(config):
            stopped = patience is not None and state["wait"] >= patience
            if state["epoch"] >= last_epoch or stopped:
                continue
            # Seeded by the epoch it starts at, so a resumed run does not replay the first epochs' batches.
            seed = config.seed + state["epoch"]
            train_ds = distributed(placement, lambda shard, size: training_batches(
                train, n_classes, size, seed, out_hw, config.augment, shard=shard), batch)
            model.fit(
                train_ds, validation_data=val_ds, epochs=last_epoch, initial_epoch=state["epoch"],
                callbacks=[run_state, *callbacks], verbose=verbose, shuffle=False,  # the dataset shuffles itself
            )
    except KeyboardInterrupt:
        if state["best_epoch"] == 0:
            raise TrainingInterrupted("training interrupted before the first epoch ended; nothing was saved") from None
        saved = _finish(config, contract, state, ckpt, train, val, report, placement, extra, log)
        raise TrainingInterrupted(
            f"training interrupted after epoch {state['epoch']}; saved the {config.keep.value} model so far (epoch "
            f"{saved['saved_epoch']}, val accuracy {saved['val_accuracy']:.4f}) to {out}; "
            "run the same command with --resume to continue"
        ) from None
    result = _finish(config, contract, state, ckpt, train, val, report, placement, extra, log)
    if chief:
        shutil.rmtree(ckpt, ignore_errors=True)
    return FitResult(**result, resumed_from=resumed_from, data=report, wrote=chief)


def _photos(
    config: FitConfig, report: DataReport, train_prep: Preprocessing, val_prep: Preprocessing, log: Callable[[str], None]
) -> tuple[Photos, Photos]:
    """The training and validation photos, decoded by the edge's preprocessing as train_prep and val_prep say:
    from the disk cache, or into memory with no_cache. A CNN's training photos are whole, at source_hw
    (augmentation crops them at random); validation photos, and a pretrained fit's training photos, are fed as
    the edge feeds them."""
    if config.no_cache:
        return load_photos(report.train, *train_prep.prepare_args()), load_photos(report.val, *val_prep.prepare_args())
    cache_dir = Path(config.cache_dir) if config.cache_dir is not None else default_cache_dir()
    return open_cache(report.train, train_prep, cache_dir, log), open_cache(report.val, val_prep, cache_dir, log)


def _log_skipped(train: Photos, val: Photos, log: Callable[[str], None]) -> None:
    for path, reason in train.skipped + val.skipped:  # files that changed since the check
        log(f"warning: skipped {reason}")


def _fit_pretrained(
    config: FitConfig, contract: ModelContract, train: Photos, val: Photos, weights: Any,
    report: DataReport, log: Callable[[str], None],
) -> FitResult:
    """The pretrained path: a new head on frozen features (trainer.transfer), written like any fit."""
    from .transfer import fit_transfer

    none = None
    if config.none_dir is not None:
        none = load_unlabelled(config.none_dir, contract)
        log(f"{len(none.labels)} photos of the empty scene from {config.none_dir.name}")
    done = fit_transfer(config, contract, train, val, weights, log, none)
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
    extra = {"weights": recorded_value(config, "weights"), "head_l2": search.l2, "head_cv_accuracy": history["head_cv_accuracy"]}
    metrics = {}
    if done.presence is not None:
        contract = contract.replace(output_name=PRESENCE_SCORES, presence=done.presence.presence)
        metrics = {"keras_val_none_rate": round(done.val_none_rate, 4),
                   "keras_val_accuracy_with_none": round(done.val_accuracy_with_none, 4)}
    result = write_contract(config, contract, done.model, len(train.labels), len(val.labels),
                            len(train.skipped) + len(val.skipped), report, 1, 1, 1, done.val_accuracy, extra, metrics)
    return FitResult(**result, history_path=history_path, curves_path=None, resumed_from=0, data=report)


def _finish(
    config: FitConfig, contract: ModelContract, state: dict[str, Any], ckpt: Path, train: Photos, val: Photos,
    report: DataReport, placement: Placement, extra: dict[str, Any], log: Callable[[str], None],
) -> dict[str, Any]:
    """The chief writes the kept model and everything beside it (trainer.outputs); the others only say what it wrote."""
    counts = (len(train.labels), len(val.labels))
    if placement.is_chief:
        skipped = len(train.skipped) + len(val.skipped)
        return finish(config, contract, state, ckpt, *counts, skipped, report, extra, log)
    epoch, val_accuracy = saved_epoch(config, state)
    out = Path(config.out)
    return {**written(config, val_accuracy, epoch, state["best_epoch"], state["epoch"], *counts),
            "history_path": history_path_for(out), "curves_path": out.with_suffix(".curves.png")}
