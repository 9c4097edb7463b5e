"""Accuracy per format: each .keras model as Keras float and exported as TFLite float32, float16,
dynamic-range and int8, on the same validation photos.

Per row: accuracy, top-1 agreement with the Keras model, accuracy change against Keras, model
size, parameters, multiply-adds per photo, and single-threaded latency of one photo (TFLite:
invoke(); Keras: model(x) with TensorFlow limited to one thread).

    .venv/bin/python benchmarks/accuracy_table.py [--model models/catdog.keras] [--model runs/seed/seed.keras]
    (make seed-model trains the seed architecture's baseline into runs/seed/seed.keras)

Exports go to a temporary folder; nothing in models/ is touched. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from _paths import DATA, ROOT


def keras_latency_ms(model, shape: tuple[int, ...], runs: int) -> float:
    """Median wall time of model(x) on one photo (TensorFlow's thread pools set to 1 at start-up)."""
    import numpy as np

    from catdog.edge.bench import latency_stats

    x = np.full((1, *shape), 128, dtype=np.float32)
    for _ in range(5):
        model(x, training=False)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        model(x, training=False)
        samples.append((time.perf_counter() - start) * 1000.0)
    return latency_stats(samples).p50


def rows_for(keras_path: Path, val_dir: Path, runs: int, out_dir: Path) -> list[dict]:
    from catdog.edge.bench import time_invoke
    from catdog.edge.classify import Classifier
    from catdog.trainer.config import ExportConfig, ExportMode
    from catdog.trainer.export import export
    from catdog.trainer.keras_model import load_keras
    from catdog.trainer.model import multiply_adds

    model, contract = load_keras(keras_path)
    arch = contract.training.get("arch", "?")
    epochs = contract.training.get("epochs_run", "?")
    name = f"{arch} {contract.input_hw[0]}x{contract.input_hw[1]}, {epochs} ep"
    params, macs = model.count_params(), multiply_adds(model)
    rows = []
    for mode in (ExportMode.none, ExportMode.float16, ExportMode.dynamic, ExportMode.int8):
        out = out_dir / f"{keras_path.stem}-{mode.value}.tflite"
        # int8 calibrates on the training photos the contract records by name, beside val_dir.
        result = export(ExportConfig(model_path=keras_path, out=out, mode=mode, parity_dir=val_dir, data_root=val_dir.parent))
        report = result.parity
        if not rows:  # the Keras row first, with the Keras accuracy the first export measured
            rows.append({
                "model": name, "format": "Keras float32", "accuracy": report.keras_accuracy, "agreement": 1.0,
                "delta": 0.0, "size": keras_path.stat().st_size, "params": params, "macs": macs,
                "latency_ms": keras_latency_ms(model, contract.input_shape, runs),
            })
        classifier = Classifier.load(out, threads=1)
        rows.append({
            "model": name, "format": f"TFLite {mode.stored_as}", "accuracy": report.tflite_accuracy,
            "agreement": report.agreement, "delta": report.tflite_accuracy - report.keras_accuracy,
            "size": result.size_bytes, "params": params, "macs": macs,
            "latency_ms": time_invoke(classifier, runs).p50,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", help="a .keras model (repeatable); default models/catdog.keras")
    parser.add_argument("--val", type=Path, default=DATA / "val", help="class-per-folder validation photos")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per latency figure")
    args = parser.parse_args()
    models = args.model or [ROOT / "models" / "catdog.keras"]
    for path in models:
        if not path.is_file():
            sys.exit(f"error: {path} does not exist; train it first (make seed-model trains the seed baseline)")

    from catdog.trainer._tf import import_tensorflow

    tf, _ = import_tensorflow()  # without TensorFlow's start-up lines
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="catdog-accuracy-") as tmp:
        for path in models:
            rows += rows_for(path, args.val, args.runs, Path(tmp))

    from catdog.edge.runtime import find_runtime

    rt = find_runtime()
    print(f"{args.val} ({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"TensorFlow {tf.__version__}, {rt.name} {rt.version}; latency: median of {args.runs}, 1 thread)\n")
    print("| model | format | accuracy | agreement with Keras | Δ accuracy (pt) | size | params | MACs/photo | latency (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        size = f"{r['size'] / 1e6:.2f} MB" if r["size"] >= 1e6 else f"{r['size'] / 1e3:.0f} KB"
        print(f"| {r['model']} | {r['format']} | {r['accuracy']:.1%} | {r['agreement']:.1%} | {100 * r['delta']:+.1f} "
              f"| {size} | {r['params'] / 1e6:.3f}M | {r['macs'] / 1e6:.1f}M | {r['latency_ms']:.2f} |")


if __name__ == "__main__":
    main()
