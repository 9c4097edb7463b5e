"""catdog-edge: classify photos with a .tflite model, without TensorFlow."""

# No "from __future__ import annotations": typer would evaluate every string annotation at each start (~5 ms).

import json
import os
import warnings
from enum import Enum
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


class EventFormat(str, Enum):
    """How camera events are printed."""

    text = "text"
    json = "json"


def _resolution_hw(value: Optional[str]) -> Optional[tuple[int, int]]:
    """"640x480" (width x height, as cameras are sold) -> (480, 640)."""
    if value is None:
        return None
    width, sep, height = value.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        raise typer.BadParameter(f"{value!r}: use WIDTHxHEIGHT, e.g. 640x480", param_hint="--resolution")
    return int(height), int(width)


@app.command()
def camera(
    source: Annotated[
        str,
        typer.Option("--source", "-s", help="Device number or /dev/videoN, picamera, a video file, an rtsp:// or "
                     "http(s):// stream, or a folder of photos."),
    ] = "0",
    model: ModelOption = None,
    format: Annotated[EventFormat, typer.Option("--format", "-f", help="text lines or json lines.")] = EventFormat.text,
    every: Annotated[int, typer.Option(min=1, help="Classify every Nth frame.")] = 1,
    smooth: Annotated[int, typer.Option(min=1, help="Smooth decisions over the last K classified frames.")] = 5,
    min_confidence: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Report a label only when its smoothed probability is at least this.")
    ] = 0.0,
    heartbeat: Annotated[Optional[float], typer.Option(help="Also print the current label every S seconds.")] = None,
    save_dir: Annotated[
        Optional[Path], typer.Option(file_okay=False, help="Save a JPEG snapshot on each label event in this folder.")
    ] = None,
    max_frames: Annotated[Optional[int], typer.Option(min=1, help="Stop after N frames.")] = None,
    duration: Annotated[Optional[float], typer.Option(help="Stop after S seconds.")] = None,
    max_retries: Annotated[
        Optional[int], typer.Option(min=0, help="Live sources: reopen attempts in a row before exiting 1 (default: forever).")
    ] = None,
    fps: Annotated[float, typer.Option(help="Frame rate of a photo folder (and of a video with none recorded).")] = 10.0,
    realtime: Annotated[
        bool, typer.Option("--realtime", help="Play files and folders at their frame rate, skipping frames like a live camera.")
    ] = False,
    resolution: Annotated[Optional[str], typer.Option(help="Camera capture size WIDTHxHEIGHT, e.g. 640x480.")] = None,
    threshold: ThresholdOption = None,
    runtime: RuntimeOption = RuntimeName.auto,
    threads: ThreadsOption = None,
    xnnpack: XnnpackOption = True,
) -> None:
    """Watch a camera, video or stream and report when the label changes. Ctrl-C or SIGTERM stops cleanly
    (exit 0); a live source that cannot be reopened within --max-retries exits 1."""
    import signal
    import threading

    from .camera import LabelEvent, SourceConfig, WatchConfig, open_stream, watch

    try:
        source_config = SourceConfig(
            spec=source, fps=fps, realtime=realtime, size_hw=_resolution_hw(resolution), max_frames=max_frames,
            max_retries=max_retries,
        )
        watch_config = WatchConfig(
            every=every, smooth=smooth, min_confidence=min_confidence, heartbeat_s=heartbeat, duration_s=duration,
            save_dir=save_dir,
        )
    except CatDogError as exc:
        raise _fail(exc) from None
    classifier = _load(model, runtime, threads, threshold=threshold, xnnpack=xnnpack)

    def show(event) -> None:
        if not isinstance(event, LabelEvent):
            typer.echo(f"warning: {visible(event.message)}", err=True)
        elif format is EventFormat.json:
            typer.echo(json.dumps(event.to_dict(), ensure_ascii=True))
        else:
            what = "still" if event.event == "heartbeat" else "now"
            label = "-" if event.label is None else f"{event.label} {event.confidence:.2f}"
            saved = f"  -> {event.snapshot}" if event.snapshot else ""
            typer.echo(visible(f"{event.t:9.2f} s  frame {event.frame:>7}  {what:<5} {label}{saved}"))

    stop = threading.Event()

    def request_stop(signum, _frame) -> None:
        stop.set()
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)  # 2nd = force

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, request_stop) for sig in handled}
    try:
        stream = open_stream(source_config)
        summary = watch(classifier, stream, watch_config, show, stop)
    except CatDogError as exc:
        raise _fail(exc) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if format is EventFormat.json:
        typer.echo(json.dumps(summary.to_dict()))
    else:
        lat = summary.latency_ms
        latency = f"latency p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms" if lat.get("p50") is not None else "no latency"
        typer.echo(
            f"summary: {summary.frames} frames, {summary.classified} classified, {summary.dropped} dropped, "
            f"{summary.skipped} skipped, {summary.events} events in {summary.seconds:.1f} s ({summary.fps:.1f} fps); "
            f"{latency}; stopped: {summary.stopped}"
        )
    if summary.error is not None:
        typer.echo(f"error: {visible(summary.error)}", err=True)
        raise typer.Exit(code=1)
