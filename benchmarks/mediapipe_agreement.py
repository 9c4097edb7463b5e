"""MediaPipe Tasks' ImageClassifier against catdog-edge on labelled photos: class names, top-1 agreement, scores.

For each model: MediaPipe classifies the photo files itself (its own decoding and resizing; a centre
crop below 1 passed as its region of interest) and catdog's prepared pixels; catdog-edge classifies
the photos. Prints a Markdown table. MediaPipe runs in its own environment (make test-mediapipe makes it).

    .venv/bin/python benchmarks/mediapipe_agreement.py [--mediapipe .venv-mediapipe] [--data DATA/val] [--model M ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from catdog.edge import Classifier
from catdog.edge.models import bundled_models
from catdog.trainer.data import scan_folder

from _paths import DATA

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.mediapipe.conftest import MediaPipe  # noqa: E402  (the tests' driver of MediaPipe, run the same way)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mediapipe", type=Path, default=Path(".venv-mediapipe"), help="MediaPipe's environment")
    parser.add_argument("--data", type=Path, default=DATA / "val", help="class-per-folder labelled photos")
    parser.add_argument("--model", type=Path, action="append", help=".tflite model (default: every bundled one)")
    args = parser.parse_args()
    mediapipe = MediaPipe(args.mediapipe / "bin" / "python")
    print("| model | photos | MediaPipe names the classes | top-1 agreement on photo files | max abs score diff on catdog's pixels |")
    print("|---|---|---|---|---|")
    for model in args.model or list(bundled_models().values()):
        classifier = Classifier.load(model)
        found = scan_folder(args.data, class_names=classifier.contract.labels)
        photos = list(found.paths)
        with tempfile.TemporaryDirectory() as tmp:
            on_files = mediapipe.classify(model, Path(tmp), photos=photos, crop=classifier.contract.crop)
            pixels = np.stack([classifier.preprocess(p) for p in photos])
            on_pixels = mediapipe.classify(model, Path(tmp), pixels=pixels)
        names = all([c["name"] for c in r] == list(classifier.contract.labels) for r in on_files["results"])
        theirs = [max(r, key=lambda c: c["score"])["name"] for r in on_files["results"]]
        ours = [p.label for p in classifier.classify_many(photos)]
        agreement = np.mean([a == b for a, b in zip(ours, theirs, strict=True)])
        diff = max(float(np.max(np.abs(np.array([c["score"] for c in r]) - classifier.predict(image))))
                   for r, image in zip(on_pixels["results"], pixels, strict=True))
        crop = "" if classifier.contract.crop == 1.0 else f" (crop {classifier.contract.crop:g} as region of interest)"
        print(f"| {model.name}{crop} | {len(photos)} | {'yes' if names else 'no'} | {agreement:.3f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
