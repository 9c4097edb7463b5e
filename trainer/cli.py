"""catdog-train: check a photo folder, fit a Keras CNN on it, evaluate it, export it to TFLite, check parity;
show or clear the photo cache."""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from click.core import ParameterSource

from catdog.edge._quiet import VERBOSE_ENV
from catdog.edge.errors import CatDogError
from catdog.edge.std_metadata import ModelInfo
from .config import Arch, CheckConfig, Distribute, EvaluateConfig, ExportConfig, ExportMode, FitConfig, Keep, PresenceMethod
from .recipe import parse_size

# Every default below is the config's (FitConfig.epochs, ...): an option is defined once, in trainer.config.

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


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
def main(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            help=f"Show the libraries' own log lines (TensorFlow's start-up, oneDNN, CUDA, LiteRT); also {VERBOSE_ENV}=1.",
        ),
    ] = False,
) -> None:
    """catdog-train: check, fit, evaluate, export (int8, float16, dynamic, none) and parity for cat/dog (or any class-per-folder) photos;
    cache shows or clears fit's decoded photos."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"


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


DataDirArgument = Annotated[Path, typer.Argument(help="Training photos: DATA_DIR/<label>/<photo>.", show_default=False)]
ValOption = Annotated[Optional[Path], typer.Option(help="Validation photos, same layout. Default: split off DATA_DIR.")]
ValSplitOption = Annotated[float, typer.Option(help="Fraction per class held out when --val is not given.")]
SeedOption = Annotated[int, typer.Option(help="Seed for split, sampling, shuffling, augmentation and weights.")]
LimitOption = Annotated[Optional[int], typer.Option(help="Use at most N photos per class (quick runs).")]
MinPerClassOption = Annotated[int, typer.Option(help="Fewest usable training photos a class may have.")]
MinSideOption = Annotated[int, typer.Option(help="Leave out photos whose shorter side is under this many pixels.")]
ImbalanceOption = Annotated[
    float, typer.Option(help="Warn when the largest class has more than this many times the photos of the smallest.")
]
StrictOption = Annotated[bool, typer.Option(help="Any problem file is an error, not a skipped file.")]
CacheOption = Annotated[Optional[Path], typer.Option(metavar="DIR", help="Folder of the decoded-photo cache, reused across runs. Default: ~/.cache/catdog/photos ($XDG_CACHE_HOME).")]


@app.command()
def check(
    data_dir: DataDirArgument,
    val: ValOption = CheckConfig.val_dir,
    val_split: ValSplitOption = CheckConfig.val_split,
    seed: SeedOption = CheckConfig.seed,
    limit_per_class: LimitOption = CheckConfig.limit_per_class,
    min_per_class: MinPerClassOption = CheckConfig.min_per_class,
    min_side: MinSideOption = CheckConfig.min_side,
    imbalance_ratio: ImbalanceOption = CheckConfig.imbalance_ratio,
    strict: StrictOption = CheckConfig.strict,
    format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Check a photo folder as fit would: photos per class, unreadable, too small and duplicate files, imbalance."""
    from .scan import check_data

    progress = _Progress("checking photos")
    try:
        config = CheckConfig(
            data_dir=data_dir, val_dir=val, val_split=val_split, seed=seed, limit_per_class=limit_per_class,
            min_per_class=min_per_class, min_side=min_side, imbalance_ratio=imbalance_ratio, strict=strict,
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
    data_dir: DataDirArgument,
    val: ValOption = FitConfig.val_dir,
    val_split: ValSplitOption = FitConfig.val_split,
    seed: SeedOption = FitConfig.seed,
    limit_per_class: LimitOption = FitConfig.limit_per_class,
    min_per_class: MinPerClassOption = FitConfig.min_per_class,
    min_side: MinSideOption = FitConfig.min_side,
    imbalance_ratio: ImbalanceOption = FitConfig.imbalance_ratio,
    strict: StrictOption = FitConfig.strict,
    out: Annotated[Path, typer.Option(help="Model path (.keras); contract, history and curves go beside it.")] = FitConfig.out,
    arch: Annotated[Arch, typer.Option(help="compact (small, from scratch), seed (the seed article's CNN) or efficientnet-lite0 (ImageNet-pretrained: a new head on its frozen features).")] = FitConfig.arch,
    image_size: Annotated[Optional[str], typer.Option(metavar="SIZE", help="Input size in pixels: N (square) or HEIGHTxWIDTH. Default: 96 (compact, seed), 224 (efficientnet-lite0).")] = FitConfig.image_hw,
    weights: Annotated[Optional[str], typer.Option(help="efficientnet-lite0: imagenet (the pretrained extra), a .pth or .weights.h5 file, or none. Default: imagenet.")] = FitConfig.weights,
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping may end sooner), the small ones included.")] = FitConfig.epochs,
    small_fraction: Annotated[float, typer.Option(help="Fraction of the epochs trained first at --small-size (progressive resizing: cheaper epochs; compact arch, 0 to turn off).")] = FitConfig.small_fraction,
    small_size: Annotated[int, typer.Option(help="Square size in pixels of the small epochs (no effect unless under --image-size).")] = FitConfig.small_size,
    source_size: Annotated[int, typer.Option(help="Shorter side in pixels the training photos are decoded at for augmentation (sharper crops; never under --image-size).")] = FitConfig.source_size,
    crop: Annotated[Optional[float], typer.Option(help="Side of the centred region the model is fed, as a fraction of each side (recorded in the contract; the edge crops likewise). Default: the mean side of the random training crops, 0.83 (1 with --no-augment).")] = FitConfig.crop,
    batch_size: Annotated[int, typer.Option(help="Photos per step.")] = FitConfig.batch_size,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate (cosine decay).")] = FitConfig.learning_rate,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay (0: plain Adam).")] = FitConfig.weight_decay,
    label_smoothing: Annotated[float, typer.Option(help="Soften the targets by this much (0 to 0.5).")] = FitConfig.label_smoothing,
    augment: Annotated[bool, typer.Option(help="Random flip/rotate/crop/shift/colour changes while training.")] = FitConfig.augment,
    patience: Annotated[int, typer.Option(help="Early stopping patience in epochs (--keep best).")] = FitConfig.patience,
    keep: Annotated[Keep, typer.Option(help="Save the best epoch by val accuracy (early stopping) or the last one (all epochs; val only measured).")] = FitConfig.keep,
    grayscale: Annotated[bool, typer.Option(help="Train a 1-channel model on grayscale photos.")] = FitConfig.grayscale,
    presence: Annotated[PresenceMethod, typer.Option(help="efficientnet-lite0: the score that lets the model answer 'none' (auto: imagenet for cat/dog, familiarity for other labels; off: always a label).")] = FitConfig.presence,
    none: Annotated[Optional[Path], typer.Option("--none", metavar="DIR", help="Your own photos with none of the labels in them (e.g. frames of the empty scene): they set the presence threshold.")] = FitConfig.none_dir,
    distribute: Annotated[Optional[Distribute], typer.Option(help="none, mirrored (local GPUs) or multi-worker (the machines in TF_CONFIG; the same command on each). Default: mirrored with more than one GPU, else none. --batch-size is the global batch.")] = FitConfig.distribute,
    mixed_precision: Annotated[bool, typer.Option(help="Compute in float16, weights in float32 (faster on recent GPUs).")] = FitConfig.mixed_precision,
    cache: CacheOption = FitConfig.cache_dir,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Decode the photos into memory for this run, without the cache.")] = FitConfig.no_cache,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoint.")] = FitConfig.resume,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a model already at --out, or an interrupted run's checkpoint (else either is an error).")] = FitConfig.overwrite,
) -> None:
    """Check the photos, train a CNN, and save the best epoch by validation accuracy (or, --keep last, the last) with its contract,
    history (JSON, CSV) and training curves (PNG). Ctrl-C saves the best model so far; --resume continues."""
    from .train import fit as run_fit

    progress = _Progress("checking photos")
    try:
        config = FitConfig(
            data_dir=data_dir, val_dir=val, val_split=val_split, seed=seed, limit_per_class=limit_per_class,
            min_per_class=min_per_class, min_side=min_side, imbalance_ratio=imbalance_ratio, strict=strict,
            out=out, arch=arch, image_hw=None if image_size is None else parse_size(image_size), weights=weights, epochs=epochs, small_fraction=small_fraction,
            small_size=small_size, source_size=source_size, crop=crop, batch_size=batch_size, learning_rate=lr,
            weight_decay=weight_decay, label_smoothing=label_smoothing, augment=augment, patience=patience, keep=keep,
            grayscale=grayscale, presence=presence, none_dir=none, distribute=distribute, mixed_precision=mixed_precision, cache_dir=cache,
            no_cache=no_cache, resume=resume, overwrite=overwrite,
        )
        result = run_fit(config, verbose=2, log=_log, progress=progress)
    except CatDogError as exc:
        raise fail(exc) from None
    finally:
        progress.close()
    if not result.wrote:
        typer.echo(f"done: this worker trained a replica; the chief saved {result.model_path} "
                   f"(val accuracy {result.val_accuracy:.4f} on {result.val_photos} photos)")
        return
    resumed = f", resumed after epoch {result.resumed_from}" if result.resumed_from else ""
    how = (f"a new head on frozen {config.arch.value} features" if config.arch.pretrained
           else f"{keep.value} epoch {result.saved_epoch}/{result.epochs_run}{resumed}")
    typer.echo(
        f"saved {result.model_path} ({how}, "
        f"val accuracy {result.val_accuracy:.4f} on {result.val_photos} photos); "
        f"contract {result.contract_path}; history {result.history_path}"
        + (f"; curves {result.curves_path}" if result.curves_path else "")
    )


