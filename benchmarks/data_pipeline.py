"""fit's input pipeline at scale: the disk photo cache and two workers over loopback.

Generates a synthetic class-per-folder tree of --photos JPEGs (160x120 px gradients and noise; under
--workdir, a temporary folder by default, deleted afterwards, never in the repository), then measures:
- building the cache of the training photos at the compact model's source size (128x128) and its size,
  and opening it again (a hit reads the file once to check it);
- steady-state training steps per second of the compact model (96x96, batch 32, augmentation on),
  photos read from memory (--no-cache) and from the cache;
- peak RSS of a fresh process that trains 20 steps after reading every photo once through the training
  pipeline, at 2,000 and at --photos photos, from the cache and from memory;
- steps per second of `fit --distribute multi-worker` with two workers on 127.0.0.1 against one process;
- peak RSS of a fresh process that computes the pretrained fit's EfficientNet-Lite0 features (224x224) of
  500 and 2,000 real training photos ($CATDOG_DATA/train): as fit did before issue 30 (every photo decoded
  into memory, then the whole set copied to float32) and as it does now (from the photo cache, a batch at
  a time). --only features runs this part alone.

    .venv/bin/python benchmarks/data_pipeline.py [--photos 20000] [--workdir DIR] [--only features]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from _paths import DATA

SMALL = 2000
SOURCE_HW = (128, 128)
#: The pretrained model's input size, and the real photo counts its feature memory is measured at.
FEATURES_HW = (224, 224)
FEATURE_COUNTS = (500, 2000)


def _write_photos(args: tuple[Path, int, int]) -> None:
    from PIL import Image

    folder, start, count = args
    rng = np.random.default_rng(start)
    for i in range(start, start + count):
        label = "cat" if i % 2 == 0 else "dog"
        y, x = np.mgrid[0:120, 0:160]
        base = (x * rng.uniform(0.5, 1.5) + y * rng.uniform(0.5, 1.5))[..., None] * rng.uniform(0.3, 1.0, 3)
        pixels = np.clip(base + rng.normal(0, 25, (120, 160, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / label / f"{label}.{i:06d}.jpg", quality=85)


def make_tree(folder: Path, count: int, start: int = 0) -> Path:
    """folder/cat and folder/dog with count generated JPEGs between them."""
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True, exist_ok=True)
    chunks = [(folder, s, min(500, start + count - s)) for s in range(start, start + count, 500)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(_write_photos, chunks))
    return folder


def _photo_set(folder: Path, count: int):
    from catdog.trainer.data import per_class_sample, scan_folder

    return per_class_sample(scan_folder(folder), count // 2, seed=1)


def cache_numbers(tree: Path, cache_dir: Path, count: int) -> dict:
    from catdog.trainer.cache import Preprocessing, open_cache

    photos = _photo_set(tree, count)
    start = time.perf_counter()
    built = open_cache(photos, Preprocessing(SOURCE_HW), cache_dir)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    again = open_cache(photos, Preprocessing(SOURCE_HW), cache_dir)
    assert again.hit and not built.hit
    return {"photos": count, "build_s": build_s, "open_s": time.perf_counter() - start,
            "bytes": built.path.stat().st_size}


def steps_per_second(photos, steps: int = 30) -> float:
    """Compact model, 96x96, batch 32, augmentation on: steps/s of the second of two epochs of `steps` steps."""
    from catdog.trainer._tf import import_tensorflow
    from catdog.trainer.batches import training_batches
    from catdog.trainer.config import Arch
    from catdog.trainer.model import build_model

    _, keras = import_tensorflow()
    model = build_model(Arch.compact, (96, 96, 3), 2)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="binary_crossentropy")
    ds = training_batches(photos, 2, 32, seed=1, out_hw=(96, 96), augment=True).repeat()
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            times.append(time.perf_counter())

        def on_train_end(self, logs=None):
            times.append(time.perf_counter())

    model.fit(ds, epochs=2, steps_per_epoch=steps, verbose=0, callbacks=[Clock()])
    return steps / (times[2] - times[1])


def rss_child(tree: Path, cache_dir: Path, count: int, use_cache: bool) -> None:
    """In a fresh process: read every photo once through the training pipeline, train 20 steps, print peak RSS."""
    import resource

    from catdog.trainer.batches import training_batches
    from catdog.trainer.cache import Preprocessing, open_cache
    from catdog.trainer.data import load_photos

    photos = _photo_set(tree, count)
    source = open_cache(photos, Preprocessing(SOURCE_HW), cache_dir) if use_cache else load_photos(photos, SOURCE_HW)
    for _ in training_batches(source, 2, 64, seed=1, out_hw=SOURCE_HW, augment=False):
        pass
    steps_per_second(source, steps=10)
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def features_child(tree: Path, cache_dir: Path, count: int, streamed: bool) -> None:
    """In a fresh process: the pretrained fit's features of count photos, streamed from the cache (now) or from
    the whole set decoded into memory and copied to float32 (before); print peak RSS."""
    import resource

    from catdog.trainer.cache import Preprocessing, open_cache
    from catdog.trainer.data import load_photos
    from catdog.trainer.efficientnet import backbone, build_lite0
    from catdog.trainer.pretrained import resolve_weights
    from catdog.trainer.transfer import FEATURE_BATCH, features

    photos = _photo_set(tree, count)
    model = build_lite0((*FEATURES_HW, 3), 2, weights=resolve_weights("imagenet"))
    if streamed:
        out = features(model, open_cache(photos, Preprocessing(FEATURES_HW), cache_dir))
    else:  # efb06f2's trainer.transfer.features on trainer.data.load_for's photos
        out = backbone(model).predict(load_photos(photos, FEATURES_HW).images.astype(np.float32), batch_size=FEATURE_BATCH, verbose=0)
    assert out.shape == (count, 1280)
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def feature_numbers(work: Path) -> dict:
    """Peak RSS (MB) of the pretrained features, (count, streamed) -> MB, on the real training photos."""
    tree = DATA / "train"
    if not tree.is_dir():
        raise SystemExit(f"no real photos at {tree}; set CATDOG_DATA")
    return {(n, streamed): _result(_run(["--features", str(tree), str(work / "cache-features"), str(n),
                                         *([] if streamed else ["--memory"])]))["peak_rss_mb"]
            for n in FEATURE_COUNTS for streamed in (False, True)}


def print_features(rss: dict) -> None:
    print(f"\nPretrained fit's features (EfficientNet-Lite0, {FEATURES_HW[0]}x{FEATURES_HW[1]}, real photos): peak RSS of a fresh process\n")
    print("| photos | before: decoded into memory, whole set as float32 | now: from the cache, a batch at a time |")
    print("|---|---|---|")
    for n in FEATURE_COUNTS:
        print(f"| {n:,} | {rss[(n, False)]:,.0f} MB | {rss[(n, True)]:,.0f} MB |")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def fit_child(settings: dict) -> None:
    """In a fresh process: catdog-train fit as settings say; print the steps/s of its second epoch."""
    from catdog.trainer._tf import import_tensorflow
    from catdog.trainer.config import Distribute, FitConfig, Keep
    from catdog.trainer.train import fit

    _, keras = import_tensorflow()

    class Clock(keras.callbacks.Callback):
        """Steps per second of the last epoch's training steps (validation left out)."""

        def on_epoch_begin(self, epoch, logs=None):
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    clock = Clock()
    paths = {k: Path(settings[k]) for k in ("data_dir", "val_dir", "out", "cache_dir")}
    config = FitConfig(**{**settings, **paths, "keep": Keep.last, "distribute": Distribute(settings["distribute"])})
    fit(config, verbose=0, callbacks=[clock])
    ends = clock.ends
    print(json.dumps({"steps_per_s": (len(ends) - 1) / (ends[-1] - ends[0]), "steps": len(ends)}))


