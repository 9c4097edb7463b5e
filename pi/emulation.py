"""Whether this machine can run the emulated Pis (qemu-user through binfmt_misc, chroot as root), and
turning binfmt_misc on when it can."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BINFMT = Path("/proc/sys/fs/binfmt_misc")
#: The Debian packages make test-pi needs (.ci/run installs the first three; zstd, for the cached
#: tarballs, is in the machine's base image).
PACKAGES = "qemu-user-static binfmt-support mmdebstrap zstd"
ENTRIES = ("qemu-aarch64", "qemu-arm")


def registered(entry: str, binfmt: Path = BINFMT) -> bool:
    """binfmt_misc has entry, enabled, with the F flag (the interpreter opened at registration, so it
    also works inside a chroot that has no qemu binary)."""
    path = binfmt / entry
    try:
        text = path.read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("flags:")), "")
    return text.startswith("enabled") and "F" in flags


def why_not(uid: int | None = None, which=shutil.which, binfmt: Path = BINFMT) -> str | None:
    """None when make test-pi can run here, else one line saying why not and how to enable it."""
    uid = os.getuid() if uid is None else uid
    missing = [tool for tool in ("mmdebstrap", "qemu-aarch64-static", "qemu-arm-static", "chroot", "zstd") if which(tool) is None]
    if missing:
        return (f"no {', '.join(missing)}: as root, apt-get install {PACKAGES} (then make test-pi)")
    if uid != 0:
        # The chroots and their mounts need root whatever binfmt_misc says.
        ready = all(registered(e, binfmt) for e in ENTRIES)
        return ("needs root for the chroots and mounts" + (" (binfmt_misc is registered)" if ready else "")
                + ": run sudo make test-pi")
    return None


def enable_binfmt(binfmt: Path = BINFMT) -> None:
    """Mount binfmt_misc if needed and enable the qemu entries (root only; update-binfmts from binfmt-support).

    Raises:
        RuntimeError: an entry is still not usable afterwards.
    """
    if not (binfmt / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], check=False, capture_output=True)
    for entry in ENTRIES:
        if not registered(entry, binfmt):
            subprocess.run(["update-binfmts", "--enable", entry], check=False, capture_output=True)
    broken = [e for e in ENTRIES if not registered(e, binfmt)]
    if broken:
        raise RuntimeError(f"binfmt_misc cannot run {', '.join(broken)} (update-binfmts --enable failed; "
                           f"is {binfmt} mountable here?)")
