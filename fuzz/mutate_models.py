"""Mutation run over the default model: can a damaged copy of it crash catdog-edge, on either runtime?

Each mutant is a recipe, (seed, operation), applied to a copy of models/catdog.tflite (--base):
flipped bits anywhere, flipped bits outside the weights, a cut, a chunk of random bytes, a chunk of
zeros (the operations of issue 28's run), or an edit of one flatbuffer field (a tensor's shape, type
or buffer, a buffer's size, an operator's or subgraph's tensor index, an operator code). The mutant
is written with the model's contract beside it and goes through `catdog-edge info` and
`catdog-edge classify PHOTO`, each in a child process, once per Python given (one per runtime:
.venv has ai-edge-litert, .venv-legacy tflite-runtime 2.14). Each run is counted as:

- crash: the process died of a signal (a segfault, glibc's "double free or corruption" abort);
- hang: no exit within --timeout seconds;
- refused: exit 2 with exactly one `error:` line on stderr (what a damaged model must give); counted
  apart when catdog.edge.modelprobe's child saw the runtime crash, hang or fail (the damage
  edge.modelcheck let through);
- ran: exit 0 (the damage was harmless, e.g. a flipped bit in a weight);
- other: anything else (a traceback, several lines, another exit code): a bug too.

Deterministic: mutant i is the recipe (--seed + i, the i-th of --operations in turn), and
`mutate(base, seed, operation)` rebuilds it, so a test can keep a recipe instead of a file. The
children run with a fresh model-probe cache ($XDG_CACHE_HOME in a temporary folder). The runs of
each Python are forks of one worker that has imported catdog-edge and its runtime once (the same
code as the console script, without a new interpreter's start-up per run).

    .venv/bin/python fuzz/mutate_models.py --count 600 --python .venv/bin/python --python .venv-legacy/bin/python

`make test` builds .venv-legacy from the wheel; by hand: python3.11 -m venv .venv-legacy &&
.venv-legacy/bin/pip install 'numpy<2' 'tflite-runtime==2.14.*' pillow 'click>=8.4' &&
.venv-legacy/bin/pip install --no-deps -e .
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "models" / "catdog.tflite"
PHOTO = Path(os.environ.get("CATDOG_DATA", ROOT.parent / "shared" / "datasets" / "catdog")) / "val" / "cat" / "cat.4001.jpg"

#: What a recipe can do to the file; a run cycles through them in this order.
OPERATIONS = ("flip", "flip_tables", "cut", "random_chunk", "zero_chunk",
              "shape", "type", "buffer", "data_len", "op_index", "opcode", "io")

#: Runs catdog-edge's entry point (catdog.edge.cli.run) in a forked child per request line (a JSON
#: argv); answers one JSON line {"code": exit code or -signal, "stderr": what the child wrote there}.
WORKER = r"""
import json, os, signal, sys, tempfile
import catdog.edge.cli, catdog.edge.classify, catdog.edge.modelcheck, catdog.edge.runtime
catdog.edge.runtime.find_runtime()  # the interpreter package imported once, before the forks
timeout = int(sys.argv[1])
for line in sys.stdin:
    argv = json.loads(line)
    with tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(err.fileno(), 2)
            signal.alarm(timeout)  # a hang ends as SIGALRM
            code = 0
            try:
                catdog.edge.cli.run(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        err.seek(0)
        print(json.dumps({"code": code, "stderr": err.read().decode(errors="replace")}), flush=True)
"""


def structure(data: bytes) -> dict[str, list[int]]:
    """Positions of the fields the edits change, and the spans of the buffers' data ("weights"),
    found with catdog's own bounded reader."""
    from catdog.edge._flatbuffer import open_model

    r, root = open_model(data, "base")
    found: dict[str, list[int]] = {k: [] for k in ("shape", "type", "buffer", "data_len", "op_index", "opcode", "io", "weights")}
    for slot in r.vector(root, 4):
        pos = r.field_pos(r.deref(slot), 0)
        if pos is not None:
            found["data_len"].append(r.deref(pos))
            start, size = r.span(pos)
            found["weights"].append((start, start + size))
    for sg_slot in r.vector(root, 2):
        sg = r.deref(sg_slot)
        for t_slot in r.vector(sg, 0):
            t = r.deref(t_slot)
            found["shape"] += list(r.vector(t, 0))
            for key, field in (("type", 1), ("buffer", 2)):
                if r.field_pos(t, field) is not None:
                    found[key].append(r.field_pos(t, field))
        for field in (1, 2):
            found["io"] += list(r.vector(sg, field))
        for op_slot in r.vector(sg, 3):
            op = r.deref(op_slot)
            if r.field_pos(op, 0) is not None:
                found["opcode"].append(r.field_pos(op, 0))
            for field in (1, 2):
                found["op_index"] += list(r.vector(op, field))
    return found


def mutate(data: bytes, seed: int, operation: str) -> bytes:
    """The mutant of a recipe: `operation` (one of OPERATIONS) done with random.Random(seed) to data."""
    rng = random.Random(seed)
    out = bytearray(data)
    if operation == "flip":
        for _ in range(rng.randint(1, 16)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    elif operation == "flip_tables":  # outside the weights: the tables, vectors and strings the runtime follows
        weights = sorted(structure(data)["weights"])
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(out))
            while any(start <= pos < end for start, end in weights):
                pos = rng.randrange(len(out))
            out[pos] ^= 1 << rng.randrange(8)
    elif operation == "cut":
        out = out[: rng.randrange(len(out))]
    elif operation in ("random_chunk", "zero_chunk"):
        size = rng.choice([rng.randint(1, 16), rng.randint(16, 4096)])
        pos = rng.randrange(len(out) - size)
        out[pos:pos + size] = bytes(size) if operation == "zero_chunk" else rng.randbytes(size)
    elif operation == "type":
        out[rng.choice(structure(data)["type"])] = rng.choice([0, 1, 2, 4, 5, 9, 13, 17, 18, 40, 255])
    elif operation in OPERATIONS:
        pos = rng.choice(structure(data)[operation])
        values32 = [0, 1, 2, 3, 7, 255, 1 << 16, 1 << 24, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000]
        struct.pack_into("<I", out, pos, rng.choice(values32 + [rng.randrange(1 << 32), rng.randrange(64)]))
    else:
        raise ValueError(f"unknown operation {operation!r}; one of {', '.join(OPERATIONS)}")
    return bytes(out)


def outcome(code: int, stderr: str) -> str:
    """crash, hang, refused, ran or other (see the module's docstring)."""
    lines = stderr.strip().splitlines()
    if code == -14:
        return "hang"
    if code < 0:
        return "crash"
    if code == 0:
        return "ran"
    if code != 2 or len(lines) != 1 or not lines[0].startswith("error: "):
        return "other"
    for said, why in (("runtime crashed", "crash"), ("did not finish", "hang"), ("failed to load and run", "error")):
        if said in lines[0]:
            return f"refused (probe: {why})"
    return "refused"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600, help="mutants (each runs twice per Python)")
    parser.add_argument("--seed", type=int, default=28)
    parser.add_argument("--base", type=Path, default=BASE, help="the model to mutate (its .json beside it is copied along)")
    parser.add_argument("--photo", type=Path, default=PHOTO)
    parser.add_argument("--timeout", type=int, default=300, help="seconds before a run counts as a hang (above the probe's own 120 s)")
    parser.add_argument("--operations", default=",".join(OPERATIONS), help="comma-separated subset of OPERATIONS to cycle through")
    parser.add_argument("--python", action="append", default=[], help="a Python with catdog and a TFLite runtime (repeat)")
    args = parser.parse_args()
    data = args.base.read_bytes()
    operations = args.operations.split(",")
    unknown = set(operations) - set(OPERATIONS)
    if unknown:
        parser.error(f"unknown operation(s) {', '.join(sorted(unknown))}; choose from {', '.join(OPERATIONS)}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache"), "CATDOG_VERBOSE": "0"}
        workers = {p: subprocess.Popen([os.path.abspath(p), "-c", WORKER, str(args.timeout)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True, env=env, cwd=tmp) for p in args.python or [sys.executable]}
        counts: dict[str, Counter] = {p: Counter() for p in workers}
        path = Path(tmp) / "mutant.tflite"
        if args.base.with_suffix(".json").is_file():
            shutil.copy(args.base.with_suffix(".json"), path.with_suffix(".json"))
        for i in range(args.count):
            seed, operation = args.seed + i, operations[i % len(operations)]
            path.write_bytes(mutate(data, seed, operation))
            for python, worker in workers.items():
                for command in (["info"], ["classify", str(args.photo)]):
                    worker.stdin.write(json.dumps([*command, "-m", str(path)]) + "\n")
                    worker.stdin.flush()
                    answer = json.loads(worker.stdout.readline())
                    got = outcome(answer["code"], answer["stderr"])
                    counts[python][got] += 1
                    if got in ("crash", "hang", "other") or got == "refused (probe: crash)":
                        last = (answer["stderr"].strip().splitlines() or [""])[-1][:160]
                        print(f"  {python} {command[0]}: recipe (seed={seed}, operation={operation!r}) -> {got} "
                              f"({answer['code']}): {last}", flush=True)
            if (i + 1) % 50 == 0:
                print(f"{i + 1} mutants: " + "; ".join(f"{p} {dict(sorted(c.items()))}" for p, c in counts.items()), flush=True)
        for python, worker in workers.items():
            worker.stdin.close()
            worker.wait()
            print(python, f"{args.count} mutants x (info, classify):", dict(sorted(counts[python].items())))


if __name__ == "__main__":
    main()
