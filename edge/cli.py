"""catdog-edge: classify photos with a .tflite model, without TensorFlow."""

# click, not typer (which catdog-train uses): importing typer loads all of click and then its own
# completion, subprocess, shutil and difflib, about 20 ms of every start and more on a Pi, which would
# put a one-photo classify over 1.3x a bare interpreter script (docs/benchmarks.md, Cold start).

import json
import os
import warnings
from enum import Enum
from pathlib import Path
from typing import Optional

import click
from click.exceptions import Exit

from ._quiet import VERBOSE_ENV
from .printing import OutputFormat, ResultPrinter
from .errors import CatDogError
from .runtime import RuntimeName
from .safe_text import visible

# Only what every command needs is imported here; numpy, Pillow and the interpreter load on use.


class EnumChoice(click.Choice):
    """One of a str Enum's values on the command line, handed to the command as the Enum member."""

    def __init__(self, enum: type[Enum]):
        super().__init__([member.value for member in enum])
        self.enum = enum

    def convert(self, value, param, ctx):
        if isinstance(value, self.enum):
            return value
        return self.enum(super().convert(value, param, ctx))


class Commands(click.Group):
    """catdog-edge's commands, listed in the order they are defined; the camera command (25 options) is
    built only when it is run, listed or suggested, so other commands start without it."""

    lazy = {"camera": "cli_camera"}  # command name -> module of this package that defines it on app

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(name for name in self.lazy if name not in self.commands)]

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name not in self.commands:  # a lazy command, or a typo: load the lazy ones so click can suggest them
            from importlib import import_module

            for module in self.lazy.values():
                import_module(f".{module}", __package__)
        return self.commands.get(name)


# Options several commands share: each click.option(...) is a decorator that adds a fresh option where it is used.
model_option = click.option(
    "--model", "-m", type=click.Path(path_type=Path), default=None,
    help="A .tflite model, or a bundled model's name (e.g. compact). Default: the bundled default.",
)
runtime_option = click.option(
    "--runtime", type=EnumChoice(RuntimeName), default=RuntimeName.auto.value,
    help="Interpreter package: auto prefers ai-edge-litert.",
)
threads_option = click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads (default: the runtime's, 1)."
)
workers_option = click.option(  # the choice: catdog.edge.pipeline.plan_pipeline
    "--workers", type=click.IntRange(min=1), default=None,
    help="Threads decoding and classifying photos (default: chosen from the model's measured cost and the cores).",
)
xnnpack_option = click.option(
    "--xnnpack/--no-xnnpack", default=True,
    help="Use the runtime's XNNPACK delegate; --no-xnnpack gives tflite-runtime's exact numbers.",
)
threshold_option = click.option(  # validated once, by the Classifier (catdog.edge.contract.check_threshold)
    "--threshold", type=float, default=None,
    help="Binary models: probability of the second label needed to choose it (0 < P < 1).",
)

presence_option = click.option(
    "--presence/--no-presence", default=True,
    help="Answer 'none' when the model's presence score says none of its labels is there (models that have one); "
         "--no-presence always picks a label.",
)
presence_threshold_option = click.option(  # validated by the Classifier
    "--presence-threshold", type=float, default=None,
    help="Presence score needed to answer a label instead of 'none' (default: the model's; see catdog-edge info).",
)


def format_option(choices: type[Enum], default: Enum, help: str):
    """The --format/-f option of a command, among an Enum's values."""
    return click.option("--format", "-f", type=EnumChoice(choices), default=default.value, help=help)


def _fail(exc: CatDogError) -> Exit:
    """Print one error line on stderr and return the Exit to raise."""
    click.echo(f"error: {visible(exc)}", err=True)
    return Exit(exc.exit_code)


def _say(line: str) -> None:
    """Print a line built from untrusted text (a contract's labels and recipe, a path) with its control characters escaped."""
    click.echo(visible(line))


