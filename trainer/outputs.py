"""What fit writes beside --out: the model at the contract's input size, its contract with the recipe,
the history (JSON, CSV) and the training curves. Only the chief of a distributed run writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from catdog.edge.contract import ModelContract, sidecar_path
from catdog.edge.files import atomic_write_bytes

from ._tf import import_tensorflow
from .config import FitConfig, Keep
from .model import build_model, multiply_adds
from .recipe import command_line, config_record, data_record
from .run_state import kept_model_path, save_model
from .scan import DataReport
from .versions import library_versions


def history_path_for(model_path: Path) -> Path:
    """models/catdog.keras -> models/catdog.history.json."""
    return model_path.with_suffix(".history.json")


def fixed_size(path: Path, config: FitConfig, contract: ModelContract) -> Any:
    """The checkpointed model at path rebuilt with the contract's input size and without optimizer state
    (which nothing after training reads): what export and the edge expect, whatever size it trained at."""
    _, keras = import_tensorflow()
    trained = keras.models.load_model(path, compile=False, safe_mode=True)
    model = build_model(config.arch, contract.input_shape, len(contract.labels), config.seed)
    model.set_weights(trained.get_weights())
    return model


def saved_epoch(config: FitConfig, state: dict[str, Any]) -> tuple[int, float]:
    """(1-based epoch, validation accuracy) of the model fit keeps: the best or the last."""
    if config.keep is Keep.best:
        return state["best_epoch"], state["best_val_accuracy"]
    return state["epoch"], state["history"]["val_accuracy"][state["epoch"] - 1]


def finish(
    config: FitConfig, contract: ModelContract, state: dict[str, Any], ckpt: Path, train_photos: int,
    val_photos: int, skipped: int, report: DataReport, extra: dict[str, Any], log: Callable[[str], None],
) -> dict[str, Any]:
    """Write the kept model, its contract, the history (JSON, CSV) and the curves beside config.out."""
    from .plots import PlotError, plot_history

    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    hist = state["history"]
    epoch, val_accuracy = saved_epoch(config, state)
    model = fixed_size(kept_model_path(ckpt, state, config.keep.value), config, contract)
    save_model(model, out)
    history_path = history_path_for(out)
    atomic_write_bytes(history_path, (json.dumps(hist, indent=1) + "\n").encode())
    atomic_write_bytes(out.with_suffix(".history.csv"), history_csv(hist).encode())
    try:
        curves: Path | None = plot_history(hist, out.with_suffix(".curves.png"), title=out.stem)
    except PlotError as exc:
        log(f"warning: no training curves: {exc}")
        curves = None
    result = write_contract(
        config, contract, model, train_photos, val_photos, skipped, report, epoch, state["best_epoch"],
        state["epoch"], val_accuracy, extra,
    )
    return {**result, "history_path": history_path, "curves_path": curves}


def write_contract(
    config: FitConfig, contract: ModelContract, model: Any, train_photos: int, val_photos: int, skipped: int,
    report: DataReport, saved: int, best_epoch: int, epochs_run: int, val_accuracy: float, extra: dict[str, Any],
    metrics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the saved model's contract beside config.out, with how it was trained and measured (metrics:
    figures beside the validation accuracy)."""
    out = Path(config.out)
    contract = contract.replace(
        training={
            "arch": config.arch.value,
            **data_record(config, report),
            "val_split": None if config.val_dir else config.val_split,
            "limit_per_class": config.limit_per_class,
            "grayscale": config.grayscale,
            "train_photos": train_photos,
            "val_photos": val_photos,
            "skipped_files": len(report.problems) + skipped,
            "data_warnings": list(report.warnings),
            "params": int(model.count_params()),
            "multiply_adds": multiply_adds(model),
            "epochs_run": epochs_run,
            "command": command_line(config),
            "saved_epoch": saved,
            "best_epoch": best_epoch,
            "config": config_record(config),
            "versions": library_versions(),
            **extra,
        },
        metrics={"keras_val_accuracy": round(val_accuracy, 4), **(metrics or {})},
    )
    contract.save(sidecar_path(out))
    return written(config, val_accuracy, saved, best_epoch, epochs_run, train_photos, val_photos)


def written(
    config: FitConfig, val_accuracy: float, saved: int, best_epoch: int, epochs_run: int, train_photos: int,
    val_photos: int,
) -> dict[str, Any]:
    """FitResult's fields about the saved model (where the chief writes it)."""
    out = Path(config.out)
    return {
        "model_path": out,
        "contract_path": sidecar_path(out),
        "val_accuracy": float(val_accuracy),
        "saved_epoch": int(saved),
        "best_epoch": int(best_epoch),
        "epochs_run": int(epochs_run),
        "train_photos": train_photos,
        "val_photos": val_photos,
    }


def history_csv(history: dict[str, list[float]]) -> str:
    """The history as CSV: an epoch column, then one column per metric."""
    keys = sorted(history)
    rows = [",".join(["epoch", *keys])]
    for epoch in range(max((len(v) for v in history.values()), default=0)):
        rows.append(",".join([str(epoch + 1), *(f"{history[k][epoch]:.6g}" if epoch < len(history[k]) else "" for k in keys)]))
    return "\n".join(rows) + "\n"
