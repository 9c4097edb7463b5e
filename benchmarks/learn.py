"""catdog-edge learn against catdog-train fit --arch efficientnet-lite0 on the same photos: time and held-out int8 accuracy.

Five classes built from the data sets only, in a temporary folder: cat/ and dog/; mono/ (other cat and dog
photos turned grayscale, then back to RGB); upside/ (other cat and dog photos turned upside down); scene/
(photos of empty scenes, DATA/../nothing/photos). --per-class training photos each (120: 600 photos) from
DATA/train (scene: the first part of nothing/), --eval-per-class held-out photos each from DATA/val (scene:
the last part of nothing/); every photo re-encoded as JPEG at the same quality.

Then, on the same training photos:
- catdog-edge learn (edge.learn, numpy only) on the bundled default model's int8 features: the whole run
  timed (features included), the model it writes evaluated on the held-out photos;
- catdog-train fit --arch efficientnet-lite0 (the held-out photos as its validation set, only measured),
  int8 export, evaluated on the same held-out photos.

Prints a Markdown table and the multiply-adds of feature extraction (the base model's), from which a Pi's
feature time can be estimated (docs/edge.md).

    .venv/bin/python benchmarks/learn.py [--per-class 120] [--eval-per-class 60]   (DATA: benchmarks/_paths.py)
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from _paths import DATA, NOTHING, ROOT

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as catdog-edge learn does (edge/cli.py), before numpy loads

QUALITY = 90
SEED = 1337


def build(dst: Path, split: str, per_class: int, scene: list[Path]) -> Path:
    """dst/{cat,dog,mono,upside,scene}/ with per_class photos each (disjoint within the split)."""
    from PIL import Image

    from catdog.edge.preprocess import open_image, to_color

    pools = {}
    for label in ("cat", "dog"):
        pool = sorted((DATA / split / label).glob("*.jpg"))
        if len(pool) < 2 * per_class + 1:
            raise SystemExit(f"error: {DATA / split / label} has {len(pool)} photos; set CATDOG_DATA to the data set")
        random.Random(f"{SEED}:{label}").shuffle(pool)
        pools[label] = pool
    half = per_class // 2
    chosen = [(p, label, None) for label in ("cat", "dog") for p in pools[label][:per_class]]
    for kind, start in (("mono", per_class), ("upside", per_class + half + 1)):
        for label in ("cat", "dog"):
            count = half if label == "cat" else per_class - half
            chosen += [(p, kind, kind) for p in pools[label][start : start + count]]
    chosen += [(p, "scene", None) for p in scene[:per_class]]
    for path, folder, change in chosen:
        img = to_color(open_image(path), "RGB")
        if change == "mono":
            img = img.convert("L").convert("RGB")
        elif change == "upside":
            img = img.transpose(Image.Transpose.ROTATE_180)
        (dst / folder).mkdir(parents=True, exist_ok=True)
        img.save(dst / folder / f"{path.parent.name}-{path.name}", quality=QUALITY)
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=120, help="training photos per class")
    parser.add_argument("--eval-per-class", type=int, default=60, help="held-out photos per class")
    parser.add_argument("--skip-fit", action="store_true", help="only catdog-edge learn (no TensorFlow)")
    args = parser.parse_args()

    from catdog.edge.contract import contract_for_model
    from catdog.edge.learn import LearnConfig, learn

    base = ROOT / "models" / "catdog.tflite"
    scene = sorted(NOTHING.glob("*.jpg"))
    if len(scene) < args.per_class + args.eval_per_class:
        raise SystemExit(f"error: {NOTHING} has {len(scene)} photos; set CATDOG_NOTHING to the empty-scene photos")
    random.Random(SEED).shuffle(scene)
    with tempfile.TemporaryDirectory(prefix="catdog-learn-") as tmp:
        tmp = Path(tmp)
        train = build(tmp / "data" / "train", "train", args.per_class, scene[: args.per_class])
        held = build(tmp / "data" / "val", "val", args.eval_per_class, scene[::-1][: args.eval_per_class])
        start = time.perf_counter()
        result = learn(LearnConfig(data_dir=train, out_path=tmp / "learned.tflite", model=base, seed=SEED))
        learn_seconds = time.perf_counter() - start
        rows = [("catdog-edge learn (numpy, on the int8 base's features)", learn_seconds, result.out_path,
                 f"L2 {result.l2:g}, CV {result.cv_accuracy[result.l2]:.3f}; features {result.features_seconds:.0f} s, "
                 f"fit {result.fit_seconds:.0f} s")]
        if not args.skip_fit:
            from transfer_sizes import fit_and_export

            from catdog.trainer.config import Arch, FitConfig

            config = FitConfig(data_dir=train, val_dir=held, seed=SEED, out=tmp / "fit" / "lite0.keras",
                               arch=Arch.efficientnet_lite0)
            start = time.perf_counter()
            done = fit_and_export(config)
            training = contract_for_model(done.tflite_path).training
            l2 = training["head_l2"]
            rows.append(("catdog-train fit --arch efficientnet-lite0, export int8 (TensorFlow)",
                         time.perf_counter() - start, done.tflite_path,
                         f"L2 {l2:g}, CV {training['head_cv_accuracy'][f'{l2:g}']:.3f}; fit {done.fit_seconds:.0f} s"))
        accuracies = [_accuracy(path, held) for _, _, path, _ in rows]
    macs = contract_for_model(base).training.get("multiply_adds")
    print(f"5 classes (cat, dog, mono, upside, scene): {args.per_class} training photos each "
          f"({5 * args.per_class}), {args.eval_per_class} held-out each; base {base.name}\n")
    print("| how | seconds | held-out int8 accuracy | notes |\n|---|---|---|---|")
    for (how, seconds, _, notes), accuracy in zip(rows, accuracies):
        print(f"| {how} | {seconds:.0f} | {accuracy:.1%} | {notes} |")
    if macs:
        print(f"\nfeature extraction: {macs / 1e6:.0f} M multiply-adds per photo (the base model's), "
              f"{5 * args.per_class * macs / 1e9:.0f} G for the {5 * args.per_class} photos")


def _accuracy(model: Path, folder: Path) -> float:
    """Fraction of the held-out photos whose top label (presence off) is their folder's."""
    from catdog.edge.classify import Classifier

    classifier = Classifier.load(model, presence=False)
    right = total = 0
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(sub.iterdir()):
            right += classifier.classify(path).label == sub.name
            total += 1
    return right / total


if __name__ == "__main__":
    main()
