"""Classify with MediaPipe Tasks' ImageClassifier and print its answers as JSON (run in the MediaPipe environment).

    python driver.py MODEL --photos LIST   one photo path a line, decoded by MediaPipe itself
    python driver.py MODEL --pixels NPY    uint8 (N, height, width, 3) arrays: catdog's prepared pixels
    --roi LEFT TOP RIGHT BOTTOM            region of interest, fractions of each side (a centre crop)

Prints {"head_name": ..., "results": [[{"index", "score", "name"}, ...] per image, in index order]}.
Only mediapipe and numpy are imported: this runs beside catdog, not inside its environment.
"""

import argparse
import json

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision
from mediapipe.tasks.python.components.containers.rect import RectF
from mediapipe.tasks.python.vision.core.image_processing_options import ImageProcessingOptions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--photos")
    source.add_argument("--pixels")
    parser.add_argument("--roi", type=float, nargs=4)
    args = parser.parse_args()
    if args.photos:
        with open(args.photos, encoding="utf-8") as file:
            paths = [line.rstrip("\n") for line in file if line.strip()]
        images = (mp.Image.create_from_file(path) for path in paths)
    else:
        images = (mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(p)) for p in np.load(args.pixels))
    roi = None
    if args.roi:
        left, top, right, bottom = args.roi
        roi = ImageProcessingOptions(region_of_interest=RectF(left=left, top=top, right=right, bottom=bottom))
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=args.model), max_results=-1)
    results, head_name = [], None
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for image in images:
            classification = classifier.classify(image, roi).classifications[0]
            head_name = classification.head_name
            categories = sorted(classification.categories, key=lambda c: c.index)
            results.append([{"index": c.index, "score": c.score, "name": c.category_name} for c in categories])
    print(json.dumps({"head_name": head_name, "results": results}))


if __name__ == "__main__":
    main()
