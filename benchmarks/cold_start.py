"""Cold start: `catdog-edge classify photo.jpg` vs a bare 10-line interpreter script vs Keras + TensorFlow.

Each command is a fresh process classifying the same photo; the table shows the median wall time
and peak resident memory of N runs and the ratios the goals are stated in (catdog <= 1.3x the bare
script, >= 20x faster than Keras). The bare script does the same work as catdog: decode, RGB, the
contract's centre crop, bilinear resize, invoke, print. Both ratios are measured, each in its own
installed environment: ai-edge-litert (.venv-edge) and tflite-runtime with numpy < 2 (.venv-legacy,
older Raspberry Pi OS). catdog runs as a user types it, with the bundled model (the default,
or `-m compact`), and with the same model copied to a file of the user's own, which catdog checks
structurally and, on its first load only, loads and runs once in a child process (edge.modelprobe):
a first run (the probe's cache emptied before it) and a run after it (the verdict remembered). The
runs of one environment take turns (bare, catdog, first run, again, bare, ...), so a machine that
slows down or speeds up during the measurement moves all four alike. A last row classifies the
photo's whole split folder (the 1,000 val photos) in one process: its peak memory shows memory stays
flat over many photos.

    .venv/bin/python benchmarks/cold_start.py [--runs 7] [--photo P] [--model catdog-compact]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _paths import DATA, ROOT

BIN = Path(sys.executable).parent
# Measure the edge as a device installs it: `make test` installs the wheel into .venv-edge (ai-edge-litert)
# and .venv-legacy (tflite-runtime): compiled, non-editable, as on a Pi.
ENVIRONMENTS = {"ai-edge-litert": (ROOT / ".venv-edge" / "bin", "ai_edge_litert.interpreter"),
                "tflite-runtime": (ROOT / ".venv-legacy" / "bin", "tflite_runtime.interpreter")}

BARE = textwrap.dedent(
    """
    import sys, numpy as np
    from PIL import Image
    from {module} import Interpreter
    it = Interpreter(model_path=sys.argv[1]); it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    h, w = inp["shape"][1:3]
    img, crop = Image.open(sys.argv[2]).convert("RGB"), float(sys.argv[3])
    mx, my = img.width * (1 - crop) / 2, img.height * (1 - crop) / 2
    x = np.asarray(img.resize((w, h), Image.BILINEAR, box=(mx, my, img.width - mx, img.height - my)), dtype=np.uint8)
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


def run_once(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB, from the kernel's rusage of that one child)."""
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a chatty child cannot block on it
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
        if proc.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"error: {cmd[0]} failed: {stderr.read().decode(errors='replace').strip()[-300:]}")
    return seconds, usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def median_runs(cmds: dict[str, list[str]], runs: int, cache: Path | None = None, fresh: str = "") -> dict[str, tuple[float, float]]:
    """Median wall seconds and median peak memory (MiB) of `runs` fresh processes of each command, taking turns.

    With cache, every command runs with it as $XDG_CACHE_HOME, emptied before each run of the command named fresh.
    """
    env = None if cache is None else {**os.environ, "XDG_CACHE_HOME": str(cache)}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            if name == fresh and cache is not None:
                shutil.rmtree(cache, ignore_errors=True)
            samples[name].append(run_once(cmd, env))
    return {name: (statistics.median(s for s, _ in got), statistics.median(m for _, m in got)) for name, got in samples.items()}


def median_run(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds and median peak memory (MiB) of `runs` fresh processes."""
    return median_runs({"cmd": cmd}, runs)["cmd"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--photo", type=Path, default=DATA / "val/cat/cat.4001.jpg")
    parser.add_argument("--model", default="catdog", help="bundled model file stem in models/: catdog (the default) or catdog-compact")
    args = parser.parse_args()
    tflite, keras_model = ROOT / f"models/{args.model}.tflite", ROOT / f"models/{args.model}.keras"
    crop = json.loads(tflite.with_suffix(".json").read_text())["crop"]
    found = {name: env for name, env in ENVIRONMENTS.items() if (env[0] / "catdog-edge").is_file()}
    if not found:
        raise SystemExit("error: no installed edge environment; run make test (it builds .venv-edge and .venv-legacy)")
    print(f"model {tflite.name}, photo {args.photo.name}, centre crop {crop}, {platform.machine()} ({os.cpu_count()} cores), "
          f"median of {args.runs} runs; Keras from {BIN.parent.name}\n")
    print("| command | environment | cold start s | ratio | peak memory MiB |")
    print("|---|---|---|---|---|")
    bundled = [] if args.model == "catdog" else ["-m", args.model.removeprefix("catdog-")]  # a bundled model's name
    catdog_litert = None
    # One's own file: a copy outside the bundled folder (so an editable install checks it too), probed in a
    # child process on its first load (the cache emptied before each "first" run) and not again after.
    own_dir = Path(tempfile.mkdtemp(prefix="cold-start-"))
    own = own_dir / "own" / tflite.name
    own.parent.mkdir()
    shutil.copy(tflite, own)
    shutil.copy(tflite.with_suffix(".json"), own.with_suffix(".json"))
    for name, (bin_dir, module) in found.items():
        edge = str(bin_dir / "catdog-edge")
        got = median_runs({
            "bare": [str(bin_dir / "python"), "-c", BARE.format(module=module), str(tflite), str(args.photo), str(crop)],
            "catdog": [edge, "classify", str(args.photo), *bundled],
            "first": [edge, "classify", str(args.photo), "-m", str(own)],
            "file": [edge, "classify", str(args.photo), "-m", str(own)],
        }, args.runs, cache=own_dir / "cache", fresh="first")
        bare, bare_mb = got["bare"]
        print(f"| bare 10-line script | {name} | {bare:.3f} | 1.00x | {bare_mb:.0f} |")
        for key, what in (("catdog", f"catdog-edge classify {' '.join(bundled)}".rstrip()),
                          ("first", f"catdog-edge classify -m own/{tflite.name}, first run (probed)"),
                          ("file", f"catdog-edge classify -m own/{tflite.name}, again (probe remembered)")):
            seconds, mb = got[key]
            print(f"| {what} | {name} | {seconds:.3f} | {seconds / bare:.2f}x of the bare script | {mb:.0f} |")
        catdog_litert = catdog_litert or (got["catdog"][0], bin_dir)
    keras, keras_mb = median_run([sys.executable, "-c", KERAS, str(keras_model), str(args.photo)], max(2, args.runs // 3))
    print(f"| Keras + TensorFlow script | {BIN.parent.name} | {keras:.3f} | catdog is {keras / catdog_litert[0]:.1f}x faster | {keras_mb:.0f} |")
    folder = args.photo.parent.parent
    many, many_mb = run_once([str(catdog_litert[1] / "catdog-edge"), "classify", "-r", str(folder), "--format", "csv", "-m", str(tflite)])
    shutil.rmtree(own_dir)
    print(f"| catdog-edge classify -r {folder.name}/ (whole folder, once) | {catdog_litert[1].parent.name} | {many:.3f} | | {many_mb:.0f} |")


if __name__ == "__main__":
    main()
