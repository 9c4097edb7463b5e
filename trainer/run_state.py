"""fit's run state: the checkpoint saved every epoch, what --resume continues, and what --overwrite may replace.

The checkpoint folder beside --out (catdog.ckpt/ for catdog.keras) holds the last and best epoch's
models (epoch-N.keras) and state.json: the recorded settings, the labels, the epoch counters, the
history and the names of those two files. Each epoch writes its model first and state.json (atomically)
after it, so a process killed at any point leaves a state and models that agree. The folder is removed
when a run completes, so a finished run leaves nothing to resume. In a multi-worker run only the chief
writes and reads it; on --resume the other workers receive its state from the chief.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from catdog.edge.files import atomic_write_bytes, replacing

from ._tf import import_tensorflow
from .config import FitConfig
from .distribute import Placement, from_chief, precision, text_from_chief
from .errors import RunStateError
from .recipe import config_record


def checkpoint_dir_for(model_path: Path) -> Path:
    """models/catdog.keras -> models/catdog.ckpt/ (last and best epoch, run state; removed after success)."""
    return Path(model_path).with_suffix(".ckpt")


def _has_checkpoint(ckpt: Path) -> bool:
    return (ckpt / "state.json").is_file()


def kept_model_path(ckpt: Path, state: dict[str, Any], kept: str) -> Path:
    """The checkpoint's "last" or "best" model, as state.json names it (last.keras, best.keras: older checkpoints)."""
    return ckpt / (state.get(f"{kept}_model") or f"{kept}.keras")


def check_start(config: FitConfig, log: Callable[[str], None] = lambda _: None) -> None:
    """Refuse a run that would lose work, before any photo is read or TensorFlow is imported.

    Without resume, a model at config.out, or the checkpoint of an interrupted run (one killed, say,
    leaves no model), is replaced only with overwrite. With resume, there must be a checkpoint to
    continue; the model an interrupted run left at config.out is then its own.

    Raises:
        RunStateError: --resume without a checkpoint, or a model or a checkpoint in the way at --out.
    """
    out = Path(config.out)
    ckpt = checkpoint_dir_for(out)
    if config.resume:
        if not _has_checkpoint(ckpt):
            replace = f" (with --overwrite to replace {out})" if out.exists() else ""
            raise RunStateError(
                f"--resume: no checkpoint at {ckpt} to continue (a run that completed removes it); "
                f"run the command without --resume to train afresh{replace}"
            )
        return
    if out.exists() and not config.overwrite:
        interrupted = f", or --resume to continue the interrupted run at {ckpt}" if _has_checkpoint(ckpt) else ""
        raise RunStateError(f"{out} already exists; pass --overwrite to replace it or choose another --out{interrupted}")
    if _has_checkpoint(ckpt) and not config.overwrite:
        raise RunStateError(
            f"an interrupted run left a checkpoint at {ckpt}; pass --resume to continue it or --overwrite to train afresh"
        )
    if ckpt.exists():
        log(f"warning: replacing the checkpoint of an interrupted run at {ckpt} (pass --resume to continue it)")


def new_state(config: FitConfig, labels: tuple[str, ...]) -> dict[str, Any]:
    """The run state of a fresh run: its settings and labels, no epoch done yet."""
    return {"config": config_record(config), "labels": list(labels), "epoch": 0, "best_epoch": 0,
            "best_val_accuracy": 0.0, "wait": 0, "history": {}, "last_model": None, "best_model": None}


