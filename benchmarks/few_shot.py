"""Few photos per class: a compact CNN trained from scratch against pretrained EfficientNet-Lite0 features.

The task is built only from the data set's photos, in a temporary folder: cat/, dog/ and mono/, where
mono/ holds other cat and dog photos turned grayscale (then back to 3-channel RGB), so the rule "a
photo without colour is mono, whatever animal it shows" is visible and learnable. Training photos are
drawn from DATA/train, the held-out evaluation photos (--eval-per-class of each class) from DATA/val;
a mono photo is never one of the photos in cat/ or dog/. Every photo, coloured or not, is decoded
upright and re-encoded as JPEG at the same quality, so colour is the only thing that sets mono apart
(not JPEG generation). The smaller training sets are subsets of the larger ones. --task cat-dog leaves
mono out (the plain two-class task, for reference).

Per training-set size and model: catdog.trainer.train.fit (the evaluation photos as its validation
set, only measured: --arch compact keeps the last epoch, Lite0's head is chosen by cross-validation on
the training photos), int8 export (calibrated on the training photos), then catdog.trainer.evaluate on
the evaluation photos for the .keras and the int8 .tflite. Everything goes to a temporary folder,
removed at the end. Prints a Markdown table.

    .venv/bin/python benchmarks/few_shot.py [--task cat-dog-mono] [--per-class 25 100] [--epochs 40]   (DATA: benchmarks/_paths.py)
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from _paths import DATA
from transfer_sizes import SEED, fit_and_export, machine_line

MONO = "mono"
TASKS = ("cat-dog-mono", "cat-dog")
#: JPEG quality every photo of the derived sets is written at.
QUALITY = 90


def build_photo_set(source: Path, dst: Path, per_class: int, mono: bool, seed: int) -> Path:
    """Write dst/<label>/ with per_class photos of each label in source, plus dst/mono/ when asked.

    Each label's photos are shuffled with the seed: the coloured ones are taken from the front, the
    mono ones (per_class in all, shared out among the labels) from the back, so they never overlap
    and a smaller per_class gives a subset of a larger one.

    Returns:
        dst.
    """
    from catdog.edge.preprocess import open_image, to_color

    labels = sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    for index, label in enumerate(labels):
        pool = sorted((source / label).glob("*.jpg"))
        random.Random(f"{seed}:{label}").shuffle(pool)
        n_mono = (per_class + len(labels) - 1 - index) // len(labels) if mono else 0  # adds up to per_class
        if per_class + n_mono > len(pool):
            raise SystemExit(f"error: {source / label} has {len(pool)} photos; {per_class + n_mono} are needed")
        chosen = [(path, label, False) for path in pool[:per_class]]
        chosen += [(path, MONO, True) for path in pool[::-1][:n_mono]]
        for path, folder, grey in chosen:
            img = to_color(open_image(path), "RGB")
            if grey:
                img = img.convert("L").convert("RGB")
            (dst / folder).mkdir(parents=True, exist_ok=True)
            img.save(dst / folder / path.name, quality=QUALITY)
    return dst


def rows_for(train_dir: Path, eval_dir: Path, per_class: int, out_dir: Path, epochs: int) -> list[dict]:
    """Fit, export and evaluate the compact CNN (from scratch) and Lite0 (pretrained) on one training set."""
    from catdog.trainer.config import Arch, EvaluateConfig, FitConfig, Keep
    from catdog.trainer.evaluate import evaluate

    rows = []
    for arch in (Arch.compact, Arch.efficientnet_lite0):
        config = FitConfig(
            data_dir=train_dir, val_dir=eval_dir, seed=SEED, out=out_dir / f"{arch.value}-{per_class}.keras",
            arch=arch, epochs=epochs, keep=Keep.last,
        )
        done = fit_and_export(config)
        keras, int8 = (evaluate(EvaluateConfig(model_path=p, data_dir=eval_dir)) for p in (done.keras_path, done.tflite_path))
        recipe = (f"{config.image_hw[0]} px, {epochs} epochs, last kept" if not arch.pretrained
                  else f"{config.image_hw[0]} px, ImageNet, frozen + head")
        rows.append({
            "per_class": per_class, "model": f"{arch.value} ({recipe})", "keras": keras.accuracy, "int8": int8.accuracy,
            "photos": keras.photos, "fit_s": done.fit_seconds,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the data set: DATA/train/<label>/, DATA/val/<label>/")
    parser.add_argument("--task", choices=TASKS, default=TASKS[0], help="with or without the mono class")
    parser.add_argument("--per-class", type=int, nargs="+", default=(25, 100), help="training photos per class")
    parser.add_argument("--eval-per-class", type=int, default=100, help="held-out evaluation photos per class")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of the compact CNN")
    args = parser.parse_args()

    mono = args.task == "cat-dog-mono"
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="catdog-few-shot-") as tmp:
        tmp = Path(tmp)
        eval_dir = build_photo_set(args.data / "val", tmp / "eval", args.eval_per_class, mono, SEED)
        rows = []
        for per_class in args.per_class:
            train_dir = build_photo_set(args.data / "train", tmp / f"train-{per_class}", per_class, mono, SEED)
            rows += rows_for(train_dir, eval_dir, per_class, tmp / "models", args.epochs)
    minutes = (time.perf_counter() - start) / 60

    classes = 3 if mono else 2
    print(f"Task {args.task} ({classes} classes) from {args.data}: training photos from train/, {rows[0]['photos']} "
          f"held-out evaluation photos from val/; seed {SEED} ({machine_line()}; whole run {minutes:.1f} min)\n")
    print("| task | photos per class | model | Keras accuracy | int8 accuracy | fit time (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {args.task} | {r['per_class']} | {r['model']} | {r['keras']:.1%} | {r['int8']:.1%} | {r['fit_s']:.0f} |")


if __name__ == "__main__":
    main()
