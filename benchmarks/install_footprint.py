"""Install footprint: the edge-only environment a device gets vs the trainer environment.

Sizes the virtual environments `make test` builds (.venv-edge: the wheel with [edge,camera];
.venv-legacy: tflite-runtime 2.14 + numpy<2; .venv: train, edge, camera, dev) and the largest
packages in each.

    .venv/bin/python benchmarks/install_footprint.py
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVS = {
    ".venv-edge": "edge only: the wheel with [edge,camera] (ai-edge-litert, OpenCV)",
    ".venv-legacy": "legacy edge: tflite-runtime 2.14, numpy<2",
    ".venv": "trainer + edge + dev (TensorFlow)",
}


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files below path (links not followed)."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            file = Path(folder) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def main() -> None:
    print("| environment | what | MB | largest packages (MB) |")
    print("|---|---|---|---|")
    for name, what in ENVS.items():
        venv = ROOT / name
        if not venv.is_dir():
            print(f"| {name} | {what} | not built (run make test) | |")
            continue
        site = next(venv.glob("lib/python*/site-packages"))
        packages = sorted(
            ((tree_bytes(p), p.name) for p in site.iterdir() if p.is_dir() and not p.name.endswith(("-info", "__pycache__"))),
            reverse=True,
        )
        top = ", ".join(f"{n} {b / 1e6:.0f}" for b, n in packages[:4])
        print(f"| {name} | {what} | {tree_bytes(venv) / 1e6:.0f} | {top} |")


if __name__ == "__main__":
    main()
