"""Photos per second: a naive one-at-a-time loop vs catdog's pipeline (threads chosen from the model's cost, JPEG draft).

Also measures what draft decoding costs in answers: label agreement and score difference against
full decoding on the same photos (draft is kept on by default only while agreement >= 99.5%), and
what the choice of threads buys: the same pipeline held to one interpreter (as before issue 28),
and one interpreter running on every core instead of copies of it.

The rows take turns, run by run (naive, catdog, ..., naive, catdog, ...), so a machine that slows
down or speeds up during the measurement moves them alike. On a shared machine each run also
measures how much CPU other processes took meanwhile (from /proc/stat, less this process's own);
each row shows the median of its quiet runs (others below QUIET cores), and of all runs when none
was quiet. The load average before and after is printed: measure on a quiet machine.

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

#: A run is quiet when other processes used less than this many cores on average while it ran.
QUIET = 0.1


def busy_seconds() -> float:
    """CPU seconds all processes of the machine have spent busy since boot (Linux /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed(run: Run) -> tuple[float, list[Prediction], str, float]:
    """run(), plus the cores other processes kept busy meanwhile on average."""
    busy, own, start = busy_seconds(), os.times(), time.perf_counter()
    rate, results, plan = run()
    wall, after = time.perf_counter() - start, os.times()
    own_cpu = after.user + after.system - own.user - own.system
    return rate, results, plan, max(0.0, (busy_seconds() - busy - own_cpu) / wall)


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
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}  # (photos/s, others' cores) per run
    last: dict[str, tuple[list[Prediction], str]] = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            rate, results, plan, others = timed(run)
            rates[name].append((rate, others))
            last[name] = (results, plan)
    load_after = os.getloadavg()

    def typical(name: str) -> tuple[float, int]:
        quiet = [rate for rate, others in rates[name] if others < QUIET]
        return statistics.median(quiet or [rate for rate, _ in rates[name]]), len(quiet)

    baseline = typical("naive loop (full decode, 1 thread)")[0]
    reference = last["naive loop (full decode, 1 thread)"][0]
    print(f"{len(photos)} photos from {args.data}, model {model.name}, {platform.machine()} with {cores} cores, "
          f"runtime {Classifier.load(model).runtime.name}; {args.repeats} runs per row, taking turns; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("| pipeline | threads | photos/s | vs naive | quiet runs | all runs min-max | label agreement "
          "| mean abs score diff | max abs score diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in runs:
        results, plan = last[name]
        rate, quiet = typical(name)
        all_rates = [r for r, _ in rates[name]]
        agree = np.mean([a.label == b.label for a, b in zip(reference, results)])
        # the reference's top class score ("none" is a label without a score of its own)
        diff = np.array([abs(a.scores[top] - b.scores[top]) for a, b in zip(reference, results)
                         for top in [max(a.scores, key=a.scores.get)]])
        print(f"| {name} | {plan} | {rate:.1f} | {rate / baseline:.2f}x | {quiet} of {len(all_rates)} "
              f"| {min(all_rates):.0f}-{max(all_rates):.0f} | {agree * 100:.2f}% | {diff.mean():.4f} | {diff.max():.4f} |")
    print(f"\n(photos/s: the median of the quiet runs, in which other processes used < {QUIET} core on average; "
          "of all runs when a row had none)")


if __name__ == "__main__":
    main()
