"""A target's root filesystem as a chroot: proc, dev and sys mounted, the repository, the photos and the
wheels bound read-only, a Raspberry Pi /proc/cpuinfo; everything unmounted again, also on failure."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import threading
from pathlib import Path

_running: set[subprocess.Popen] = set()
_lock = threading.Lock()
stopping = threading.Event()
"""Set by stop_everything(): no new command starts inside any chroot."""


class Stopped(Exception):
    """The run is being stopped (a signal): the command was not started or was killed."""


def stop_everything() -> None:
    """Kill every command running inside a chroot (their whole process groups) and start no new ones."""
    stopping.set()
    with _lock:
        for process in list(_running):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below root, deepest first (read from /proc/self/mounts)."""
    root_text = str(root.resolve())
    found = []
    with open("/proc/self/mounts") as table:
        for line in table:
            point = line.split()[1].replace("\\040", " ")
            if point == root_text or point.startswith(root_text + "/"):
                found.append(point)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def unmount_all(root: Path) -> list[str]:
    """Unmount everything at or below root (a lazy unmount when a busy one refuses); returns what is left."""
    for point in mounts_under(root):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "--lazy", point], capture_output=True)
    return mounts_under(root)


def remove_root(root: Path) -> None:
    """Delete a target's root filesystem folder, never while anything is mounted below it (a bound /dev
    or repository would be deleted with it).

    Raises:
        RuntimeError: something is still mounted below root.
    """
    if not root.exists():
        return
    left = unmount_all(root)
    if left:
        raise RuntimeError(f"not deleting {root}: still mounted: {', '.join(left)}")
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)


class Chroot:
    """Mounts on enter, unmounts on exit (whatever happened); run() executes a command inside with a
    clean environment and QEMU_CPU set.

    Args:
        root: the unpacked root filesystem.
        binds: {path inside: host path} bound read-only (folders or files).
        cpuinfo: host file bound over /proc/cpuinfo.
        qemu_cpu: QEMU_CPU for every process inside.
    """

    def __init__(self, root: Path, binds: dict[str, Path], cpuinfo: Path, qemu_cpu: str):
        self.root = root.resolve()
        self.binds = binds
        self.cpuinfo = cpuinfo
        self.qemu_cpu = qemu_cpu

    def __enter__(self) -> "Chroot":
        try:
            self._mount()
        except BaseException:
            unmount_all(self.root)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        left = unmount_all(self.root)
        if left:
            raise RuntimeError(f"could not unmount {', '.join(left)}")

    def _mount(self) -> None:
        root = self.root

        def mount(*args: str) -> None:
            subprocess.run(["mount", *args], check=True, capture_output=True)

        mount("-t", "proc", "proc", str(root / "proc"))
        mount("--bind", str(self.cpuinfo), str(root / "proc/cpuinfo"))
        mount("--bind", "/dev", str(root / "dev"))
        (root / "dev/shm").mkdir(exist_ok=True)
        mount("-t", "tmpfs", "-o", "mode=1777", "shm", str(root / "dev/shm"))  # a private /dev/shm
        mount("--bind", "/sys", str(root / "sys"))
        mount("-o", "remount,bind,ro", str(root / "sys"))
        for inside, host in self.binds.items():
            point = root / inside.lstrip("/")
            if host.is_dir():
                point.mkdir(parents=True, exist_ok=True)
            else:
                point.parent.mkdir(parents=True, exist_ok=True)
                point.touch()
            mount("--bind", str(host), str(point))
            mount("-o", "remount,bind,ro", str(point))

    def run(self, command: list[str], cwd: str = "/root", env: dict[str, str] | None = None, log=None,
            timeout: float = 1800, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run command inside, with only PATH, HOME, LANG, QEMU_CPU and env set; output to log (a LogFile) or captured."""
        clean = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8", "QEMU_CPU": self.qemu_cpu}
        clean |= env or {}
        # env -C must come before the assignments; QEMU_CPU is also set for env itself.
        argv = ["chroot", str(self.root), "/usr/bin/env", "-i", "-C", cwd,
                *(f"{k}={v}" for k, v in clean.items()), *command]
        if log is not None:
            log(f"$ {shlex.join(command)}")
        if stopping.is_set():
            raise Stopped(shlex.join(command))
        # Its own process group, so that stop_everything() also ends what the command started.
        process = subprocess.Popen(
            argv, env={"QEMU_CPU": self.qemu_cpu, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, text=True, start_new_session=True,
            stdout=log.file if log is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
        )
        with _lock:
            _running.add(process)
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            if log is not None:
                log(f"(killed after {timeout:.0f} s)")
        finally:
            with _lock:
                _running.discard(process)
        if stopping.is_set():
            raise Stopped(shlex.join(command))
        return subprocess.CompletedProcess(command, process.returncode, out, err)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
