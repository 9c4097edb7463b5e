"""catdog-edge: classify photos with a .tflite model, without TensorFlow."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edge.classify import Classifier, Failure, Prediction
from edge.errors import CatDogError
from edge.inputs import expand_inputs
from edge.runtime import RuntimeName

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


class OutputFormat(str, Enum):
    """How classify prints results."""

    text = "text"
    json = "json"


def fail(exc: CatDogError) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=exc.exit_code)


@app.callback()
def main() -> None:
    """catdog-edge: classify photos with a quantized .tflite model on small devices."""


@app.command()
def classify(
    paths: Annotated[list[Path], typer.Argument(help="Photos and/or directories of photos.", show_default=False)],
    model: Annotated[
        Optional[Path], typer.Option(help="The .tflite model (its .json contract beside it). Default: bundled model.")
    ] = None,
    format: Annotated[OutputFormat, typer.Option("--format", help="text, or json: one object per photo per line.")] = (
        OutputFormat.text
    ),
    runtime: Annotated[RuntimeName, typer.Option(help="Interpreter package.")] = RuntimeName.auto,
    threads: Annotated[Optional[int], typer.Option(min=1, help="Interpreter threads.")] = None,
) -> None:
    """Classify photos. Exit 0 when every photo was classified, 1 when any failed, 2 on usage or model errors."""
    try:
        classifier = Classifier.load(model, runtime=runtime, threads=threads)
    except CatDogError as exc:
        raise fail(exc) from None
    expanded = expand_inputs(paths)
    failed = False
    for problem in expanded.problems:
        failed = True
        _print_failure(Failure(problem.path, problem.error), format)
    for result in classifier.classify_many(expanded.photos):
        if isinstance(result, Failure):
            failed = True
            _print_failure(result, format)
        else:
            _print_prediction(result, format)
    raise typer.Exit(code=1 if failed else 0)


def _print_prediction(p: Prediction, format: OutputFormat) -> None:
    if format is OutputFormat.json:
        typer.echo(json.dumps(p.to_dict()))
    else:
        scores = "  ".join(f"{k}={v:.3f}" for k, v in p.scores.items())
        typer.echo(f"{p.path}\t{p.label}\t{p.confidence:.3f}\t{scores}\t{p.ms:.1f} ms")


def _print_failure(f: Failure, format: OutputFormat) -> None:
    if format is OutputFormat.json:
        typer.echo(json.dumps(f.to_dict()))
    else:
        typer.echo(f"error: {f.error}", err=True)
