"""catdog-edge: classify photos with a .tflite model, without TensorFlow."""

# No "from __future__ import annotations": typer would evaluate every string annotation at each start (~5 ms).

import json
import os
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._quiet import VERBOSE_ENV
from .printing import OutputFormat, ResultPrinter
from .errors import CatDogError
from .runtime import RuntimeName
from .safe_text import visible

# Only what every command needs is imported here; numpy, Pillow and the interpreter load on use.

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)


ModelOption = Annotated[
    Optional[Path],
    typer.Option("--model", "-m", help="A .tflite model, or a bundled model's name (e.g. compact). Default: the bundled default."),
]
RuntimeOption = Annotated[RuntimeName, typer.Option(help="Interpreter package: auto prefers ai-edge-litert.")]
ThreadsOption = Annotated[Optional[int], typer.Option(min=1, help="Interpreter threads (default: the runtime's).")]
XnnpackOption = Annotated[
    bool, typer.Option(help="Use the runtime's XNNPACK delegate; --no-xnnpack gives tflite-runtime's exact numbers.")
]
ThresholdOption = Annotated[  # validated once, by the Classifier (catdog.edge.contract.check_threshold)
    Optional[float], typer.Option(help="Binary models: probability of the second label needed to choose it (0 < P < 1).")
]


def _fail(exc: CatDogError) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    typer.echo(f"error: {visible(exc)}", err=True)
    return typer.Exit(code=exc.exit_code)


def _say(line: str) -> None:
    """Print a line built from untrusted text (a contract's labels and recipe, a path) with its control characters escaped."""
    typer.echo(visible(line))


def _load(model: Optional[Path], runtime: RuntimeName, threads: Optional[int], **options):
    from .classify import Classifier

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            classifier = Classifier.load(model, runtime=runtime, threads=threads, **options)
    except CatDogError as exc:
        raise _fail(exc) from None
    for warning in caught:  # e.g. a contract written by a newer catdog: one line each
        typer.echo(f"warning: {visible(warning.message)}", err=True)
    return classifier


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", help=f"Also show the libraries' own log lines (or set {VERBOSE_ENV}=1).")
    ] = False,
) -> None:
    """catdog-edge: classify photos with a quantized .tflite model on small devices."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"  # read where the lines are born (catdog.edge._quiet)


@app.command()
def classify(
    paths: Annotated[
        list[str], typer.Argument(help="Photos, directories, glob patterns, or - to read paths from stdin.", show_default=False)
    ],
    model: ModelOption = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="text table, json lines, or csv.")] = (
        OutputFormat.text
    ),
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-directories.")] = False,
    threshold: ThresholdOption = None,
    top_k: Annotated[int, typer.Option(min=1, help="Show the k best labels (N-class models).")] = 1,
    workers: Annotated[int, typer.Option(min=1, help="Threads decoding photos ahead of inference.")] = os.cpu_count() or 1,
    draft: Annotated[bool, typer.Option(help="Fast reduced-scale JPEG decoding for photos much larger than the model input.")] = True,
    runtime: RuntimeOption = RuntimeName.auto,
    threads: ThreadsOption = None,
    xnnpack: XnnpackOption = True,
    flip: Annotated[bool, typer.Option("--flip", help="Also classify the mirror image and average (2 invokes per photo; see README for what it buys).")] = False,
) -> None:
    """Classify photos. Exit 0 when every photo was classified, 1 when any failed, 2 on usage or model errors."""
    from .classify import Failure
    from .inputs import expand_inputs

    classifier = _load(model, runtime, threads, threshold=threshold, draft=draft, xnnpack=xnnpack, flip=flip)
    expanded = expand_inputs(paths, recursive=recursive)
    printer = ResultPrinter(format, classifier.contract.labels, top_k)
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
    raise typer.Exit(code=1 if failed else 0)


@app.command()
def info(
    model: ModelOption = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="text or json.")] = OutputFormat.text,
    runtime: RuntimeOption = RuntimeName.auto,
) -> None:
    """Print the model's contract, its input/output tensors and quantization, and the runtime in use."""
    classifier = _load(model, runtime, None)
    c = classifier.contract
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
    }
    if format is OutputFormat.json:
        typer.echo(json.dumps(record, indent=2, ensure_ascii=True))
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
    _say(f"output is  {c.activation}" + (f", threshold {c.threshold} for {c.labels[1]}" if c.activation == "sigmoid" else ""))
    metrics = c.metrics
    if metrics:
        _say("measured   " + json.dumps(metrics))
    if c.training:
        _say(f"trained    {c.training.get('arch', '?')} on {c.training.get('train_photos', '?')} photos, "
             f"saved epoch {c.training.get('saved_epoch', c.training.get('best_epoch', '?'))} "
             f"of {c.training.get('epochs_run', '?')}")
        if c.training.get("command"):
            _say(f"recipe     {c.training['command']}")


