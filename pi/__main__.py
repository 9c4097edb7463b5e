"""python -m pi check | prepare | run | report: the emulated Raspberry Pi targets (make test-pi; docs/pi.md)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

from . import compare, emulation, mirror, rootfs, wheels
from .chroot import stop_everything, unmount_all
from .run import REPO, Log, Plan, Slots, pick_photos, run_target
from .targets import TARGETS, target_named

CACHE = Path(os.environ.get("CATDOG_PI_CACHE", Path.home() / ".cache" / "catdog"))
OUT = REPO / "pi" / "out"


def x86_reference(edge: Path, runtime: str, data: Path, photos: list[str]) -> dict:
    """The x86 answers of one runtime: catdog-edge classify --format json of the same photos on this machine."""
    result = subprocess.run([str(edge), "classify", "--format", "json", "--runtime", runtime, "-",
                             "--model", str(REPO / "models" / "catdog.tflite")],
                            input="".join(f"{data / p}\n" for p in photos), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"x86 reference with {edge} --runtime {runtime} failed: {result.stderr.strip()[-500:]}")
    return compare.read_records(result.stdout)


def output_scale(model_json: Path) -> tuple[float, float]:
    contract = json.loads(model_json.read_text())
    return contract["output_quantization"]["scale"], contract.get("threshold", 0.5)


def chosen_targets(names: str) -> list:
    """The targets named (comma-separated), or every target when names is empty."""
    return [target_named(n) for n in names.split(",")] if names else list(TARGETS)


def debian_mirror() -> str:
    """Where mmdebstrap downloads from: $CATDOG_PI_MIRROR, else this machine's apt mirror."""
    return os.environ.get("CATDOG_PI_MIRROR") or mirror.machine_mirror()


def command_check(args) -> int:
    reason = emulation.why_not()
    if reason:
        print(reason)
        return 1
    return 0


def command_prepare(args) -> int:
    """Build the missing root filesystems, all at once (make test runs this beside the native tests, so a
    cold machine's builds, mostly downloads and emulated dpkg runs, overlap them). Nothing to do, or a
    machine that cannot emulate, is not an error here: make test-pi says so, and builds what is still missing."""
    reason = emulation.why_not()
    if reason:
        return 0
    emulation.enable_binfmt()
    targets = chosen_targets(args.targets)
    source = debian_mirror()

    def one(target) -> bool:
        log = Log(OUT / f"{target.name}-rootfs.log", target.name)
        try:
            tarball, built = rootfs.ensure_tarball(target, source, CACHE / "pi-rootfs", log)
        except Exception as exc:
            log.say(f"root filesystem not built: {exc} (see {log.path}; make test-pi tries again)")
            return False
        if built:
            log.say(f"root filesystem {tarball.name} built in {built:.0f} s")
        return True

    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        list(pool.map(one, targets))
    return 0


