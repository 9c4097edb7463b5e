"""What the answer "none" does on real photos: the targets of the presence score (docs/model.md).

For a .tflite model with a presence score (default: the bundled one), on labelled cat/dog photos and on
photos with nothing in them, each decoded once:

- accuracy with "none" counted as wrong, the share answered "none", and the forced-choice accuracy of old;
- the share of empty photos answered "cat" or "dog" (target: at most 3%), per kind of scene (the file
  name's prefix, SOURCE-KIND_...);
- the invoke time with the presence output read and without (the same model: the score costs its layers,
  whatever is read) against the model exported without the score when --without is given;
- a camera run over a folder of frames: 60 scenes a door camera sees (the doorstep, front and street
  kinds, evenly spread over them), half a second each (5 frames at 10 fps), with one cat visit and one dog
  visit (the first photo of each in --data, 2 seconds each), and the events it gives (target: only that cat
  and that dog).

    .venv/bin/python benchmarks/none_there.py [--model M] [--data VAL] [--nothing DIR] [--without M0]

The photos under --nothing are never used to choose anything: the thresholds come from training photos.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from catdog.edge import Classifier
from catdog.edge.camera.frames import SourceConfig
from catdog.edge.camera.loop import LabelEvent, WatchConfig, watch
from catdog.edge.camera.streams import open_stream
from catdog.trainer.data import scan_folder

from _paths import DATA, NOTHING, scene_kind

FPS = 10
FRAMES_PER_SCENE = 5  # half a second at 10 fps
VISIT_FRAMES = 20  # two seconds of each animal
#: What a door camera sees, of the kinds in nothing/'s names: its video has these scenes.
DOOR_KINDS = ("doorstep", "front", "street")


def _invoke_ms(classifier: Classifier, pixels: list[np.ndarray], runs: int = 3) -> float:
    best = []
    for _ in range(runs):
        start = time.perf_counter()
        for x in pixels:
            classifier.outputs(x)
        best.append((time.perf_counter() - start) * 1000.0 / len(pixels))
    return min(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help=".tflite model with a presence score (default: bundled)")
    parser.add_argument("--data", type=Path, default=DATA / "val", help="labelled cat/dog photos, DATA/<label>/")
    parser.add_argument("--nothing", type=Path, default=NOTHING, help="photos with none of the labels in them")
    parser.add_argument("--without", type=Path, default=None, help="the same model exported without the score, to time")
    args = parser.parse_args()

    model = Classifier.load(args.model, threads=1)
    forced = Classifier.load(model.model_path, threads=1, presence=False)
    if model.presence is None:
        raise SystemExit(f"{model.model_path} has no presence score")
    labels = model.contract.labels
    found = scan_folder(args.data, class_names=labels)
    truth = np.array(found.labels)
    pixels = [model.preprocess(p) for p in found.paths]
    answers = [model.answer(None, model.outputs(x), 0.0) for x in pixels]
    chosen = np.array([a.index for a in answers])
    none = chosen == len(labels)
    forced_right = np.array([forced.contract.decide(np.array([a.scores[l] for l in labels])) for a in answers]) == truth
    empty = sorted(args.nothing.glob("*.jpg"))
    empty_answers = [model.classify(p) for p in empty]
    kinds = collections.defaultdict(list)
    for path, a in zip(empty, empty_answers):
        kinds[scene_kind(path)].append(a.label != "none")

    print(f"model {model.model_path} ({model.model_path.stat().st_size / 1e6:.2f} MB), presence "
          f"{model.presence.method} >= {model.presence_threshold:g}; {platform.machine()} ({os.cpu_count()} cores), "
          f"{model.runtime.name} {model.runtime.version}, 1 thread\n")
    print("| photos | count | answered none | right (none = wrong) | right, forced choice (--no-presence) |")
    print("|---|---|---|---|---|")
    print(f"| cats and dogs, {args.data.name}/ | {len(truth)} | {none.mean():.1%} | {np.mean(chosen == truth):.1%} | "
          f"{forced_right.mean():.1%} |")
    wrongly = np.mean([a.label != "none" for a in empty_answers])
    print(f"| nothing there, {args.nothing.parent.name}/ | {len(empty)} | {1 - wrongly:.1%} | "
          f"{1 - wrongly:.1%} (answered cat or dog: {wrongly:.1%}) | 0.0% |")
    print("\n| kind of empty scene | photos | answered cat or dog |\n|---|---|---|")
    for kind, said in sorted(kinds.items()):
        print(f"| {kind} | {len(said)} | {np.mean(said):.1%} ({sum(said)}) |")

    sample = pixels[:200]
    rows = [("with the presence score read", _invoke_ms(model, sample)), ("class scores only", _invoke_ms(forced, sample))]
    if args.without is not None:
        rows.append((f"model without the score ({args.without.name})", _invoke_ms(Classifier.load(args.without, threads=1), sample)))
    print("\n| invoke, 1 thread | ms per photo (best of 3 over 200 photos) |\n|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} |")

    cat = next(p for p, i in zip(found.paths, found.labels) if labels[i] == "cat")
    dog = next(p for p, i in zip(found.paths, found.labels) if labels[i] == "dog")
    door = [p for p in empty if scene_kind(p) in DOOR_KINDS]
    scenes = door[:: max(1, len(door) // 60)][:60]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frames = [p for scene in scenes[:20] for p in [scene] * FRAMES_PER_SCENE]
        frames += [cat] * VISIT_FRAMES + [p for scene in scenes[20:40] for p in [scene] * FRAMES_PER_SCENE]
        frames += [dog] * VISIT_FRAMES + [p for scene in scenes[40:] for p in [scene] * FRAMES_PER_SCENE]
        for i, path in enumerate(frames):
            with Image.open(path) as img:
                img.convert("RGB").resize((320, 240)).save(folder / f"frame{i:05d}.jpg", quality=92)
        events: list = []
        watch(model, open_stream(SourceConfig(str(folder), fps=FPS)), WatchConfig(), events.append)
    said = [(e.frame, e.label) for e in events if isinstance(e, LabelEvent) and e.event == "label"]
    animals = [label for _, label in said if label != "none"]
    print(f"\ncamera: {len(scenes)} empty door-camera scenes ({', '.join(DOOR_KINDS)}) x {FRAMES_PER_SCENE} frames at {FPS} fps, "
          f"{cat.name} visiting at frame "
          f"{20 * FRAMES_PER_SCENE} and {dog.name} at frame {40 * FRAMES_PER_SCENE + VISIT_FRAMES} "
          f"({VISIT_FRAMES} frames each), --smooth 5: events {said}; animal events {animals}")


if __name__ == "__main__":
    main()
