"""The familiarity presence score on a model of a user's own classes (not ImageNet's): a 5-class model.

Five classes from the photos at hand: cat and dog (120 training photos each from DATA/train), and three
kinds of scene from nothing/ (room, house front, street: every other photo of each kind to train, the
rest held out). The head and the familiarity score are fitted as catdog-train fit fits them (edge.head,
trainer.presence; features of the bundled model's frozen backbone, float), the threshold from
out-of-fold training scores only. Measured: accuracy on the held-out photos of the five classes with and
without "none", the share of them answered "none", and the share of photos of none of the classes
answered "none": nothing/'s objects (groceries) and doorsteps (porches seen from a door camera, which
look like house fronts).

    .venv/bin/python benchmarks/none_classes.py [--data DATA] [--nothing DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from catdog.trainer.data import PhotoSet, load_for, scan_folder, per_class_sample
from catdog.edge.head import search_head
from catdog.trainer.keras_model import load_keras
from catdog.trainer.presence import combine, familiarity_part, scores_of
from catdog.trainer.transfer import features

from _paths import ROOT, data_and_nothing, scene_kind

SCENES = {"indoor": "room", "front": "house front", "street": "street"}
OTHERS = ("objects", "doorstep")


def main() -> None:
    args = data_and_nothing(__doc__.splitlines()[0])
    model, contract = load_keras(ROOT / "models" / "catdog.keras")
    empty = sorted(args.nothing.glob("*.jpg"))
    pets = per_class_sample(scan_folder(args.data / "train"), 120, 1337)
    val = scan_folder(args.data / "val")
    train_paths, train_labels, held_paths, held_labels = list(pets.paths), list(pets.labels), list(val.paths), list(val.labels)
    for index, kind in enumerate(SCENES, start=2):
        members = [p for p in empty if scene_kind(p) == kind]
        train_paths += members[::2]
        train_labels += [index] * len(members[::2])
        held_paths += members[1::2]
        held_labels += [index] * len(members[1::2])
    others = [p for p in empty if scene_kind(p) in OTHERS]
    names = ("cat", "dog", *SCENES.values())

    def feats(paths, labels):
        return features(model, load_for(PhotoSet(tuple(paths), tuple(labels), names), contract))

    f_train, f_held = feats(train_paths, train_labels), feats(held_paths, held_labels)
    f_others = feats(others, [0] * len(others))
    y_train, y_held = np.array(train_labels), np.array(held_labels)
    head = search_head(f_train, y_train, len(names), seed=1337).head
    fit = combine((familiarity_part(f_train, y_train, 1337),), {"photos": len(y_train)})
    chosen = head.predict(f_held)
    present = scores_of(fit, f_held) >= fit.presence.threshold
    forced = float(np.mean(chosen == y_held))
    with_none = float(np.mean((chosen == y_held) & present))
    print(f"5 classes {names}: {len(y_train)} training photos ({np.bincount(y_train).tolist()}), "
          f"{len(y_held)} held out ({np.bincount(y_held).tolist()}); familiarity score, "
          f"{fit.parts[0].kernel.shape[1]} centroids, threshold from out-of-fold training scores\n")
    print("| photos | count | answered none | right |")
    print("|---|---|---|---|")
    print(f"| held-out photos of the 5 classes | {len(y_held)} | {np.mean(~present):.1%} | {with_none:.1%} "
          f"(none = wrong; {forced:.1%} without none, a change of {100 * (with_none - forced):+.1f} points) |")
    for kind in OTHERS:
        rows = [i for i, p in enumerate(others) if scene_kind(p) == kind]
        rejected = np.mean(scores_of(fit, f_others[rows]) < fit.presence.threshold)
        print(f"| {kind} (none of the classes) | {len(rows)} | {rejected:.1%} | |")


if __name__ == "__main__":
    main()
