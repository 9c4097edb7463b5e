"""Cold start: `catdog-edge classify photo.jpg` vs a bare 10-line LiteRT script vs Keras + TensorFlow.

Each command is a fresh process classifying the same photo; the table shows the median wall time
and peak resident memory of N runs and the ratios the goals are stated in (catdog <= 1.5x bare
LiteRT, >= 20x faster than Keras). A last row classifies the photo's whole split folder (the 1,000
val photos) in one process: its peak memory shows memory stays flat over many photos.

    .venv/bin/python benchmarks/cold_start.py [--runs 7] [--photo P]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Measure the edge as a device installs it: `make test` builds .venv-edge with `pip install .[edge]`
# (compiled, non-editable: PYTHONDONTWRITEBYTECODE would make an editable checkout recompile each run).
EDGE_BIN = ROOT / ".venv-edge" / "bin" if (ROOT / ".venv-edge" / "bin" / "catdog-edge").exists() else BIN

BARE_LITERT = textwrap.dedent(
    """
    import sys, numpy as np
    from PIL import Image
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=sys.argv[1]); it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    h, w = inp["shape"][1:3]
    x = np.asarray(Image.open(sys.argv[2]).convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.uint8)
    it.set_tensor(inp["index"], x[None]); it.invoke()
    print(it.get_tensor(out["index"]))
    """
)

KERAS = textwrap.dedent(
    """
    import sys, numpy as np, keras
    from PIL import Image
    model = keras.models.load_model(sys.argv[1], compile=False)
    h, w = model.input_shape[1:3]
    x = np.asarray(Image.open(sys.argv[2]).convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.float32)
    print(model.predict(x[None], verbose=0))
    """
)


def run_once(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB, from the kernel's rusage of that one child)."""
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a chatty child cannot block on it
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
        if proc.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"error: {cmd[0]} failed: {stderr.read().decode(errors='replace').strip()[-300:]}")
    return seconds, usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def median_run(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds and median peak memory (MiB) of `runs` fresh processes."""
    samples = [run_once(cmd) for _ in range(runs)]
    return statistics.median(s for s, _ in samples), statistics.median(m for _, m in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--photo", type=Path, default=ROOT.parent / "shared/datasets/catdog/val/cat/cat.4001.jpg")
    args = parser.parse_args()
    tflite, keras_model = ROOT / "models/catdog.tflite", ROOT / "models/catdog.keras"
    catdog, catdog_mb = median_run([str(EDGE_BIN / "catdog-edge"), "classify", str(args.photo)], args.runs)
    bare, bare_mb = median_run([str(EDGE_BIN / "python"), "-c", BARE_LITERT, str(tflite), str(args.photo)], args.runs)
    keras, keras_mb = median_run([sys.executable, "-c", KERAS, str(keras_model), str(args.photo)], max(2, args.runs // 3))
    folder = args.photo.parent.parent
    many, many_mb = run_once([str(EDGE_BIN / "catdog-edge"), "classify", "-r", str(folder), "--format", "csv"])
    print(f"photo {args.photo.name}, {platform.machine()} ({os.cpu_count()} cores), Python {platform.python_version()}, "
          f"median of {args.runs} runs; edge commands from {EDGE_BIN.parent.name}, Keras from {BIN.parent.name}\n")
    print("| command | cold start s | ratio | peak memory MiB |")
    print("|---|---|---|---|")
    print(f"| bare 10-line LiteRT script | {bare:.3f} | 1.00x | {bare_mb:.0f} |")
    print(f"| catdog-edge classify | {catdog:.3f} | {catdog / bare:.2f}x of bare LiteRT | {catdog_mb:.0f} |")
    print(f"| Keras + TensorFlow script | {keras:.3f} | catdog is {keras / catdog:.1f}x faster | {keras_mb:.0f} |")
    print(f"| catdog-edge classify -r {folder.name}/ (whole folder, once) | {many:.3f} | | {many_mb:.0f} |")


if __name__ == "__main__":
    main()
