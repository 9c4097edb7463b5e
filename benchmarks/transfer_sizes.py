"""Which input size for EfficientNet-Lite0 on the edge: fit, int8 export and invoke time at each size.

Per size, catdog.trainer.train.fit fits --arch efficientnet-lite0 (frozen ImageNet features and a new
logistic-regression head, its L2 strength chosen by 5-fold cross-validation on the training photos)
on DATA/train with DATA/val as validation, then catdog.trainer.export.export writes the int8 .tflite
(calibrated on the training photos, parity measured on the validation photos). The cross-validated
accuracy on the training photos is the one to choose a size by; the validation figures (Keras, int8,
agreement) are only measured. Invoke time: catdog.edge.bench.time_invoke, median of --runs, at 1 and
2 interpreter threads. Models go to a temporary folder, removed at the end. Prints a Markdown table.

    .venv/bin/python benchmarks/transfer_sizes.py [--sizes 128 160 192 224] [--runs 200]   (DATA: benchmarks/_paths.py)
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from _paths import DATA

if TYPE_CHECKING:
    from catdog.trainer.config import FitConfig
    from catdog.trainer.export import ExportResult
    from catdog.trainer.train import FitResult

SIZES = (128, 160, 192, 224)
THREADS = (1, 2)
#: The seed of every fit and export here (photo sampling, head cross-validation folds, calibration draw).
SEED = 1337


@dataclass(frozen=True)
class Fitted:
    """One fit and its int8 export."""

    keras_path: Path
    """The .keras model (contract beside it)."""
    tflite_path: Path
    """The int8 .tflite (contract beside it)."""
    fit_seconds: float
    """Wall time of fit (data checks, photo loading and training)."""
    fit: FitResult
    """What fit wrote and measured."""
    export: ExportResult
    """What export wrote and measured (its parity report is on fit's validation photos)."""


def fit_and_export(config: FitConfig) -> Fitted:
    """Fit as config says, then export the model int8 beside it.

    Calibration and parity photos are the ones the contract records: fit's training and validation sets.
    """
    from catdog.trainer.config import ExportConfig, ExportMode
    from catdog.trainer.export import export
    from catdog.trainer.train import fit

    start = time.perf_counter()
    fitted = fit(config, verbose=0)
    seconds = time.perf_counter() - start
    # The contract records the photo folders by name only (they are outside the working directory).
    exported = export(ExportConfig(model_path=fitted.model_path, mode=ExportMode.int8, seed=config.seed,
                                   data_root=Path(config.data_dir).parent))
    return Fitted(fitted.model_path, exported.out_path, seconds, fitted, exported)


def machine_line() -> str:
    """Platform, cores and library versions, for the line above a table."""
    from catdog.edge.runtime import find_runtime
    from catdog.trainer._tf import import_tensorflow

    tf, keras = import_tensorflow()
    rt = find_runtime()
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {rt.name} {rt.version}")


def file_size_text(size_bytes: int) -> str:
    """1234567 -> "1.23 MB"; 123456 -> "123 KB"."""
    return f"{size_bytes / 1e6:.2f} MB" if size_bytes >= 1e6 else f"{size_bytes / 1e3:.0f} KB"


def row_for(size: int, data: Path, out_dir: Path, runs: int) -> dict:
    """Fit and export Lite0 at size x size, and measure it."""
    from catdog.edge.bench import time_invoke
    from catdog.edge.classify import Classifier
    from catdog.edge.contract import ModelContract
    from catdog.trainer.config import Arch, FitConfig

    config = FitConfig(
        data_dir=data / "train", val_dir=data / "val", seed=SEED, out=out_dir / f"lite0-{size}.keras",
        arch=Arch.efficientnet_lite0, image_hw=(size, size),
    )
    done = fit_and_export(config)
    training = ModelContract.load(done.fit.contract_path).training
    parity = done.export.parity
    return {
        "size": size,
        "l2": training["head_l2"],
        "cv": training["head_cv_accuracy"][f"{training['head_l2']:g}"],
        "keras": parity.keras_accuracy, "int8": parity.tflite_accuracy, "agreement": parity.agreement,
        "photos": parity.photos, "train_photos": done.fit.train_photos,
        "macs": training["multiply_adds"], "params": training["params"], "bytes": done.export.size_bytes,
        "p50": {t: time_invoke(Classifier.load(done.tflite_path, threads=t), runs).p50 for t in THREADS},
        "fit_s": done.fit_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the data set: DATA/train/<label>/, DATA/val/<label>/")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="square input sizes in pixels")
    parser.add_argument("--runs", type=int, default=200, help="timed invokes per latency figure")
    args = parser.parse_args()

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="catdog-transfer-sizes-") as tmp:
        rows = [row_for(size, args.data, Path(tmp), args.runs) for size in args.sizes]
    minutes = (time.perf_counter() - start) / 60

    first = rows[0]
    print(f"EfficientNet-Lite0 (ImageNet, frozen) + logistic head on {args.data}: {first['train_photos']} training, "
          f"{first['photos']} validation photos; seed {SEED} ({machine_line()}; invoke: median of {args.runs}; "
          f"whole run {minutes:.1f} min)\n")
    print("| input | CV accuracy (train, chooses) | head L2 | Keras val | int8 val | int8 agreement | MACs/photo "
          "| params | int8 .tflite | invoke p50 1 thread (ms) | invoke p50 2 threads (ms) | fit (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']}x{r['size']} | {r['cv']:.1%} | {r['l2']:g} | {r['keras']:.1%} | {r['int8']:.1%} "
              f"| {r['agreement']:.1%} | {r['macs'] / 1e6:.0f}M | {r['params'] / 1e6:.3f}M | {file_size_text(r['bytes'])} "
              f"| {r['p50'][1]:.2f} | {r['p50'][2]:.2f} | {r['fit_s']:.0f} |")


if __name__ == "__main__":
    main()
