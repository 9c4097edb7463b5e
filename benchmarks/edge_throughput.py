"""Photos per second: a naive one-at-a-time loop vs catdog's pipeline (threads chosen from the model's cost, JPEG draft).

Also measures what draft decoding costs in answers: label agreement and score difference against
full decoding on the same photos (draft is kept on by default only while agreement >= 99.5%), and
what the choice of threads buys: the same pipeline held to one interpreter (as before issue 28),
and one interpreter running on every core instead of copies of it.

The rows take turns, run by run (naive, catdog, ..., naive, catdog, ...), so a machine that slows
down or speeds up during the measurement moves them alike; each row shows the median of its runs.
The load average before and after is printed: measure on a quiet machine.

    .venv/bin/python benchmarks/edge_throughput.py [--data ../shared/datasets/catdog/val] [--model M] [--repeats 5]
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

import catdog.edge.preprocess

from catdog.edge import Classifier, Prediction
from catdog.edge.inputs import expand_inputs
from catdog.edge.pipeline import Plan, usable_cores
from _paths import DATA

Run = Callable[[], tuple[float, list[Prediction], str]]


def naive(model: Path, photos: tuple[Path, ...]) -> tuple[float, list[Prediction], str]:
    """What a first script does: decode each photo fully, then invoke, one after another."""
    classifier = Classifier.load(model, draft=False)
    start = time.perf_counter()
    results = [classifier.classify(p) for p in photos]
    return len(photos) / (time.perf_counter() - start), results, "1 thread"


def pipelined(
    model: Path, photos: tuple[Path, ...], draft: bool, oversample: int = 2, threads: int | None = None,
    interpreters: int | None = None,
) -> tuple[float, list[Prediction], str]:
    """classify_many as catdog-edge classify runs it (workers chosen), optionally held to some interpreters."""
    catdog.edge.preprocess.DRAFT_OVERSAMPLE = oversample
    classifier = Classifier.load(model, draft=draft, threads=threads)
    start = time.perf_counter()
    results = list(classifier.classify_many(photos, interpreters=interpreters))
    rate = len(photos) / (time.perf_counter() - start)
    plan = classifier.last_plan or Plan(1, 1)
    return rate, results, (f"{plan.workers} workers, {plan.interpreters} interpreter(s) x "
                           f"{classifier.threads or 1} thread(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA / "val")
    parser.add_argument("--model", default=None, help="a .tflite file or a bundled model's name (default, compact)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per row, taking turns (the median is shown)")
    args = parser.parse_args()
    photos = expand_inputs([args.data], recursive=True).photos
    model = Classifier.load(args.model).model_path
    cores = usable_cores()

    runs: dict[str, Run] = {
        "naive loop (full decode, 1 thread)": lambda: naive(model, photos),
        "catdog, one interpreter (as before), JPEG draft": lambda: pipelined(model, photos, True, interpreters=1),
        f"catdog, one interpreter with {cores} threads, JPEG draft":
            lambda: pipelined(model, photos, True, threads=cores, interpreters=1),
        "catdog, full decode": lambda: pipelined(model, photos, draft=False),
        "catdog, JPEG draft >= 2x input (default)": lambda: pipelined(model, photos, draft=True, oversample=2),
        "catdog, JPEG draft >= 1x input (rejected)": lambda: pipelined(model, photos, draft=True, oversample=1),
    }
    load_before = os.getloadavg()
    rates: dict[str, list[float]] = {name: [] for name in runs}
    last: dict[str, tuple[list[Prediction], str]] = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            rate, results, plan = run()
            rates[name].append(rate)
            last[name] = (results, plan)
    load_after = os.getloadavg()

    baseline = statistics.median(rates["naive loop (full decode, 1 thread)"])
    reference = last["naive loop (full decode, 1 thread)"][0]
    print(f"{len(photos)} photos from {args.data}, model {model.name}, {platform.machine()} with {cores} cores, "
          f"runtime {Classifier.load(model).runtime.name}; median of {args.repeats} runs per row, taking turns; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("| pipeline | threads | photos/s | vs naive | runs min-max | label agreement | mean abs score diff "
          "| max abs score diff |")
    print("|---|---|---|---|---|---|---|---|")
    for name in runs:
        results, plan = last[name]
        rate = statistics.median(rates[name])
        agree = np.mean([a.label == b.label for a, b in zip(reference, results)])
        diff = np.array([abs(a.scores[a.label] - b.scores[a.label]) for a, b in zip(reference, results)])
        print(f"| {name} | {plan} | {rate:.1f} | {rate / baseline:.2f}x | {min(rates[name]):.0f}-{max(rates[name]):.0f} "
              f"| {agree * 100:.2f}% | {diff.mean():.4f} | {diff.max():.4f} |")


if __name__ == "__main__":
    main()
