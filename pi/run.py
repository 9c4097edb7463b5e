"""make test-pi: for each emulated target, unpack its root filesystem, install the environments from wheels
downloaded on the host, run tests/edge and an end-to-end classification inside, and compare with x86."""

from __future__ import annotations

import heapq
import itertools
import os
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import compare, rootfs
from .chroot import Chroot, Stopped, remove_root, stopping, unmount_all
from .targets import CLICK, COVERED_BY_END_TO_END, EMULATION_FAILURES, NATIVE_ONLY, NATIVE_ONLY_TESTS, Environment, Target

REPO = Path(__file__).resolve().parent.parent
CPUINFO = Path(__file__).resolve().parent / "cpuinfo"


class Log:
    """One target's log file; lines also go to the terminal with the target's name in front."""

    _lock = threading.Lock()

    def __init__(self, path: Path, name: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.name = name
        self.file = path.open("w", buffering=1)

    def __call__(self, line: str, echo: bool = False) -> None:
        self.file.write(line + "\n")
        if echo:
            with Log._lock:
                print(f"[{self.name}] {line}", flush=True)

    def say(self, line: str) -> None:
        self(line, echo=True)


@dataclass
class EnvResult:
    """What one environment inside a target did."""

    name: str
    note: str
    runtime: str
    python: str = ""
    numpy: str = ""
    runtime_version: str = ""
    install_s: float = 0.0
    tests: dict = field(default_factory=dict)
    """junit counts: tests, passed, failed, errors, skipped; seconds."""
    e2e: dict = field(default_factory=dict)
    """The end-to-end comparison with x86 (compare.Agreement fields), seconds."""
    checks: list = field(default_factory=list)
    """[name, passed, detail] of the checks written for this environment."""

    @property
    def ok(self) -> bool:
        tests_ok = not self.tests or (self.tests.get("failed", 1) == 0 and self.tests.get("errors", 1) == 0)
        return tests_ok and self.e2e.get("ok", True) and all(passed for _, passed, _ in self.checks)


@dataclass
class TargetResult:
    name: str
    title: str
    qemu_cpu: str
    rootfs_build_s: float = 0.0
    unpack_s: float = 0.0
    total_s: float = 0.0
    environments: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    """What a user of a broken target sees (catdog-edge's own words), for the report."""
    error: str = ""

    broken: str = ""

    @property
    def ok(self) -> bool:
        """Everything passed; on a target known to be broken, its own checks (why it is broken) passed."""
        works = self.broken or all(e.ok for e in self.environments)
        return bool(not self.error and works and all(passed for _, passed, _ in self.checks))


@dataclass(frozen=True)
class Plan:
    """Everything a run needs from the host."""

    wheel: Path
    data: Path
    photos: tuple[str, ...]
    """Photo paths relative to data (val/cat/cat.4001.jpg, ...) classified end to end."""
    references: dict
    """{runtime: {photo_key: record}}: the x86 answers."""
    scale: float
    threshold: float
    cache: Path
    work: Path
    tests: tuple[str, ...] = ()
    """What every environment's pytest run collects instead of its own selection (Environment.tests),
    relative to the checkout (python -m pi run --tests, to rerun one failure)."""


def cpuinfo_file(target: Target, work: Path) -> Path:
    """The target's /proc/cpuinfo, one processor block per host core (see pi/cpuinfo/README.md)."""
    block, _, board = (CPUINFO / target.cpuinfo).read_text().partition("---\n")
    text = "\n".join(block.replace("{n}", str(n)) for n in range(os.cpu_count() or 1)) + "\n" + board
    path = work / f"{target.name}.cpuinfo"
    path.write_text(text)
    return path


def pick_photos(data: Path, count: int) -> list[str]:
    """A fixed subset of val/: every k-th photo of each label in name order, count in all (0: every photo)."""
    chosen = []
    for label in ("cat", "dog"):
        names = sorted(p.name for p in (data / "val" / label).glob("*.jpg"))
        if count:
            step = max(1, len(names) // (count // 2))
            names = names[::step][: count // 2]
        chosen += [f"val/{label}/{n}" for n in names]
    return chosen


def junit_counts(path: Path) -> dict:
    """Counts from pytest's --junitxml report."""
    suite = ElementTree.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    return {"tests": counts["tests"], "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed": counts["failures"], "errors": counts["errors"], "skipped": counts["skipped"],
            "failing": failed, "seconds": round(float(suite.get("time", 0)), 1)}


def install(chroot: Chroot, env: Environment, wheel_name: str, log: Log) -> list:
    """Create env's venv and install catdog's wheel (and the rest) offline from /wheels/<env>.

    Returns:
        checks: for an environment with an offer, what pip would install without env's requirements.
    """
    venv = ["python3", "-m", "venv"] + (["--system-site-packages"] if env.system_site_packages else [])
    check(chroot.run(venv + [env.venv], log=log), f"{env.name}: python3 -m venv")
    pip = [f"{env.venv}/bin/pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir",
           "--no-compile", "--no-index", "--find-links", f"/wheels/{env.name}"]
    spec = f"/dist/{wheel_name}" + (f"[{env.extras}]" if env.extras else "")
    checks = []
    if env.offer:  # the line without the pin, resolved only (--dry-run): what a user would get
        plain = chroot.run([p for p in pip if p != "--quiet"] + ["--dry-run", spec])
        would = next((line for line in plain.stdout.splitlines() if line.startswith("Would install")), "nothing")
        changed = sorted(w for w in would.split()[2:] if w.split("-")[0] in ("numpy", "ml_dtypes", "ml-dtypes"))
        checks.append([f"without {' '.join(env.requirements)}: pip would install {', '.join(changed) or 'no numpy'}",
                       True, would])
    if env.extras:  # the user's one line: the wheel with its extras and env's requirements
        check(chroot.run(pip + [spec, *env.requirements], log=log), f"{env.name}: pip install catdog")
        return checks
    if env.requirements or env.no_deps:
        check(chroot.run(pip + [*env.requirements, *env.no_deps], log=log), f"{env.name}: pip install")
    check(chroot.run(pip + ["--no-deps", spec], log=log), f"{env.name}: pip install catdog --no-deps")
    return checks


class StepFailed(Exception):
    """A set-up step inside a target failed (the log has its output)."""


def check(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        raise StepFailed(f"{what} exited {result.returncode}")
    return result


def probe(chroot: Chroot, python: str, code: str) -> str:
    """What a line of Python prints inside the target (stdout, stripped; the error when it fails)."""
    result = chroot.run([python, "-c", code])
    return result.stdout.strip() if result.returncode == 0 else f"error: {result.stderr.strip().splitlines()[-1:]}"


def set_up_environment(chroot: Chroot, env: Environment, plan: Plan, log: Log) -> EnvResult:
    """Install env and run the checks of its set-up (numpy, a few photos where there is no end-to-end run)."""
    result = EnvResult(name=env.name, note=env.note, runtime=env.runtime)
    start = time.monotonic()
    result.checks += install(chroot, env, plan.wheel.name, log)
    result.install_s = round(time.monotonic() - start, 1)
    python = f"{env.venv}/bin/python"
    result.python = probe(chroot, python, "import platform; print(platform.python_version())")
    result.numpy = probe(chroot, python, "import numpy; print(numpy.__version__)")
    module = {"litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime"}[env.runtime]
    result.runtime_version = probe(chroot, python, f"from importlib.metadata import version; print(version('{module}'))")
    log.say(f"{env.name}: installed in {result.install_s} s (Python {result.python}, numpy {result.numpy}, "
            f"{module} {result.runtime_version})")

    if env.system_site_packages:  # apt's numpy must stay (numpy 2 over it breaks picamera2's simplejpeg)
        apt_numpy = probe(chroot, "/usr/bin/python3", "import numpy; print(numpy.__version__, numpy.__file__)")
        mine = probe(chroot, python, "import numpy; print(numpy.__version__, numpy.__file__)")
        result.checks.append(["pip kept apt's numpy", mine == apt_numpy, f"apt: {apt_numpy}; venv: {mine}"])
    if not env.e2e:  # a few photos with this set-up's numpy
        said = chroot.run([f"{env.venv}/bin/catdog-edge", "classify", "--format", "json", "--runtime", env.runtime,
                           *(f"/data/{p}" for p in plan.photos[:2] + plan.photos[-2:])])
        records = compare.read_records(said.stdout or "")
        agreement = compare.compare(records, {k: plan.references[env.runtime][k] for k in records}, plan.scale)
        result.checks.append([f"classifies with this numpy ({len(records)} photos)", said.returncode == 0 and
                              len(records) == 4 and agreement.ok, f"exit {said.returncode}; {agreement.summary()}"])
    return result


class Slots:
    """At most n emulated steps (a tests/edge run, an end-to-end run) at once, one per host core; a freed
    slot goes to the waiting step of the lowest rank, so the longest work starts first."""

    def __init__(self, n: int):
        self._free = n
        self._waiting: list[tuple] = []
        self._tickets = itertools.count()
        self._changed = threading.Condition()

    @property
    def waiting(self) -> int:
        """Steps waiting for a slot."""
        with self._changed:
            return len(self._waiting)

    @contextmanager
    def hold(self, rank: tuple):
        """Wait for a free slot (steps of a lower rank first, then in the order they asked) and keep it
        for the with block.

        Raises:
            Stopped: the run is being stopped while this step waits.
        """
        with self._changed:
            ticket = (*rank, next(self._tickets))
            heapq.heappush(self._waiting, ticket)
            while not (self._free and self._waiting[0] == ticket):
                if stopping.is_set():
                    self._waiting.remove(ticket)
                    heapq.heapify(self._waiting)
                    self._changed.notify_all()
                    raise Stopped("waiting for a free core")
                self._changed.wait(timeout=1.0)
            heapq.heappop(self._waiting)
            self._free -= 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._free += 1
                self._changed.notify_all()


def run_tests(chroot: Chroot, target: Target, env: Environment, plan: Plan, log: Log, result: EnvResult) -> None:
    """tests/edge in an installed environment (every environment of the target is installed first: the
    litert one's cross-runtime test calls the legacy one's catdog-edge)."""
    python = f"{env.venv}/bin/python"
    out = f"/root/out/{env.name}-junit.xml"
    legacy = next((e for e in target.environments if e.runtime == "tflite-runtime" and e is not env), None)
    extra = {"CATDOG_LEGACY_EDGE": f"{legacy.venv}/bin/catdog-edge"} if legacy else {}
    # No CI=true inside: the root filesystems have no mosquitto or Chromium, whose tests then skip
    # (they run natively in make test); a failure of this driver's own checks still fails the run.
    variables = {"CATDOG_INSTALLED": "1", "CATDOG_DATA": "/data", "CATDOG_NOTHING": "/nothing/photos", "CATDOG_EMULATED": "1",
                 "CATDOG_PI_DURATIONS": f"/root/out/{env.name}-durations.txt", **extra}
    # cwd outside the read-only repository: hypothesis keeps its database in the working directory.
    # The plugin is copied there (python -m puts the cwd on sys.path): a PYTHONPATH naming the checkout
    # would leak into the tests' subprocesses and let them import the checkout's edge/ folder.
    run_dir = f"/root/run-{env.name}"
    chroot.run(["mkdir", "-p", "/root/out", run_dir])
    shutil.copy(Path(__file__).with_name("pytest_emulated.py"), chroot.root / run_dir.lstrip("/") / "catdog_pi_plugin.py")
    selection = plan.tests or env.tests
    chroot.run([python, "-m", "pytest", *(f"/catdog/{t}" for t in selection), "-p", "no:cacheprovider", "-p", "catdog_pi_plugin", "-q", "-rfEs",
                *(f"--ignore-glob=/catdog/{pattern}" for pattern in NATIVE_ONLY),
                *(f"--deselect={test}" for test in EMULATION_FAILURES + COVERED_BY_END_TO_END + tuple(NATIVE_ONLY_TESTS)),  # relative to the rootdir
                "--durations=5", f"--junitxml={out}"], cwd=f"/root/run-{env.name}", env=variables, log=log,
               timeout=2400)
    report = chroot.root / out.lstrip("/")
    result.tests = junit_counts(report) if report.is_file() else {"failed": 1, "errors": 1, "failing": ["no report"]}
    durations = chroot.root / variables["CATDOG_PI_DURATIONS"].lstrip("/")
    if durations.is_file():  # kept beside the log: the root filesystem is deleted after the run
        shutil.copy(durations, log.path.parent / f"{target.name}-{env.name}-durations.txt")
    t = result.tests
    log.say(f"{env.name}: tests/edge ({len(selection)} module(s) or paths) {t.get('passed')} passed, {t.get('failed')} failed, {t.get('errors')} errors, "
            f"{t.get('skipped')} skipped in {t.get('seconds')} s" + (f": {t['failing']}" if t.get("failing") else ""))


def run_steps(chroot: Chroot, target: Target, ready: list, plan: Plan, slots: Slots, rank: dict, log: Log) -> None:
    """Each installed environment's tests/edge run and end-to-end run, as separate steps that may run at
    once (in their own processes and files), each holding one of the slots while it runs: every waiting
    tests/edge step before any end-to-end step, and among each kind the target of the lowest rank[kind]."""
    steps = [(env, result, kind) for env, result in ready for kind in ("tests", "e2e") if getattr(env, kind)]

    def step(env: Environment, result: EnvResult, kind: str) -> None:
        with slots.hold((kind != "tests", rank[kind])):
            if kind == "tests":
                run_tests(chroot, target, env, plan, log, result)
            else:
                result.e2e = end_to_end(chroot, env, plan, log)

    if steps:
        with ThreadPoolExecutor(max_workers=len(steps)) as pool:
            for future in [pool.submit(step, *s) for s in steps]:
                future.result()
    for env, result in ready:
        for name, passed, detail in result.checks:
            log.say(f"{env.name}: {'ok  ' if passed else 'FAIL'} {name}: {detail}")


def spread(photos: tuple[str, ...], count: int) -> tuple[str, ...]:
    """count of photos taken evenly over the whole list (pick_photos lists each label's in turn), all when
    count is 0 or not smaller."""
    if not count or count >= len(photos):
        return tuple(photos)
    return tuple(photos[i * len(photos) // count] for i in range(count))


def end_to_end(chroot: Chroot, env: Environment, plan: Plan, log: Log) -> dict:
    """Classify plan.photos (env.e2e_photos of them, spread over the set) inside with env's runtime and compare
    with the x86 run of the same runtime."""
    photos = spread(plan.photos, env.e2e_photos)
    chroot.run(["mkdir", "-p", "/root/out"])
    listing = chroot.root / f"root/out/{env.name}-photos.txt"
    listing.write_text("".join(f"/data/{p}\n" for p in photos))
    out = f"/root/out/{env.name}-classify.jsonl"
    start = time.monotonic()
    done = chroot.run(["/bin/sh", "-c", f"{env.venv}/bin/catdog-edge classify --format json --runtime {env.runtime} "
                       f"--model /catdog/models/catdog.tflite - < /root/out/{env.name}-photos.txt > {out}"], log=log,
                      timeout=3600)
    seconds = round(time.monotonic() - start, 1)
    records = compare.read_records((chroot.root / out.lstrip("/")).read_text())
    keys = {compare.photo_key(p) for p in photos}
    reference = {key: record for key, record in plan.references[env.runtime].items() if key in keys}
    agreement = compare.compare(records, reference, plan.scale, plan.threshold)
    log.say(f"{env.name}: end to end, {len(photos)} photos in {seconds} s emulated: "
            f"{agreement.summary()} against x86 {env.runtime} (exit {done.returncode})")
    return asdict(agreement) | {"agreement": round(agreement.agreement, 4), "ok": agreement.ok and done.returncode == 0,
                                "seconds": seconds, "exit": done.returncode}


def target_checks(chroot: Chroot, target: Target, plan: Plan, log: Log, no_wheels: dict) -> list:
    """Checks of the target as a whole: its CPU, and for each distribution it has no wheel of, that
    catdog-edge without a runtime says what to install."""
    checks = []
    machine = probe(chroot, "/usr/bin/python3", "import platform; print(platform.machine())")
    checks.append(["emulated machine", machine == target.machine, f"platform.machine() = {machine}"])
    for distribution in target.cannot:
        reason = no_wheels.get(distribution)
        checks.append([f"PyPI has no {distribution} wheel for {target.machine}", reason is not None, reason or "found one"])
    if "pillow>=10" in target.cannot:  # what apt has instead
        pil = probe(chroot, "/usr/bin/python3", "import PIL; print(PIL.__version__)")
        checks.append(["apt's Pillow is older than catdog's pillow>=10", pil.split(".")[0].isdigit() and int(pil.split(".")[0]) < 10,
                       f"python3-pil {pil}"])
    for distribution in [d for d in target.cannot if d == "ai-edge-litert"]:
        # A user whose pip install of [edge] failed, with catdog installed --no-deps and no runtime yet:
        env = target.environments[0]
        bare = "/opt/catdog/no-runtime"
        chroot.run(["python3", "-m", "venv", "--system-site-packages", bare], log=log)
        chroot.run([f"{bare}/bin/pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                    "--find-links", f"/wheels/{env.name}", CLICK], log=log)
        chroot.run([f"{bare}/bin/pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    f"/dist/{plan.wheel.name}"], log=log)
        said = chroot.run([f"{bare}/bin/catdog-edge", "classify", "/data/val/cat/cat.4001.jpg"])
        message = (said.stderr or "").strip()
        passed = said.returncode == 2 and "tflite-runtime" in message and len(message.splitlines()) == 1
        checks.append(["catdog-edge without a runtime says what to install", passed,
                       f"exit {said.returncode}: {message}"])
    for name, passed, detail in checks:
        log.say(f"{'ok  ' if passed else 'FAIL'} {name}: {detail}")
    return checks


def run_target(target: Target, plan: Plan, tarball: Path, wheel_dirs: dict, no_wheels: dict, log: Log, slots: Slots,
               rank: dict) -> TargetResult:
    """Unpack target's root filesystem, install its environments, run their steps (holding slots, with
    rank {"tests": n, "e2e": n}: lower goes first among steps of that kind), and unmount everything, also on failure."""
    result = TargetResult(name=target.name, title=target.title, qemu_cpu=target.qemu_cpu, broken=target.broken)
    start = time.monotonic()
    root = plan.work / target.name / "root"
    try:
        remove_root(root)
        rootfs.unpack(tarball, root)
        result.unpack_s = round(time.monotonic() - start, 1)
        binds = {"/catdog": REPO, "/data": plan.data, "/dist": plan.wheel.parent}
        if (plan.data.parent / "nothing").is_dir():  # the photos of empty scenes, beside the cat/dog set
            binds["/nothing"] = plan.data.parent / "nothing"
        binds |= {f"/wheels/{env.name}": wheel_dirs[env.name] for env in target.environments}
        with Chroot(root, binds, cpuinfo_file(target, plan.work), target.qemu_cpu) as chroot:
            result.checks = target_checks(chroot, target, plan, log, no_wheels)
            if target.broken:  # what a user of this set-up sees
                env = target.environments[0]
                install(chroot, env, plan.wheel.name, log)
                said = chroot.run([f"{env.venv}/bin/catdog-edge", "classify", f"/data/{plan.photos[0]}"])
                lines = (said.stderr or "").strip().splitlines()
                result.notes.append(f"catdog-edge classify: exit {said.returncode}, last line: {lines[-1] if lines else ''}")
                log.say(f"known broken: {target.broken}; {result.notes[-1]}")
                chroot.run(["rm", "-rf", env.venv])
            ready = []
            for env in target.environments:
                try:
                    ready.append((env, set_up_environment(chroot, env, plan, log)))
                except StepFailed as exc:
                    log.say(f"FAIL {exc} (see {log.path})")
                    result.environments.append(EnvResult(name=env.name, note=env.note, runtime=env.runtime,
                                                         checks=[["set-up", False, str(exc)]]))
            run_steps(chroot, target, ready, plan, slots, rank, log)
            result.environments += [env_result for _, env_result in ready]
    except Exception as exc:  # Stopped included: the target fails, its mounts are still undone below
        result.error = f"{type(exc).__name__}: {exc}"
        log.say(f"FAIL {result.error}")
    finally:
        left = unmount_all(root)
        if left:
            result.error = result.error or f"left mounted: {left}"
        elif not os.environ.get("CATDOG_PI_KEEP"):
            remove_root(root)
    result.total_s = round(time.monotonic() - start, 1)
    return result
