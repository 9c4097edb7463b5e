"""What test-time flip averaging (catdog-edge classify --flip) buys: accuracy and cost on labelled photos.

Each photo is decoded once; the same pixels go to the model alone, and to the model averaged with
its mirror image (two invokes: Classifier(flip=True)). Prints a Markdown table.

    .venv-edge/bin/python benchmarks/flip_tta.py [--data ../shared/datasets/catdog/val] [--model M]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from catdog.edge import Classifier
from catdog.trainer.data import scan_folder  # numpy and edge only: works in the edge-only environment

from _paths import DATA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA / "val",
                        help="class-per-folder labelled photos (folder names = the model's labels)")
    parser.add_argument("--model", type=Path, default=None, help=".tflite model (default: the bundled one)")
    args = parser.parse_args()

    plain = Classifier.load(args.model, threads=1)
    flipped = Classifier.load(plain.model_path, threads=1, flip=True)
    labels = plain.contract.labels
    found = scan_folder(args.data, class_names=labels)  # raises DataError for a missing or empty folder
    photos = list(zip(found.paths, found.labels))
    rows = {}
    pixels = [plain.preprocess(p) for p, _ in photos]
    truth = np.array([i for _, i in photos])
    for name, predict in (("one invoke (default)", plain.predict), ("--flip: photo + mirror image averaged", flipped.predict)):
        start = time.perf_counter()
        scores = [predict(x) for x in pixels]
        ms = (time.perf_counter() - start) * 1000.0 / len(pixels)
        predicted = np.array([plain.contract.decide(s) for s in scores])
        rows[name] = (float(np.mean(predicted == truth)), ms, predicted)

    base = rows["one invoke (default)"][2]
    print(f"{len(photos)} photos from {args.data}, model {plain.model_path}, {platform.machine()} "
          f"({os.cpu_count()} cores), Python {platform.python_version()}, {plain.runtime.name} "
          f"{plain.runtime.version}, 1 thread\n")
    print("| inference | accuracy | answers changed | model time per photo (ms) |")
    print("|---|---|---|---|")
    for name, (accuracy, ms, predicted) in rows.items():
        print(f"| {name} | {accuracy:.1%} | {int(np.sum(predicted != base))} | {ms:.2f} |")


if __name__ == "__main__":
    main()
