"""Photos per second: a naive one-at-a-time loop vs catdog's pipeline (decode threads + JPEG draft).

Also measures what draft decoding costs in answers: label agreement and score difference against
full decoding on the same photos (draft is kept on by default only while agreement >= 99.5%).

    .venv/bin/python benchmarks/edge_throughput.py [--data ../shared/datasets/catdog/val] [--model M]
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

import catdog.edge.preprocess

from catdog.edge import Classifier, Prediction
from catdog.edge.inputs import expand_inputs
from _paths import DATA


def naive(model: Path, photos: tuple[Path, ...]) -> tuple[float, list[Prediction]]:
    """What a first script does: decode each photo fully, then invoke, one after another."""
    classifier = Classifier.load(model, draft=False)
    start = time.perf_counter()
    results = [classifier.classify(p) for p in photos]
    return len(photos) / (time.perf_counter() - start), results


def pipelined(
    model: Path, photos: tuple[Path, ...], workers: int, draft: bool, oversample: int = 2
) -> tuple[float, list[Prediction]]:
    catdog.edge.preprocess.DRAFT_OVERSAMPLE = oversample
    classifier = Classifier.load(model, draft=draft)
    start = time.perf_counter()
    results = list(classifier.classify_many(photos, workers=workers))
    return len(photos) / (time.perf_counter() - start), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA / "val")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs per row")
    args = parser.parse_args()
    photos = expand_inputs([args.data], recursive=True).photos
    model = args.model or Classifier.load().model_path
    cores = os.cpu_count() or 1

    rows = []
    baseline = None
    reference = None
    for name, run in (
        ("naive loop (full decode, 1 thread)", lambda: naive(model, photos)),
        (f"catdog, {cores} decode threads, full decode", lambda: pipelined(model, photos, cores, draft=False)),
        (f"catdog, {cores} decode threads, JPEG draft >= 2x input (default)",
         lambda: pipelined(model, photos, cores, draft=True, oversample=2)),
        (f"catdog, {cores} decode threads, JPEG draft >= 1x input (rejected)",
         lambda: pipelined(model, photos, cores, draft=True, oversample=1)),
    ):
        best = 0.0
        for _ in range(args.repeats):
            rate, results = run()
            best = max(best, rate)
        if baseline is None:
            baseline, reference = best, results
        agree = np.mean([a.label == b.label for a, b in zip(reference, results)])
        diff = np.array([abs(a.scores[a.label] - b.scores[a.label]) for a, b in zip(reference, results)])
        rows.append((name, best, best / baseline, agree, diff.mean(), diff.max()))

    print(f"{len(photos)} photos from {args.data}, model {model}, {platform.machine()} with {cores} cores, "
          f"runtime {Classifier.load(model).runtime.name}")
    print("| pipeline | photos/s | vs naive | label agreement | mean abs score diff | max abs score diff |")
    print("|---|---|---|---|---|---|")
    for name, rate, ratio, agree, mean_d, max_d in rows:
        print(f"| {name} | {rate:.1f} | {ratio:.2f}x | {agree * 100:.2f}% | {mean_d:.4f} | {max_d:.4f} |")


if __name__ == "__main__":
    main()
