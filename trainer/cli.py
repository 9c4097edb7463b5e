"""catdog-train: check a photo folder, fit a Keras CNN on it, evaluate it, export it to TFLite, check parity."""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from catdog.edge.errors import CatDogError
from .config import Arch, CheckConfig, EvaluateConfig, ExportConfig, ExportMode, FitConfig, Keep

# Keep TensorFlow's C++ start-up chatter out of the user's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

ExistingDir = Annotated[Path, typer.Argument(exists=True, file_okay=False, show_default=False)]


class OutputFormat(str, Enum):
    """How results are printed."""

    text = "text"
    json = "json"


def fail(exc: CatDogError) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=exc.exit_code)


def _log(message: str) -> None:
    typer.echo(message, err=True)


@app.callback()
def main() -> None:
    """catdog-train: check, fit, evaluate, export (int8, float16, dynamic, none) and parity for cat/dog (or any class-per-folder) photos."""


class _Progress:
    """A progress bar on stderr for checking photos, opened on the first report; only on a terminal."""

    def __init__(self, label: str):
        self.label = label
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            self.bar = typer.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(1)
        if done == total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


ValOption = Annotated[Optional[Path], typer.Option(help="Validation photos, same layout. Default: split off DATA_DIR.")]
ValSplitOption = Annotated[float, typer.Option(help="Fraction per class held out when --val is not given.")]
SeedOption = Annotated[int, typer.Option(help="Seed for split, sampling, shuffling, augmentation and weights.")]
LimitOption = Annotated[Optional[int], typer.Option(help="Use at most N photos per class (quick runs).")]
MinPerClassOption = Annotated[int, typer.Option(help="Fewest usable training photos a class may have.")]
MinSideOption = Annotated[int, typer.Option(help="Leave out photos whose shorter side is under this many pixels.")]
StrictOption = Annotated[bool, typer.Option("--strict", help="Any problem file is an error, not a skipped file.")]


