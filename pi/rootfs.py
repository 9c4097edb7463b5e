"""Debian root filesystems for the targets: built once with mmdebstrap, cached as tarballs, unpacked per run."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from .targets import Target

#: Changes to how a root filesystem is built bump this, so older tarballs are not reused.
RECIPE = 1


def cache_key(suite: str, arch: str, packages: tuple[str, ...] | list[str]) -> str:
    """The tarball's file name: suite, architecture and a digest of the package list (order does not matter).

    >>> cache_key("bookworm", "arm64", ["python3-venv", "python3"]) == cache_key("bookworm", "arm64", ["python3", "python3-venv"])
    True
    """
    listed = ",".join(sorted(set(packages)))
    digest = hashlib.sha256(f"{RECIPE}:{suite}:{arch}:{listed}".encode()).hexdigest()[:12]
    return f"{suite}-{arch}-{digest}.tar.zst"


def mmdebstrap_command(target: Target, mirror: str, out: Path) -> list[str]:
    """Build target's root filesystem straight into a compressed tarball (the suffix picks the format).

    --skip=check/qemu: mmdebstrap would otherwise want arch-test to check emulation, which run.py
    checks itself by running the target's python3.
    """
    return ["mmdebstrap", "--quiet", "--skip=check/qemu", f"--arch={target.arch}", "--variant=apt",
            f"--include={','.join(target.apt)}", target.suite, str(out), mirror]


def ensure_tarball(target: Target, mirror: str, cache: Path, log) -> tuple[Path, float]:
    """The cached tarball of target's root filesystem, built when missing.

    Returns:
        (tarball, seconds spent building it; 0.0 when it was cached).

    Raises:
        subprocess.CalledProcessError: mmdebstrap failed (its output is in the log).
    """
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / cache_key(target.suite, target.arch, target.apt)
    if tarball.is_file():
        return tarball, 0.0
    partial = tarball.with_name(f".{tarball.name}.{os.getpid()}.tar.zst")  # renamed only when complete
    start = time.monotonic()
    log(f"building {tarball.name}: {' '.join(mmdebstrap_command(target, mirror, tarball))}")
    try:
        subprocess.run(mmdebstrap_command(target, mirror, partial), check=True, stdout=log.file,
                       stderr=subprocess.STDOUT)
        partial.rename(tarball)
    finally:
        partial.unlink(missing_ok=True)
    return tarball, time.monotonic() - start


def unpack(tarball: Path, root: Path) -> None:
    """Unpack a root filesystem tarball into an empty folder root."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    subprocess.run(["tar", "--zstd", "-xpf", str(tarball), "-C", str(root), "--numeric-owner"], check=True)