def _load(model: Optional[Path], runtime: RuntimeName, threads: Optional[int], **options):
    from .classify import Classifier

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            classifier = Classifier.load(model, runtime=runtime, threads=threads, **options)
    except CatDogError as exc:
        raise _fail(exc) from None
    for warning in caught:  # e.g. a contract written by a newer catdog: one line each
        click.echo(f"warning: {visible(warning.message)}", err=True)
    return classifier


@click.group(cls=Commands, help=__doc__, context_settings={"show_default": True})
@click.option("--verbose", is_flag=True, help=f"Also show the libraries' own log lines (or set {VERBOSE_ENV}=1).")
def app(verbose: bool) -> None:
    """The catdog-edge group: its options apply to every command (its help is the module's docstring)."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"  # read where the lines are born (catdog.edge._quiet)


@app.command()
@click.argument("paths", nargs=-1, required=True)
@model_option
@format_option(OutputFormat, OutputFormat.text, "text table, json lines, or csv.")
@click.option("--recursive", "-r", is_flag=True, help="Descend into sub-directories.")
@threshold_option
@click.option("--top-k", type=click.IntRange(min=1), default=1, help="Show the k best labels (N-class models).")
@workers_option
@click.option("--draft/--no-draft", default=True,
              help="Fast reduced-scale JPEG decoding for photos much larger than the model input.")
@runtime_option
@threads_option
@xnnpack_option
@click.option("--flip", is_flag=True,
              help="Also classify the mirror image and average (2 invokes per photo; see README for what it buys).")
@presence_option
@presence_threshold_option
def classify(
    paths: tuple[str, ...], model: Optional[Path], format: OutputFormat, recursive: bool, threshold: Optional[float],
    top_k: int, workers: Optional[int], draft: bool, runtime: RuntimeName, threads: Optional[int], xnnpack: bool,
    flip: bool, presence: bool, presence_threshold: Optional[float],
) -> None:
    """Classify photos. Exit 0 when every photo was classified, 1 when any failed, 2 on usage or model errors.

    PATHS are photos, directories, glob patterns, or - to read paths from stdin.
    """
    from .classify import Failure
    from .inputs import expand_inputs

    classifier = _load(model, runtime, threads, threshold=threshold, draft=draft, xnnpack=xnnpack, flip=flip,
                       presence=presence, presence_threshold=presence_threshold)
    expanded = expand_inputs(paths, recursive=recursive)
    printer = ResultPrinter(format, classifier.contract.labels, top_k, presence=classifier.presence is not None)
    failed = False
    for failure in expanded.failures:
        failed = True
        printer.failure(failure)
    for result in classifier.classify_many(expanded.photos, workers=workers):
        if isinstance(result, Failure):
            failed = True
            printer.failure(result)
        else:
            printer.prediction(result)
    raise Exit(1 if failed else 0)


@app.command()
@model_option
@format_option(OutputFormat, OutputFormat.text, "text or json.")
@runtime_option
def info(model: Optional[Path], format: OutputFormat, runtime: RuntimeName) -> None:
    """Print the model's contract, its input/output tensors and quantization, its standard TFLite metadata
    (what MediaPipe Tasks and the Task Library read), and the runtime in use."""
    from .std_metadata import read_standard_metadata

    classifier = _load(model, runtime, None)
    c = classifier.contract
    try:
        standard = read_standard_metadata(classifier.model_path)
    except CatDogError as exc:
        raise _fail(exc) from None
    tensors = {}
    for name, detail in (("input", classifier.input_detail), ("output", classifier.output_detail)):
        scale, zero_point = detail["quantization"]
        tensors[name] = {
            "shape": [int(x) for x in detail["shape"]],
            "dtype": str(detail["dtype"].__name__ if hasattr(detail["dtype"], "__name__") else detail["dtype"]),
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None,
        }
    record = {
        "model": str(classifier.model_path),
        "size_bytes": classifier.model_path.stat().st_size,
        "runtime": classifier.runtime.name,
        "runtime_version": classifier.runtime.version,
        "tensors": tensors,
        "contract": c.to_dict(),
        "standard_metadata": None if standard is None else standard.to_dict(),
    }
    if format is OutputFormat.json:
        click.echo(json.dumps(record, indent=2, ensure_ascii=True))
        return
    _say(f"model      {record['model']} ({record['size_bytes'] / 1024:.1f} KiB, {c.mode})")
    _say(f"runtime    {classifier.runtime.name} {classifier.runtime.version}")
    _say(f"labels     {', '.join(f'{i}={label}' for i, label in enumerate(c.labels))}")
    _say(f"input      {c.input_hw[0]}x{c.input_hw[1]} {c.color}, centre {c.crop:g} of each side, resize {c.resize}, "
         "raw 0..255 pixels")
    for name, t in tensors.items():
        q = t["quantization"]
        quant = f"scale {q['scale']:.6g}, zero point {q['zero_point']}" if q else "not quantized"
        _say(f"{name:<10} {t['shape']} {t['dtype']}, {quant}")
    _say(f"output is  {c.activation}" + (f", threshold {c.threshold} for {c.labels[1]}" if len(c.labels) == 2 else ""))
    if c.presence is not None:
        p = c.presence
        _say(f"presence   {p.method} score (output {p.output!r}): a label at >= {p.threshold:g}, else {p.label!r} "
             f"({p.how_chosen})")
    if c.features is not None:
        _say(f"features   {c.features.size} pooled backbone features (output {c.features.output!r}): "
             "catdog-edge learn fits a new head on them")
    if standard is None:
        _say("standard   none (no TFLITE_METADATA: other TFLite readers see unnamed scores)")
    else:
        about = ", ".join(f"{key} {value}" for key, value in (("version", standard.version), ("by", standard.author),
                                                              ("licence", standard.license)) if value)
        _say(f"standard   {standard.name or '(no name)'}" + (f" ({about})" if about else ""))
        for kind, described in [("input", t) for t in standard.inputs] + [("output", t) for t in standard.outputs]:
            parts = [f"{kind} {described.name or '(no name)'}"]
            if described.color is not None:
                parts.append(f"{described.color} image" + (f" {described.size_hw[0]}x{described.size_hw[1]}" if described.size_hw else ""))
            if described.mean is not None:
                parts.append(f"normalized (x - {'/'.join(f'{v:g}' for v in described.mean)}) / "
                             f"{'/'.join(f'{v:g}' for v in (described.std or ()))}")
            if described.label_file is not None:
                parts.append(f"labels from {described.label_file}")
            _say("           " + ", ".join(parts))
        if standard.labels is not None:
            _say(f"           labels {', '.join(standard.labels)}")
    metrics = c.metrics
    if metrics:
        _say("measured   " + json.dumps(metrics))
    if c.training:
        epochs = (f", saved epoch {c.training.get('saved_epoch', c.training.get('best_epoch', '?'))} of "
                  f"{c.training['epochs_run']}") if "epochs_run" in c.training else ""
        _say(f"trained    {c.training.get('arch', '?')} on {c.training.get('train_photos', '?')} photos{epochs}")
        if c.training.get("command"):
            _say(f"recipe     {c.training['command']}")


@app.command()
@model_option
@click.option("--runs", type=click.IntRange(min=1), default=200, help="Timed invoke() runs.")
@click.option("--photos", type=click.Path(path_type=Path), default=None,
              help="A folder of photos to classify end to end (recursive).")
@workers_option
@format_option(OutputFormat, OutputFormat.text, "text or json.")
@runtime_option
@threads_option
@xnnpack_option
def bench(
    model: Optional[Path], runs: int, photos: Optional[Path], workers: Optional[int], format: OutputFormat, runtime: RuntimeName,
    threads: Optional[int], xnnpack: bool,
) -> None:
    """Invoke latency (min/p50/p95/p99) and end-to-end photos per second on this device."""
    from .bench import bench as run_bench
    from .inputs import expand_inputs

    classifier = _load(model, runtime, threads, xnnpack=xnnpack)
    paths: tuple[Path, ...] = ()
    if photos is not None:
        expanded = expand_inputs([photos], recursive=True)
        if expanded.failures:
            click.echo(f"error: {visible(expanded.failures[0].error)}", err=True)
            raise Exit(2)
        paths = expanded.photos
    result = run_bench(classifier, runs=runs, photos=paths, workers=workers)
    if format is OutputFormat.json:
        click.echo(json.dumps(result.to_dict()))
        return
    inv = result.invoke
    click.echo(f"model    {result.model}\nruntime  {result.runtime} {result.runtime_version}, threads {result.threads or 'default'}, "
               f"XNNPACK {'on' if result.xnnpack else 'off'}")
    click.echo("| invoke ms | min | p50 | p95 | p99 | runs |\n|---|---|---|---|---|---|")
    click.echo(f"| | {inv.min:.3f} | {inv.p50:.3f} | {inv.p95:.3f} | {inv.p99:.3f} | {inv.runs} |")
    if result.photos_per_second is not None:
        click.echo(f"end to end: {result.photos} photos ({result.failed} failed), {result.photos_per_second:.1f} photos/s "
                   f"with {result.workers} worker thread(s) sharing {result.interpreters} interpreter(s)")


@app.command()
@click.argument("data_dir", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option("--model", "-m", type=click.Path(path_type=Path), default=None,
              help="The base: an int8 pretrained .tflite (catdog-train export), or a bundled model's name. Default: the bundled default.")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The .tflite to write (its contract beside it, .json).")
@click.option("--seed", type=int, default=1337, help="Seeds the cross-validation folds and k-means.")
@click.option("--presence/--no-presence", default=True, help="Fit a familiarity presence score, so the model can answer 'none'.")
@threads_option
def learn(data_dir: Path, model: Optional[Path], out: Path, seed: int, presence: bool, threads: Optional[int]) -> None:
    """Fit a new head on the base model's own features of DIR/<class>/ photos, on this device, and write MODEL.

    The classes are DIR's folders (not inbox/, hidden folders or none/); they may differ from the base's.
    No TensorFlow: the base computes the features, numpy fits the head (as catdog-train fit does).
    """
    # The fit is thousands of small matrix products: OpenBLAS's threads cost more than they give there (20x
    # slower on 2 busy cores), and the interpreter has threads of its own. Before numpy is first imported.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from .learn import LearnConfig, learn as run_learn

    config = LearnConfig(data_dir=data_dir, out_path=out, model=model, seed=seed, presence=presence, threads=threads)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run_learn(config, log=lambda line: click.echo(visible(line), err=True))
    except CatDogError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        click.echo(f"error: cannot write {visible(str(out))} ({visible(exc.strerror or str(exc))}); check the folder", err=True)
        raise Exit(1) from None
    for warning in caught:
        click.echo(f"warning: {visible(warning.message)}", err=True)
    for line in result.skipped:
        click.echo(f"warning: skipped {visible(line)}", err=True)
    _say(f"wrote {result.out_path} and {result.contract_path.name}: {', '.join(result.labels)}")
    _say(f"photos {sum(result.photos.values())} {result.photos}, cross-validated accuracy "
         f"{result.cv_accuracy[result.l2]:.3f} (L2 {result.l2:g}), model agrees with the numpy head on "
         f"{result.agreement:.0%} of the photos checked")
    _say(f"features {result.features_seconds:.1f} s, fit {result.fit_seconds:.1f} s")


def run(argv: Optional[list[str]] = None) -> None:
    """The catdog-edge entry point."""
    app.main(args=argv, prog_name="catdog-edge")