@app.command()
def check(
    data_dir: Annotated[Path, typer.Argument(help="Training photos: DATA_DIR/<label>/<photo>.", show_default=False)],
    val: ValOption = None,
    val_split: ValSplitOption = 0.2,
    seed: SeedOption = 1337,
    limit_per_class: LimitOption = None,
    min_per_class: MinPerClassOption = 10,
    min_side: MinSideOption = 32,
    strict: StrictOption = False,
    format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Check a photo folder as fit would: photos per class, unreadable, too small and duplicate files, imbalance."""
    from .scan import check_data

    progress = _Progress("checking photos")
    try:
        config = CheckConfig(
            data_dir=data_dir, val_dir=val, val_split=val_split, seed=seed, limit_per_class=limit_per_class,
            min_per_class=min_per_class, min_side=min_side, strict=strict,
        )
        report = check_data(config, progress)
    except CatDogError as exc:
        raise fail(exc) from None
    finally:
        progress.close()
    if format is OutputFormat.json:
        typer.echo(json.dumps({
            "labels": list(report.train.class_names),
            "train": report.train.counts(),
            "val": report.val.counts(),
            "problems": [{"path": p.path, "kind": p.kind, "detail": p.detail} for p in report.problems],
            "warnings": list(report.warnings),
        }))
        return
    typer.echo(report.table())
    for problem in report.problems:
        typer.echo(f"  {problem.kind:<11} {problem.path}: {problem.detail}")
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)


@app.command()
def fit(
    data_dir: Annotated[Path, typer.Argument(help="Training photos: DATA_DIR/<label>/<photo>.", show_default=False)],
    val: ValOption = None,
    val_split: ValSplitOption = 0.2,
    out: Annotated[Path, typer.Option(help="Best model path (.keras); contract, history and curves go beside it.")] = Path(
        "runs/catdog.keras"
    ),
    arch: Annotated[Arch, typer.Option(help="compact (edge-friendly) or seed (the seed article's CNN).")] = Arch.compact,
    image_size: Annotated[int, typer.Option(help="Square input size in pixels.")] = 96,
    grayscale: Annotated[bool, typer.Option("--grayscale", help="Train a 1-channel model on grayscale photos.")] = False,
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping may end sooner), the small ones included.")] = 63,
    small_fraction: Annotated[float, typer.Option(help="Fraction of the epochs trained first at --small-size (progressive resizing: cheaper epochs; compact arch, 0 to turn off).")] = 0.7,
    small_size: Annotated[int, typer.Option(help="Square size in pixels of the small epochs (no effect unless under --image-size).")] = 64,
    source_size: Annotated[int, typer.Option(help="Shorter side in pixels the training photos are decoded at for augmentation (sharper crops; never under --image-size).")] = 128,
    crop: Annotated[Optional[float], typer.Option(help="Side of the centred region the model is fed, as a fraction of each side (recorded in the contract; the edge crops likewise). Default: the mean side of the random training crops, 0.83 (1 with --no-augment).")] = None,
    batch_size: Annotated[int, typer.Option(help="Photos per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate (cosine decay).")] = 2e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay (0: plain Adam).")] = 0.0,
    label_smoothing: Annotated[float, typer.Option(help="Soften the targets by this much (0 to 0.5).")] = 0.0,
    seed: SeedOption = 1337,
    augment: Annotated[bool, typer.Option(help="Random flip/rotate/crop/shift/colour changes while training.")] = True,
    patience: Annotated[int, typer.Option(help="Early stopping patience in epochs (--keep best).")] = 10,
    keep: Annotated[Keep, typer.Option(help="Save the best epoch by val accuracy (early stopping) or the last one (all epochs; val only measured).")] = Keep.best,
    limit_per_class: LimitOption = None,
    min_per_class: MinPerClassOption = 10,
    min_side: MinSideOption = 32,
    strict: StrictOption = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoint.")] = False,
) -> None:
    """Check the photos, train a CNN, and save the best epoch by validation accuracy (or, --keep last, the last) with its contract,
    history (JSON, CSV) and training curves (PNG). Ctrl-C saves the best model so far; --resume continues."""
    from .train import fit as run_fit

    progress = _Progress("checking photos")
    try:
        config = FitConfig(
            data_dir=data_dir, out=out, val_dir=val, val_split=val_split, arch=arch, image_hw=(image_size, image_size),
            epochs=epochs, small_fraction=small_fraction, small_size=small_size, source_size=source_size, crop=crop,
            batch_size=batch_size, learning_rate=lr, weight_decay=weight_decay, label_smoothing=label_smoothing,
            seed=seed, augment=augment, patience=patience, keep=keep, limit_per_class=limit_per_class,
            grayscale=grayscale, min_per_class=min_per_class, min_side=min_side, strict=strict, resume=resume,
        )
        result = run_fit(config, verbose=2, log=_log, progress=progress)
    except CatDogError as exc:
        raise fail(exc) from None
    finally:
        progress.close()
    resumed = f", resumed after epoch {result.resumed_from}" if result.resumed_from else ""
    typer.echo(
        f"saved {result.model_path} ({keep.value} epoch {result.saved_epoch}/{result.epochs_run}{resumed}, "
        f"val accuracy {result.val_accuracy:.4f} on {result.val_photos} photos); "
        f"contract {result.contract_path}; history {result.history_path}"
        + (f"; curves {result.curves_path}" if result.curves_path else "")
    )


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="The .keras model.", show_default=False)],
    mode: Annotated[
        Optional[ExportMode],
        typer.Option(help="int8 (full integer, calibrated: the edge default), float16, dynamic (int8 weights) or none (float32). Default: none."),
    ] = None,
    quantize: Annotated[bool, typer.Option("--quantize", help="Same as --mode int8.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Output .tflite path. Default: MODEL with .tflite.")] = None,
    calibration: Annotated[Optional[Path], typer.Option(help="int8 calibration photos. Default: the training photos.")] = None,
    calibration_count: Annotated[int, typer.Option(help="int8 calibration photos, stratified by class.")] = 300,
    parity_data: Annotated[Optional[Path], typer.Option(help="Parity photos. Default: the validation photos.")] = None,
) -> None:
    """Convert to .tflite, check parity with the Keras model on validation photos, embed the contract in the
    .tflite and write it beside it as JSON. Nothing is written if conversion or parity fails."""
    from .export import export as run_export

    if quantize and mode not in (None, ExportMode.int8):
        typer.echo(f"error: --quantize means --mode int8; it cannot be combined with --mode {mode.value}", err=True)
        raise typer.Exit(code=2)
    chosen = ExportMode.int8 if quantize else (mode or ExportMode.none)
    try:
        config = ExportConfig(
            model_path=model, out=out, mode=chosen, calibration_dir=calibration,
            calibration_count=calibration_count, parity_dir=parity_data,
        )
        result = run_export(config, log=_log)
    except CatDogError as exc:
        raise fail(exc) from None
    p = result.parity
    typer.echo(
        f"wrote {result.out_path} ({result.mode.stored_as}, {result.size_bytes / 1024:.1f} KiB, contract embedded) "
        f"and {result.contract_path}\n"
        f"parity on {p.photos} validation photos: agreement {p.agreement:.4f}, mean |dp| {p.mean_abs_diff:.4f}, "
        f"max |dp| {p.max_abs_diff:.4f}; accuracy keras {p.keras_accuracy:.4f}, tflite {p.tflite_accuracy:.4f}"
    )


@app.command()
def parity(
    keras_model: Annotated[Path, typer.Argument(help="The full .keras model.", show_default=False)],
    tflite_model: Annotated[Path, typer.Argument(help="The exported .tflite model.", show_default=False)],
    data: Annotated[Path, typer.Option(help="Photos: DATA/<label>/<photo>.", show_default=False)],
    min_agreement: Annotated[float, typer.Option(help="Exit 1 when top-1 agreement is below this.")] = 0.98,
    limit_per_class: Annotated[Optional[int], typer.Option(help="Compare at most N photos per class.")] = None,
    format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Run both models on the same prepared photos and report agreement and probability differences."""
    from .parity import check_parity

    try:
        report = check_parity(keras_model, tflite_model, data, limit_per_class=limit_per_class)
    except CatDogError as exc:
        raise fail(exc) from None
    if format is OutputFormat.json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        typer.echo(
            f"photos {report.photos}\nagreement {report.agreement:.4f}\nmean |dp| {report.mean_abs_diff:.4f}\n"
            f"max |dp| {report.max_abs_diff:.4f}\nkeras accuracy {report.keras_accuracy:.4f}\n"
            f"tflite accuracy {report.tflite_accuracy:.4f}"
        )
    if report.agreement < min_agreement:
        typer.echo(f"error: agreement {report.agreement:.4f} is below --min-agreement {min_agreement}", err=True)
        raise typer.Exit(code=1)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="A .keras or .tflite model.", show_default=False)],
    data: Annotated[Path, typer.Option(help="Photos: DATA/<label>/<photo>.", show_default=False)],
    format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
    plots: Annotated[Optional[Path], typer.Option(help="Write the confusion-matrix PNG into this folder.")] = None,
    most_wrong: Annotated[int, typer.Option(help="List this many of the most confidently wrong photos.")] = 10,
    limit_per_class: LimitOption = None,
) -> None:
    """Accuracy, per-class precision/recall/F1, confusion matrix, ROC AUC and the most confidently wrong photos,
    with the edge's preprocessing, for a .keras or .tflite model."""
    from .evaluate import evaluate as run_evaluate

    try:
        config = EvaluateConfig(
            model_path=model, data_dir=data, plots_dir=plots, most_wrong=most_wrong, limit_per_class=limit_per_class
        )
        report = run_evaluate(config)
    except CatDogError as exc:
        raise fail(exc) from None
    if format is OutputFormat.json:
        typer.echo(json.dumps(report.to_dict()))
        return
    auc = "n/a" if report.roc_auc is None else f"{report.roc_auc:.4f}"
    typer.echo(
        f"{report.model}: accuracy {report.accuracy:.4f} on {report.photos} photos ({report.skipped} skipped), "
        f"macro F1 {report.macro_f1:.4f}, ROC AUC {auc}"
    )
    width = max(5, *(len(c.label) for c in report.per_class))
    typer.echo(f"  {'label':<{width}}  {'photos':>6}  {'precision':>9}  {'recall':>6}  {'f1':>6}")
    for c in report.per_class:
        typer.echo(f"  {c.label:<{width}}  {c.photos:>6}  {c.precision:>9.4f}  {c.recall:>6.4f}  {c.f1:>6.4f}")
    labels = [c.label for c in report.per_class]
    cell = max(6, width)
    typer.echo("confusion (rows true, columns predicted):")
    typer.echo("  " + " " * width + "".join(f"  {name:>{cell}}" for name in labels))
    for name, row in zip(labels, report.confusion):
        typer.echo(f"  {name:<{width}}" + "".join(f"  {v:>{cell}}" for v in row))
    if report.most_wrong:
        typer.echo("most confidently wrong:")
        for m in report.most_wrong:
            typer.echo(f"  {m.confidence:.3f}  {m.predicted:<{width}} (is {m.true})  {m.path}")
    for png in report.plots:
        typer.echo(f"wrote {png}")
