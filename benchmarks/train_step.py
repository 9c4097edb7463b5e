"""What a training step costs per input size: the case for progressive resizing.

Times Keras training steps (forward, backward, AdamW update) of the compact model on a batch of
random pixels at each size, after warm-up; no photos needed. Prints a Markdown table.

    .venv/bin/python benchmarks/train_step.py [--sizes 64 80 96] [--batch-size 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def step_ms(size: int, batch_size: int, repeats: int, steps: int = 10) -> tuple[float, float]:
    """(fastest, median) milliseconds per training step of the compact model at size x size."""
    from catdog.trainer._tf import import_tensorflow
    from catdog.trainer.config import Arch
    from catdog.trainer.model import build_model

    _, keras = import_tensorflow()  # without TensorFlow's start-up lines
    model = build_model(Arch.compact, (size, size, 3), 2)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, size, size, 3)).astype(np.float32)
    y = rng.integers(0, 2, (batch_size, 1)).astype(np.float32)
    for _ in range(5):
        model.train_on_batch(x, y)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        times.append((time.perf_counter() - start) / steps * 1000)
    return min(times), float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 80, 96])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds of 10 steps; the table shows the fastest and median")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; batch {args.batch_size}\n")
    print("| input | ms per step (fastest) | ms per step (median) | relative to the largest |")
    print("|---|---|---|---|")
    results = {size: step_ms(size, args.batch_size, args.repeats) for size in args.sizes}
    largest = results[max(args.sizes)][1]
    for size, (fastest, median) in results.items():
        print(f"| {size}x{size} | {fastest:.0f} | {median:.0f} | {median / largest:.2f} |")


if __name__ == "__main__":
    main()
