"""Mutation run over the bundled compact model: which damaged files crash the TFLite runtimes, and
does catdog refuse them first?

Deterministic (a fixed seed). Each mutant (flipped bytes, cuts, and edits of the flatbuffer's own
fields: tensor shapes, types and buffers, buffer sizes, operator and subgraph indices) is judged
by catdog's checks before loading (the contract alone, as before edge.modelcheck; then with
check_model) and is loaded, allocated and invoked by each runtime in a forked child, so a crash
(a signal) is counted instead of ending the run. Prints counts per runtime; keeps the mutants that
catdog accepts and a runtime crashes on in --keep.

    .venv/bin/python fuzz/mutate_models.py --count 400 --python .venv/bin/python --python .venv-legacy/bin/python
"""

from __future__ import annotations

import argparse
import random
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "models" / "catdog-compact.tflite"

WORKER = r"""
import os, sys, signal
import numpy as np
try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    from tflite_runtime.interpreter import Interpreter

def run(path):
    interpreter = Interpreter(model_content=open(path, "rb").read())
    interpreter.allocate_tensors()
    for d in interpreter.get_input_details():
        interpreter.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    interpreter.invoke()

for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        os.close(2)  # the runtime's own messages
        signal.alarm(20)  # a hang ends as SIGALRM
        try:
            run(line.strip())
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    print(code, flush=True)
"""


def structure(data: bytes) -> dict[str, list[int]]:
    """Positions of the fields the mutations edit, found with catdog's own bounded reader."""
    from catdog.edge._flatbuffer import open_model

    r, root = open_model(data, "base")
    found: dict[str, list[int]] = {k: [] for k in ("shape", "type", "buffer", "data_len", "op_index", "opcode", "io", "vec_len")}
    buffers = [r.deref(s) for s in r.vector(root, 4)]
    for b in buffers:
        pos = r.field_pos(b, 0)
        if pos is not None:
            found["data_len"].append(r.deref(pos))
    for sg_slot in r.vector(root, 2):
        sg = r.deref(sg_slot)
        for t_slot in r.vector(sg, 0):
            t = r.deref(t_slot)
            found["shape"] += list(r.vector(t, 0))
            for key, field in (("type", 1), ("buffer", 2)):
                if r.field_pos(t, field) is not None:
                    found[key].append(r.field_pos(t, field))
            if r.field_pos(t, 0) is not None:
                found["vec_len"].append(r.deref(r.field_pos(t, 0)))
        for field in (1, 2):
            found["io"] += list(r.vector(sg, field))
        for op_slot in r.vector(sg, 3):
            op = r.deref(op_slot)
            if r.field_pos(op, 0) is not None:
                found["opcode"].append(r.field_pos(op, 0))
            for field in (1, 2):
                found["op_index"] += list(r.vector(op, field))
    return found


def mutants(data: bytes, count: int, seed: int):
    """(kind, bytes) pairs, deterministic for a seed."""
    rng = random.Random(seed)
    where = structure(data)
    values32 = [0, 1, 2, 3, 7, 255, 1 << 16, 1 << 24, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000]
    kinds = ["flip", "flip_header", "cut", "shape", "type", "buffer", "data_len", "op_index", "opcode", "io", "vec_len"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        out = bytearray(data)
        if kind == "flip":
            for _ in range(rng.randint(1, 16)):
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif kind == "flip_header":  # the first 8 KB: the tables, not the weights
            for _ in range(rng.randint(1, 4)):
                out[rng.randrange(8192)] ^= 1 << rng.randrange(8)
        elif kind == "cut":
            out = out[: rng.randrange(len(out))]
        elif kind == "type":
            out[rng.choice(where["type"])] = rng.choice([0, 1, 2, 4, 5, 9, 13, 17, 18, 40, 255])
        else:
            pos = rng.choice(where[kind])
            value = rng.choice(values32 + [rng.randrange(1 << 32), rng.randrange(64)])
            struct.pack_into("<I", out, pos, value)
        yield kind, bytes(out)


def catdog_verdicts(path: Path, content: bytes) -> tuple[bool, bool]:
    """(accepted by the contract alone, accepted with check_model too)."""
    from catdog.edge.contract import contract_for_model
    from catdog.edge.errors import ModelError
    from catdog.edge.modelcheck import check_model

    try:
        contract = contract_for_model(path, content)
    except ModelError:
        return False, False
    try:
        check_model(content, contract, str(path))
    except ModelError:
        return True, False
    return True, True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--python", action="append", default=[], help="a Python with a TFLite runtime (repeat)")
    parser.add_argument("--keep", type=Path, default=None, help="folder for mutants catdog accepts and a runtime crashes on")
    args = parser.parse_args()
    data = BASE.read_bytes()
    workers = {p: subprocess.Popen([p, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for p in args.python or [sys.executable]}
    counts: dict[str, Counter] = {p: Counter() for p in workers}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (kind, content) in enumerate(mutants(data, args.count, args.seed)):
            path = Path(tmp) / f"m{i}.tflite"
            path.write_bytes(content)
            old_ok, new_ok = catdog_verdicts(path, content)
            for python, worker in workers.items():
                worker.stdin.write(f"{path}\n")
                worker.stdin.flush()
                code = int(worker.stdout.readline())
                outcome = "ran" if code == 0 else "refused" if code > 0 else "hang" if code == -14 else "crash"
                c = counts[python]
                c[outcome] += 1
                if outcome in ("crash", "hang"):
                    c[f"{outcome} accepted before"] += old_ok
                    c[f"{outcome} accepted now"] += new_ok
                    if new_ok:
                        print(f"  {python}: mutant {i} ({kind}) {outcome}es the runtime and passes catdog's checks")
                        if args.keep:
                            args.keep.mkdir(parents=True, exist_ok=True)
                            (args.keep / f"{Path(python).parts[-3].lstrip('.')}-{i}-{kind}.tflite").write_bytes(content)
            for c in counts.values():
                c["catdog accepted before"] += old_ok
                c["catdog accepts now"] += new_ok
            path.unlink()
            if (i + 1) % 50 == 0:
                print(f"{i + 1} mutants", flush=True)
    for python, worker in workers.items():
        worker.stdin.close()
        worker.wait()
        print(python, dict(sorted(counts[python].items())))


if __name__ == "__main__":
    main()