def resume_state(config: FitConfig, labels: tuple[str, ...]) -> dict[str, Any]:
    """The saved run state to continue (check_start has found the checkpoint).

    Raises:
        RunStateError: the state cannot be read, or was made by other settings or photos' labels.
    """
    ckpt = checkpoint_dir_for(config.out)
    state_path = ckpt / "state.json"
    try:
        state = json.loads(state_path.read_text())
        saved_config, saved_labels = state["config"], tuple(state["labels"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RunStateError(f"--resume: cannot read the checkpoint state {state_path} ({exc}); delete {ckpt} and start again") from None
    ours = config_record(config)
    differs = sorted(k for k in set(ours) | set(saved_config) if ours.get(k) != saved_config.get(k))
    if differs or saved_labels != tuple(labels):
        what = ", ".join(f"{k}: {saved_config.get(k)!r} -> {ours.get(k)!r}" for k in differs) or "the labels"
        raise RunStateError(
            f"--resume: the checkpoint at {ckpt} was made with other settings ({what}); "
            f"rerun the interrupted command unchanged with --resume, or delete {ckpt}"
        )
    return state


def restore(placement: Placement, config: FitConfig, labels: tuple[str, ...], model: Any) -> dict[str, Any]:
    """Continue an interrupted run on every worker: the chief reads the checkpoint (resume_state and the last
    model); every worker's model (built and compiled as for a fresh run) gets its weights and optimizer state,
    and the run state is returned. Other workers need no copy of the checkpoint: the chief sends it.

    Raises:
        RunStateError: as resume_state, or the checkpoint's model is missing or does not fit the one built.
    """
    _, keras = import_tensorflow()
    weights = model.get_weights()
    optimizer = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]
    text = ""
    if placement.is_chief:
        state = resume_state(config, labels)
        last = kept_model_path(checkpoint_dir_for(config.out), state, "last")
        if not last.is_file():
            raise RunStateError(f"--resume: the checkpoint names {last}, which is missing; delete {last.parent} and start again")
        with precision(config.mixed_precision):  # else its optimizer loads without the loss scale's variables
            saved = keras.models.load_model(last, compile=True, safe_mode=True)
        saved_optimizer = [keras.ops.convert_to_numpy(v) for v in saved.optimizer.variables]
        shapes = [a.shape for a in weights + optimizer]
        if [a.shape for a in saved.get_weights() + saved_optimizer] != shapes:
            raise RunStateError(f"--resume: the model in {last} does not fit these settings; delete {last.parent} and start again")
        weights, optimizer = saved.get_weights(), saved_optimizer
        text = json.dumps(state)
    state = json.loads(text_from_chief(placement, text))
    arrays = from_chief(placement, [np.asarray(a) for a in weights + optimizer])
    with placement.strategy.scope():
        model.set_weights(arrays[: len(weights)])
        for variable, value in zip(model.optimizer.variables, arrays[len(weights) :]):
            variable.assign(value)
    return state


def save_model(model: Any, path: Path) -> None:
    """model.save, durably: an interruption or a power cut mid-write leaves the previous file."""
    with replacing(path, suffix=".keras") as tmp:
        model.save(tmp)


def run_state_callback(
    keras: Any, ckpt: Path, state: dict[str, Any], patience: int | None, save_best: bool = True, write: bool = True
) -> Any:
    """A Keras callback that, after every epoch, saves the last (and, with save_best, the best) model and the run state.

    Without write (the workers of a multi-worker run other than the chief) it keeps the same state and saves
    nothing: every worker must stop at the same epoch. It also stops training after `patience` epochs without a better validation accuracy (None: never); it replaces
    ModelCheckpoint and EarlyStopping because their counters cannot be carried across a resume.
    """

    class RunState(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = dict(logs or {})
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            new = json.loads(json.dumps(state))  # state itself changes once this epoch is on disk
            for key, value in logs.items():
                new["history"].setdefault(key, []).append(float(value))
            accuracy = float(logs["val_accuracy"])
            best = new["best_epoch"] == 0 or accuracy > new["best_val_accuracy"]
            if best:
                new.update(best_epoch=epoch + 1, best_val_accuracy=accuracy, wait=0)
            else:
                new["wait"] += 1
            new["epoch"] = epoch + 1
            if write:
                name = f"epoch-{epoch + 1}.keras"
                save_model(self.model, ckpt / name)
                new["last_model"] = name
                if best and save_best:  # keep=last never reads it
                    new["best_model"] = name
                # The commit: until this write, state.json still names the previous epoch's files, all there.
                atomic_write_bytes(ckpt / "state.json", (json.dumps(new, indent=1) + "\n").encode())
                for old in ckpt.glob("epoch-*.keras"):
                    if old.name not in (new["last_model"], new["best_model"]):
                        old.unlink(missing_ok=True)
            state.clear()
            state.update(new)
            if patience is not None and state["wait"] >= patience:
                self.model.stop_training = True

    return RunState()
