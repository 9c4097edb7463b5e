"""Which use of a user's own empty-scene photos (fit --none DIR) wins: a better threshold, a trained "none"
class, or both; against the threshold from training photos alone.

The user's photos are half of nothing/'s door-camera kinds (doorstep, front, street; every other photo in
name order); the other half and every other kind are held out with val/ to measure. On the frozen
EfficientNet-Lite0 features of the bundled model (float, as fit computes them), each way is scored by:
val/ accuracy with "none" counted as wrong, and the share of held-out empty photos answered "none"
(split into the door kinds the user photographed and the kinds they did not).

    .venv/bin/python benchmarks/none_calibration.py [--data DATA] [--nothing DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from catdog.trainer.data import PhotoSet, load_for, scan_folder
from catdog.edge.head import search_head
from catdog.trainer.keras_model import load_keras
from catdog.trainer.pretrained import imagenet_pth
from catdog.trainer.pth import read_state_dict
from catdog.trainer.presence import calibrate_with_none, combine, familiarity_part, imagenet_part, scores_of
from catdog.trainer.transfer import features

from _paths import ROOT, data_and_nothing, scene_kind

DOOR_KINDS = ("doorstep", "front", "street")


def main() -> None:
    args = data_and_nothing(__doc__.splitlines()[0])
    model, contract = load_keras(ROOT / "models" / "catdog.keras")
    train, val = scan_folder(args.data / "train"), scan_folder(args.data / "val")
    empty = sorted(args.nothing.glob("*.jpg"))
    door = [p for p in empty if scene_kind(p) in DOOR_KINDS]
    users, held_door = door[::2], door[1::2]
    held_other = [p for p in empty if scene_kind(p) not in DOOR_KINDS]

    def feats(photos: PhotoSet):
        return features(model, load_for(photos, contract))

    def unlabelled(paths):
        return feats(PhotoSet(tuple(paths), (0,) * len(paths), ("photos",)))

    f_train, f_val = feats(train), feats(val)
    y_train, y_val = np.array(train.labels), np.array(val.labels)
    f_users, f_door, f_other = unlabelled(users), unlabelled(held_door), unlabelled(held_other)
    state = read_state_dict(imagenet_pth())
    fit = combine((imagenet_part(f_train, state["_fc.weight"], state["_fc.bias"], contract.labels),
                   familiarity_part(f_train, y_train, 1337)), {"photos": len(y_train)})
    moved = calibrate_with_none(fit, scores_of(fit, f_users), "users")
    two = search_head(f_train, y_train, 2, seed=1337).head
    three = search_head(np.concatenate([f_train, f_users]), np.concatenate([y_train, np.full(len(f_users), 2)]), 3,
                        seed=1337).head

    def answers(f, way):
        """Chosen answer per photo: 0 cat, 1 dog, 2 none."""
        if way.startswith("none class"):
            chosen = three.predict(f)
        else:
            chosen = two.predict(f)
        if way != "none class":
            threshold_fit = moved if "--none threshold" in way else fit
            chosen = np.where(scores_of(threshold_fit, f) >= threshold_fit.presence.threshold, chosen, 2)
        return chosen

    ways = ("training threshold (no --none)", "--none threshold", "none class", "none class + --none threshold")
    print(f"{len(users)} of the user's empty photos ({', '.join(DOOR_KINDS)}); held out: {len(held_door)} of those "
          f"kinds, {len(held_other)} of others, {len(y_val)} val/ cats and dogs\n")
    print("| way | val/ right (none = wrong) | val/ answered none | held-out door kinds answered none | other kinds answered none |")
    print("|---|---|---|---|---|")
    for way in ways:
        v = answers(f_val, way)
        print(f"| {way} | {np.mean(v == y_val):.1%} | {np.mean(v == 2):.1%} | {np.mean(answers(f_door, way) == 2):.1%} | "
              f"{np.mean(answers(f_other, way) == 2):.1%} |")


if __name__ == "__main__":
    main()