@app.command("cache")
def cache_command(
    cache: CacheOption = FitConfig.cache_dir,
    clear: Annotated[bool, typer.Option("--clear", help="Delete the cached photos (a fit caching them right now keeps its own).")] = False,
) -> None:
    """Show how much room fit's decoded-photo cache takes and what it holds, or empty it (--clear)."""
    from .cache import cache_usage, clear_cache, default_cache_dir

    folder = cache if cache is not None else default_cache_dir()
    try:
        if clear:
            gone, busy = clear_cache(folder)
            typer.echo(f"deleted {len(gone.entries)} caches ({_mib(gone.size)}) from {folder}")
            for key in busy:
                typer.echo(f"warning: kept {key}: another catdog-train process is caching it; clear again after it ends", err=True)
            return
        usage = cache_usage(folder)
    except CatDogError as exc:
        raise fail(exc) from None
    typer.echo(f"{folder}: {len(usage.entries)} caches, {_mib(usage.size)}" + ("; catdog-train cache --clear deletes them" if usage.size else ""))
    for entry in usage.entries:
        prep = entry.preprocessing
        hw = "x".join(str(v) for v in prep.get("hw", ()))
        typer.echo(f"  {entry.key}  {entry.photos:>7,} photos at {hw} {prep.get('color')}, crop {prep.get('crop')}  {_mib(entry.size)}")


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