def _run(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, env=env)


def _result(proc: subprocess.Popen) -> dict:
    stdout, _ = proc.communicate(timeout=1800)
    if proc.returncode:
        raise SystemExit(f"a child process failed (exit {proc.returncode})")
    return json.loads(stdout.splitlines()[-1])


def distributed_numbers(tree: Path, val: Path, work: Path) -> dict:
    base = {"data_dir": str(tree), "val_dir": str(val), "epochs": 2, "limit_per_class": SMALL // 2,
            "overwrite": True, "cache_dir": str(work / f"cache-{SMALL}")}
    one = _result(_run(["--fit", json.dumps({**base, "out": str(work / "one" / "m.keras"), "distribute": "none"})]))
    ports = _free_ports(2)
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
        settings = {**base, "out": str(work / f"two{index}" / "m.keras"), "distribute": "multi-worker"}
        procs.append(_run(["--fit", json.dumps(settings)], {**os.environ, "TF_CONFIG": json.dumps(tf_config)}))
    two = [_result(p) for p in procs]
    return {"one": one, "two": two[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=20000)
    parser.add_argument("--workdir", type=Path, default=None, help="Where the synthetic photos and caches go (deleted afterwards).")
    parser.add_argument("--rss", nargs=3, metavar=("TREE", "CACHE", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fit", help=argparse.SUPPRESS)
    parser.add_argument("--features", nargs=3, metavar=("TREE", "CACHE", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=["features"], help="Measure only the pretrained features' memory (real photos).")
    args = parser.parse_args()
    if args.rss:
        return rss_child(Path(args.rss[0]), Path(args.rss[1]), int(args.rss[2]), use_cache=not args.memory)
    if args.fit:
        return fit_child(json.loads(args.fit))
    if args.features:
        return features_child(Path(args.features[0]), Path(args.features[1]), int(args.features[2]), streamed=not args.memory)
    if args.only == "features":
        work = Path(tempfile.mkdtemp(prefix="catdog-pipeline-", dir=args.workdir))
        try:
            return print_features(feature_numbers(work))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    work = Path(tempfile.mkdtemp(prefix="catdog-pipeline-", dir=args.workdir))
    try:
        start = time.perf_counter()
        tree = make_tree(work / "train", args.photos)
        val = make_tree(work / "val", 200, start=10**6)
        print(f"generated {args.photos} + 200 photos in {time.perf_counter() - start:.0f} s under {work}", file=sys.stderr)
        # A folder each: a cache built from another one's rows (same photos and settings) copies them, not decodes.
        caches = [cache_numbers(tree, work / f"cache-{n}", n) for n in (SMALL, args.photos)]
        from catdog.trainer.cache import Preprocessing, open_cache
        from catdog.trainer.data import load_photos

        small = _photo_set(tree, SMALL)
        memory_sps = steps_per_second(load_photos(small, SOURCE_HW))
        cache_sps = steps_per_second(open_cache(small, Preprocessing(SOURCE_HW), work / f"cache-{SMALL}"))
        rss = {}
        for n in (SMALL, args.photos):
            for memory in (False, True):
                extra = ["--memory"] if memory else []
                rss[(n, memory)] = _result(_run(["--rss", str(tree), str(work / f"cache-{n}"), str(n), *extra]))["peak_rss_mb"]
        dist = distributed_numbers(tree, val, work)
        features_rss = feature_numbers(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"fit's input pipeline: {platform.machine()}, {os.cpu_count()} cores; synthetic 160x120 JPEGs, "
          f"cache rows at {SOURCE_HW[0]}x{SOURCE_HW[1]} (the compact model's source size)\n")
    print("| photos | cache build | cache size | open (hit, checks every row) | peak RSS, cache | peak RSS, in memory (--no-cache) |")
    print("|---|---|---|---|---|---|")
    for c in caches:
        n = c["photos"]
        print(f"| {n:,} | {c['build_s']:.1f} s | {c['bytes'] / 2**20:,.0f} MiB | {c['open_s']:.1f} s "
              f"| {rss[(n, False)]:,.0f} MB | {rss[(n, True)]:,.0f} MB |")
    print(f"\nTraining steps/s (compact, 96x96, batch 32, augmentation on, {SMALL:,} photos): "
          f"in memory {memory_sps:.2f}, from the cache {cache_sps:.2f}")
    one, two = dist["one"], dist["two"]
    print(f"fit on {SMALL:,} photos, steps/s of epoch 2 (global batch 32): 1 process {one['steps_per_s']:.2f} "
          f"({one['steps']} steps/epoch); 2 workers on 127.0.0.1 {two['steps_per_s']:.2f} ({two['steps']} steps/epoch)")
    print_features(features_rss)


if __name__ == "__main__":
    main()
