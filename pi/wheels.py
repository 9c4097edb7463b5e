"""Wheels for an emulated target, downloaded on the host (fast, native pip) and installed inside it offline."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .targets import Environment, Target

#: The newest glibc a target has (Debian trixie: 2.41; bookworm: 2.36); every manylinux tag up to it is
#: listed, because pip takes only the tags it is given: with the usual three it silently picks
#: ai-edge-litert 1.4.0 for Python 3.11 (2.x needs manylinux_2_27) and finds no tflite-runtime (2_34).
GLIBC_BY_SUITE = {"bookworm": (2, 36), "trixie": (2, 41)}


def manylinux_platforms(machine: str, glibc: tuple[int, int] = (2, 36)) -> list[str]:
    """Every pip --platform tag a system with this glibc accepts, newest first (manylinux2014 = 2_17).

    >>> manylinux_platforms("aarch64", (2, 18))
    ['manylinux_2_18_aarch64', 'manylinux_2_17_aarch64', 'manylinux2014_aarch64']
    """
    major, newest = glibc
    tags = [f"manylinux_{major}_{minor}_{machine}" for minor in range(newest, 16, -1)]
    return tags + [f"manylinux2014_{machine}"]


def wheel_requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA, as written (they key the download cache)."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(name).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def download_key(target: Target, env: Environment, catdog_requires: list[str]) -> str:
    """The cache folder name of one environment's wheels: what decides which wheels pip picks."""
    recipe = {
        "python": target.python, "machine": target.machine, "glibc": GLIBC_BY_SUITE[target.suite],
        "requirements": list(env.requirements), "no_deps": list(env.no_deps), "extras": env.extras,
        "offer": list(env.offer),
        "catdog_requires": catdog_requires if env.extras else [],
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"py{target.python}-{target.machine}-{env.name}-{digest}"


def pip_download_command(target: Target, dest: Path, requirements: list[str], deps: bool = True) -> list[str]:
    """pip download, on the host, of binary wheels for the target's Python and machine."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--python-version", target.python, "--implementation", "cp",
               "--dest", str(dest)]
    for tag in manylinux_platforms(target.machine, GLIBC_BY_SUITE[target.suite]):
        command += ["--platform", tag]
    if not deps:
        command.append("--no-deps")
    return command + requirements


def download(target: Target, env: Environment, wheel: Path, cache: Path) -> Path:
    """The folder of wheels env installs from (cached: a second run downloads nothing).

    Raises:
        subprocess.CalledProcessError: pip found no wheel for something (its message says which).
    """
    folder = cache / download_key(target, env, wheel_requirements(wheel))
    if (folder / ".complete").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    wanted = list(env.requirements)
    if env.extras:  # the wheel's own dependencies, resolved for the target (the wheel itself is removed below)
        wanted.append(f"{wheel.resolve()}[{env.extras}]")
    if wanted:
        _pip(pip_download_command(target, folder, wanted))
    if env.offer:
        _pip(pip_download_command(target, folder, [f"{wheel.resolve()}[{env.extras}]", *env.offer]))
    if env.no_deps:
        _pip(pip_download_command(target, folder, list(env.no_deps), deps=False))
    for copied in folder.glob("catdog_toolkit-*.whl"):
        copied.unlink()
    (folder / ".complete").touch()
    return folder


def _pip(command: list[str]) -> None:
    """Run pip quietly (a pip.conf naming local indexes can warn on every package); its output only on failure."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if not line.startswith("WARNING: Location")]
        raise subprocess.CalledProcessError(result.returncode, command, result.stdout, "\n".join(errors))


def no_wheel_reason(target: Target, distribution: str) -> str | None:
    """Why pip finds no wheel of distribution for target (its last error line), or None when it finds one."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(pip_download_command(target, Path(tmp), [distribution], deps=False),
                                capture_output=True, text=True)
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    return lines[0] if lines else result.stderr.strip()[-300:]