@app.command()
def export(
    ctx: typer.Context,
    model: Annotated[Path, typer.Argument(help="The .keras model.", show_default=False)],
    mode: Annotated[
        ExportMode,
        typer.Option(help="int8 (full integer, calibrated: the edge default), float16, dynamic (int8 weights) or none (float32)."),
    ] = ExportConfig.mode,
    quantize: Annotated[bool, typer.Option("--quantize", help="Same as --mode int8.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Output .tflite path. Default: MODEL with .tflite.")] = ExportConfig.out,
    calibration: Annotated[Optional[Path], typer.Option(help="int8 calibration photos. Default: the training photos fit used.")] = ExportConfig.calibration_dir,
    calibration_count: Annotated[int, typer.Option(help="int8 calibration photos, stratified by class.")] = ExportConfig.calibration_count,
    parity_data: Annotated[Optional[Path], typer.Option(help="Parity photos. Default: the validation photos fit used.")] = ExportConfig.parity_dir,
    data_root: Annotated[Optional[Path], typer.Option(help="The folder that holds the photo folders the contract records (e.g. train, val). Default: the working directory.")] = ExportConfig.data_root,
    name: Annotated[str, typer.Option(help="Standard metadata: model name. Default: catdog ARCH: LABELS.")] = ModelInfo.name,
    description: Annotated[str, typer.Option(help="Standard metadata: description. Default: labels and input, from the contract.")] = ModelInfo.description,
    model_version: Annotated[str, typer.Option(help="Standard metadata: version. Default: a hash of the model's bytes.")] = ModelInfo.version,
    author: Annotated[str, typer.Option(help="Standard metadata: author. Default: catdog-train export.")] = ModelInfo.author,
    license: Annotated[str, typer.Option(help="Standard metadata: licence. Default: none stated.")] = ModelInfo.license,
) -> None:
    """Convert to .tflite, check parity with the Keras model on validation photos, embed the contract in the
    .tflite and write it beside it as JSON, and add the standard TFLite metadata with the labels (MediaPipe
    Tasks and the Task Library name the classes from it). Nothing is written if conversion or parity fails."""
    from .export import export as run_export

    if quantize and mode is not ExportMode.int8 and ctx.get_parameter_source("mode") is not ParameterSource.DEFAULT:
        typer.echo(f"error: --quantize means --mode int8; it cannot be combined with --mode {mode.value}", err=True)
        raise typer.Exit(code=2)
    progress = _Progress("checking photos")
    try:
        config = ExportConfig(
            model_path=model, out=out, mode=ExportMode.int8 if quantize else mode, calibration_dir=calibration,
            calibration_count=calibration_count, parity_dir=parity_data, data_root=data_root,
            info=ModelInfo(name=name, description=description, version=model_version, author=author, license=license),
        )
        result = run_export(config, log=_log, progress=progress)
    except CatDogError as exc:
        raise fail(exc) from None
    finally:
        progress.close()
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
    plots: Annotated[Optional[Path], typer.Option(help="Write the confusion-matrix PNG into this folder.")] = EvaluateConfig.plots_dir,
    most_wrong: Annotated[int, typer.Option(help="List this many of the most confidently wrong photos.")] = EvaluateConfig.most_wrong,
    limit_per_class: LimitOption = EvaluateConfig.limit_per_class,
    negatives: Annotated[Optional[Path], typer.Option(metavar="DIR", help="Photos with none of the labels in them: report how many the model answers 'none'.")] = EvaluateConfig.negatives_dir,
    record: Annotated[bool, typer.Option("--record", help="Write the 'none' figures into the model's contract.")] = EvaluateConfig.record,
) -> None:
    """Accuracy, per-class precision/recall/F1, confusion matrix, ROC AUC and the most confidently wrong photos,
    with the edge's preprocessing, for a .keras or .tflite model; with a presence score, how often it answers
    'none' (on --data, and on --negatives)."""
    from .evaluate import evaluate as run_evaluate

    try:
        config = EvaluateConfig(
            model_path=model, data_dir=data, plots_dir=plots, most_wrong=most_wrong, limit_per_class=limit_per_class,
            negatives_dir=negatives, record=record,
        )
        report = run_evaluate(config)
    except CatDogError as exc:
        raise fail(exc) from None
    typer.echo(json.dumps(report.to_dict()) if format is OutputFormat.json else report.text())