@app.command()
def bench(
    model: ModelOption = None,
    runs: Annotated[int, typer.Option(min=1, help="Timed invoke() runs.")] = 200,
    photos: Annotated[Optional[Path], typer.Option(help="A folder of photos to classify end to end (recursive).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Decoding threads for the end-to-end run.")] = os.cpu_count() or 1,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="text or json.")] = OutputFormat.text,
    runtime: RuntimeOption = RuntimeName.auto,
    threads: ThreadsOption = None,
    xnnpack: XnnpackOption = True,
) -> None:
    """Invoke latency (min/p50/p95/p99) and end-to-end photos per second on this device."""
    from .bench import bench as run_bench
    from .inputs import expand_inputs

    classifier = _load(model, runtime, threads, xnnpack=xnnpack)
    paths: tuple[Path, ...] = ()
    if photos is not None:
        expanded = expand_inputs([photos], recursive=True)
        if expanded.failures:
            typer.echo(f"error: {visible(expanded.failures[0].error)}", err=True)
            raise typer.Exit(code=2)
        paths = expanded.photos
    result = run_bench(classifier, runs=runs, photos=paths, workers=workers)
    if format is OutputFormat.json:
        typer.echo(json.dumps(result.to_dict()))
        return
    inv = result.invoke
    typer.echo(f"model    {result.model}\nruntime  {result.runtime} {result.runtime_version}, threads {result.threads or 'default'}, "
               f"XNNPACK {'on' if result.xnnpack else 'off'}")
    typer.echo("| invoke ms | min | p50 | p95 | p99 | runs |\n|---|---|---|---|---|---|")
    typer.echo(f"| | {inv.min:.3f} | {inv.p50:.3f} | {inv.p95:.3f} | {inv.p99:.3f} | {inv.runs} |")
    if result.photos_per_second is not None:
        typer.echo(f"end to end: {result.photos} photos ({result.failed} failed), {result.photos_per_second:.1f} photos/s "
                   f"with {result.workers} decoding thread(s)")


# The camera command lives in its own module; importing it registers it on app (it imports only typer at load).
from . import cli_camera  # noqa: E402,F401


def run(argv: Optional[list[str]] = None) -> None:
    """The catdog-edge entry point: app, with only the command being run turned into options.

    typer builds every registered command's options from its signature before it parses anything;
    building just the one named on the command line saves that work on each start (a few ms, more on a
    Pi). With no command, or an unknown one, every command is built, so help and suggestions list them all.
    """
    import sys

    from typer.main import get_command_name

    args = sys.argv[1:] if argv is None else argv
    name = next((arg for arg in args if not arg.startswith("-")), None)  # the global options take no value
    chosen = [info for info in app.registered_commands if (info.name or get_command_name(info.callback.__name__)) == name]
    every = app.registered_commands
    app.registered_commands = chosen or every
    try:
        app(args=args, prog_name="catdog-edge")
    finally:
        app.registered_commands = every
