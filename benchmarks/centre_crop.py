"""What the contract's centre crop does to accuracy: each model fed several centre crops of labelled photos.

fit records crop 0.83, the mean side of its random training crops (README, "Centre crop"); this
script measures what feeding other fractions of each side would have given. Every photo is decoded
once with edge.preprocess (open_image, to_color) and resized per crop with edge.preprocess.resize,
the edge's own code. Keras (.keras, contract beside it) and TFLite (.tflite) models both work.
Prints a Markdown table of accuracy per model and crop.

    .venv/bin/python benchmarks/centre_crop.py [--data DATA/val] [--models M ...]   (DATA: benchmarks/_paths.py)
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path
from typing import Callable

import numpy as np

from catdog.edge.classify import Classifier
from catdog.edge.contract import ModelContract
from catdog.edge.preprocess import open_image, resize, to_color
from catdog.trainer.data import scan_folder
from catdog.trainer.parity import tflite_scores

from _paths import DATA, ROOT

CROPS = (1.0, 0.95, 0.9, 0.83, 0.8, 0.75)


def scorer(path: Path) -> tuple[ModelContract, Callable[[np.ndarray], np.ndarray]]:
    """The contract of a .keras or .tflite model, and a function from a batch of its pixels to scores."""
    if path.suffix == ".keras":
        from catdog.trainer.keras_model import keras_scores, load_keras

        model, contract = load_keras(path)
        return contract, lambda x: keras_scores(model, x, contract)
    classifier = Classifier.load(path)
    return classifier.contract, lambda x: tflite_scores(classifier, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA / "val",
                        help="class-per-folder labelled photos (folder names = the models' labels)")
    parser.add_argument("--models", type=Path, nargs="+",
                        default=[ROOT / "models/catdog.keras", ROOT / "models/catdog.tflite"])
    parser.add_argument("--crops", type=float, nargs="+", default=CROPS, help="fractions of each side")
    args = parser.parse_args()

    models = [(path, *scorer(path)) for path in args.models]
    contract = models[0][1]
    found = scan_folder(args.data, class_names=contract.labels)  # raises DataError for a missing or empty folder
    photos = [to_color(open_image(p), contract.color) for p in found.paths]
    truth = np.asarray(found.labels)

    print(f"{len(photos)} photos from {args.data}, {platform.machine()} ({os.cpu_count()} cores), "
          f"Python {platform.python_version()}\n")
    print("| model | contract crop | " + " | ".join(f"fed {c:g}" for c in args.crops) + " |")
    print("|---|---|" + "---|" * len(args.crops))
    for path, c, score in models:
        accuracies = []
        for crop in args.crops:
            pixels = np.stack([np.asarray(resize(img, c.input_hw, c.resize, crop)) for img in photos])
            predicted = np.array([c.decide(s) for s in score(pixels.reshape(len(photos), *c.input_shape))])
            accuracies.append(float(np.mean(predicted == truth)))
        print(f"| {path.name} | {c.crop:g} | " + " | ".join(f"{a:.1%}" for a in accuracies) + " |")


if __name__ == "__main__":
    main()