def command_run(args) -> int:
    reason = emulation.why_not()
    if reason:
        print(f"make test-pi cannot run here: {reason}", file=sys.stderr)
        return 1
    emulation.enable_binfmt()
    targets = chosen_targets(args.targets)
    if args.envs:  # only these environments (a quicker look at one set-up)
        wanted = set(args.envs.split(","))
        targets = [replace(t, environments=tuple(e for e in t.environments if e.name in wanted)) for t in targets]
    data = Path(args.data).resolve()
    if not (data / "val").is_dir():
        print(f"no photos at {data}/val (DATA=...)", file=sys.stderr)
        return 1
    wheel = Path(args.wheel).resolve()
    started = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("CATDOG_PI_WORK", CACHE / "pi-work"))
    work.mkdir(parents=True, exist_ok=True)
    for target in targets:  # what a killed earlier run may have left mounted
        unmount_all(work / target.name / "root")

    photos = pick_photos(data, args.photos)
    runtimes = {env.runtime for t in targets for env in t.environments}
    edges = {"litert": Path(args.x86_litert), "tflite-runtime": Path(args.x86_tflite)}
    step = time.monotonic()
    references = {r: x86_reference(edges[r], r, data, photos) for r in sorted(runtimes)}
    print(f"x86 references: {len(photos)} photos with {', '.join(sorted(runtimes))} in {time.monotonic() - step:.0f} s")

    step = time.monotonic()
    wheel_dirs = {t.name: {e.name: wheels.download(t, e, wheel, CACHE / "pi-wheels") for e in t.environments}
                  for t in targets}
    no_wheels = {t.name: {d: wheels.no_wheel_reason(t, d) for d in t.cannot} for t in targets}
    print(f"wheels for {len(targets)} targets ready in {time.monotonic() - step:.0f} s (cached under {CACHE / 'pi-wheels'})")

    scale, threshold = output_scale(REPO / "models" / "catdog.json")
    plan = Plan(wheel=wheel, data=data, photos=tuple(photos), references=references, scale=scale,
                threshold=threshold, cache=CACHE, work=work,
                tests=tuple(t for t in args.tests.split(",") if t))
    source = debian_mirror()

    def one(target):
        log = Log(OUT / f"{target.name}.log", target.name)
        try:
            tarball, built = rootfs.ensure_tarball(target, source, CACHE / "pi-rootfs", log)
        except Exception as exc:
            log.say(f"FAIL root filesystem: {exc} (see {log.path})")
            from .run import TargetResult
            return TargetResult(target.name, target.title, target.qemu_cpu, error=f"rootfs: {exc}")
        log.say(f"root filesystem {tarball.name}: " + (f"built in {built:.0f} s" if built else "cached"))
        result = run_target(target, plan, tarball, wheel_dirs[target.name], no_wheels[target.name], log, slots,
                            rank={"tests": by_tests.index(target), "e2e": order.index(target)})
        result.rootfs_build_s = round(built, 1)
        log.say(f"{'ok' if result.ok else 'FAILED'}{' (known broken)' if result.broken else ''} in {result.total_s:.0f} s (+ {built:.0f} s building the root filesystem)")
        return result

    # Every target is set up at once (root filesystems, installs), while the emulated steps, a tests/edge
    # run or an end-to-end run each, take one of --jobs slots. A freed slot goes to a waiting tests/edge
    # step first, the target with the most test modules first (the longest steps); then to an end-to-end
    # step, in TARGETS' order (the Pi 4's first: the slowest emulated processor, 200 photos).
    order = list(targets)
    by_tests = sorted(targets, key=lambda t: -sum(len(e.tests) for e in t.environments))
    slots = Slots(args.jobs)
    pool = ThreadPoolExecutor(max_workers=len(order))
    try:
        results = list(pool.map(one, order))
    finally:
        stop_everything()  # nothing is left running when this ends early (a signal, an error)
        pool.shutdown(wait=True, cancel_futures=True)
        for target in targets:
            unmount_all(work / target.name / "root")
    results.sort(key=lambda r: [t.name for t in TARGETS].index(r.name))
    elapsed = time.monotonic() - started
    report = {"date": time.strftime("%Y-%m-%d"), "photos": len(photos), "jobs": args.jobs, "wall_s": round(elapsed, 1),
              "cpus": os.cpu_count(), "targets": [asdict(r) | {"ok": r.ok} for r in results]}
    (OUT / "results.json").write_text(json.dumps(report, indent=2))
    print(f"\nmake test-pi: {sum(r.ok for r in results)}/{len(results)} targets passed in {elapsed:.0f} s "
          f"(results: {OUT / 'results.json'}; logs: {OUT}/<target>.log)")
    print(markdown(report))
    for r in results:
        if r.broken:
            print(f"{r.name}: does not work as set up (reported, not failed): {r.broken}")
    counts = [e.tests for r in results if not r.broken for e in r.environments if e.tests]
    failed = sum(c.get("failed", 0) + c.get("errors", 0) for c in counts) + sum(not r.ok for r in results)
    print(f"test-pi: {sum(c.get('passed', 0) for c in counts)} passed, {failed} failed, "
          f"{sum(c.get('skipped', 0) for c in counts)} skipped")  # failed counts failing targets too
    return 0 if all(r.ok for r in results) else 1


def markdown(report: dict) -> str:
    """The rows of docs/tested-on.md's table (emulated targets) from a results.json report."""
    rows = ["| target | environment | Python | runtime | numpy | tests/edge | val agreement with x86 | max difference | install / tests / e2e s |",
            "|---|---|---|---|---|---|---|---|---|"]
    for t in report["targets"]:
        for e in t["environments"]:
            tests = e.get("tests") or {}
            tested = (f"{tests.get('passed')} passed, {tests.get('failed')} failed, {tests.get('skipped')} skipped"
                      if tests else "-")
            e2e = e.get("e2e") or {}
            agree = f"{e2e.get('same_label')}/{e2e.get('photos')}" if e2e else "-"
            diff = f"{e2e.get('max_diff', 0):.4f} ({e2e.get('max_steps')} steps)" if e2e else "-"
            rows.append(f"| {t['name']} | {e['name']} | {e.get('python')} | {e.get('runtime')} {e.get('runtime_version')} | "
                        f"{e.get('numpy')} | {tested} | {agree} | {diff} | {e.get('install_s')} / {tests.get('seconds', '-')} / "
                        f"{e2e.get('seconds', '-')} |")
    return "\n".join(rows)


def command_report(args) -> int:
    print(markdown(json.loads((OUT / "results.json").read_text())))
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pi", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="exit 0 when this machine can run the emulated targets, else print why not")
    run = sub.add_parser("run", help="run every target (make test-pi)")
    run.add_argument("--targets", default="", help="comma-separated target names (default: all)")
    run.add_argument("--envs", default="", help="comma-separated environment names (default: all)")
    run.add_argument("--data", default=str(REPO.parent / "shared" / "datasets" / "catdog"))
    run.add_argument("--wheel", required=True, help="catdog's wheel (make wheel)")
    run.add_argument("--photos", type=int, default=0, help="val/ photos classified end to end (0: all)")
    run.add_argument("--jobs", type=int, default=2, help="emulated steps (tests/edge, end to end) at once: the host's cores")
    run.add_argument("--tests", default="",
                     help="comma-separated test paths or node ids relative to the checkout, run in every environment "
                          "instead of its own selection (default: each environment's, pi/targets.py)")
    run.add_argument("--x86-litert", default=str(REPO / ".venv-edge" / "bin" / "catdog-edge"))
    run.add_argument("--x86-tflite", default=str(REPO / ".venv-legacy" / "bin" / "catdog-edge"))
    sub.add_parser("report", help="print the rows of docs/tested-on.md from pi/out/results.json")
    prepare = sub.add_parser("prepare", help="build the missing root filesystems (make test, beside the native tests)")
    prepare.add_argument("--targets", default="", help="comma-separated target names (default: all)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    return {"check": command_check, "prepare": command_prepare, "run": command_run,
            "report": command_report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
