"""Load and run a model file once in a child process before catdog loads it: a file that crashes the runtime is refused.

The TFLite runtimes trust a model file, and edge.modelcheck refuses only the damage it knows (it is
best effort). What it misses can still kill the process from C++, where Python cannot catch it: a
damaged copy of the default model made ai-edge-litert abort with glibc's "double free or corruption"
(issue 28). So a model that is not bundled is first loaded, allocated and invoked once, every input
set to zeros and every output read, by the same interpreter package in a child process of the same
Python. A crash, an abort, an error or no answer within the timeout becomes a ModelError (one
line; the CLIs exit 2; an error the runtime raises reads as when it raises it in this process). A model that survives is remembered by the SHA-256 of its bytes, the
runtime and its version, and the XNNPACK choice, in $XDG_CACHE_HOME/catdog/models (else
~/.cache/catdog/models), so each file pays for the child once. Only survival is remembered: a
refusal is probed again next time, so a busy machine's timeout is never kept. When the cache
cannot be written (a read-only home), every load probes.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError
from .files import atomic_write_bytes
from ._quiet import Captured
from .runtime import Runtime, not_a_model
from .safe_text import visible

#: Seconds the child may take to load and run a model once: far above any model catdog runs (the
#: default model takes about 0.2 s here, a few seconds on a Pi Zero), so only a hang reaches it.
PROBE_TIMEOUT_S = 120.0

#: The child: loads the model's bytes (stdin) with the interpreter module argv[1], XNNPACK if argv[2]
#: is "1", allocates, sets every input to zeros, invokes, reads every output. Exit 0: it survived;
#: exit 3: the runtime raised, and the first line of its error is on stdout.
_CHILD = """
import importlib, sys
import numpy as np
module = importlib.import_module(sys.argv[1])
resolver = module.OpResolverType
try:
    interpreter = module.Interpreter(model_content=sys.stdin.buffer.read(),
        experimental_op_resolver_type=resolver.AUTO if sys.argv[2] == "1" else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    for detail in interpreter.get_output_details():
        interpreter.get_tensor(detail["index"])
except (ValueError, RuntimeError) as exc:
    print((str(exc).strip().splitlines() or [type(exc).__name__])[0])
    sys.exit(3)
"""


def cache_dir() -> Path:
    """Where survival verdicts are kept: $XDG_CACHE_HOME/catdog/models, else ~/.cache/catdog/models."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "catdog" / "models"


@dataclass(frozen=True)
class ProbeResult:
    """What happened when a child process loaded and ran a model once."""

    outcome: str
    """"survived", "crashed" (a signal), "hung" (no exit within the timeout), "refused" (the runtime raised
    an error, as it would in this process) or "failed" (the child failed otherwise)."""
    detail: str
    """crashed: the signal's name and the child's last line of stderr; refused: the runtime's reason, as
    edge.runtime.load_interpreter gives it; failed: the child's last line of stderr; "" when it survived."""


def check_survives(content: bytes, runtime: Runtime, xnnpack: bool, source: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Check that the runtime survives loading and running this model once, in a child process (once per file).

    Args:
        content: the .tflite file's bytes (the very bytes the caller then loads).
        runtime: the interpreter package the caller will load it with (edge.runtime.find_runtime).
        xnnpack: whether the caller will use the XNNPACK delegate (its kernels are other code).
        source: the name errors give the file.
        timeout: seconds before the child counts as hung.

    Raises:
        ModelError: the child died of a signal, raised an error, or did not finish within timeout.
    """
    module = runtime.interpreter_class.__module__
    package = sys.modules.get(module.split(".")[0])
    key = hashlib.sha256(content)
    key.update(f"\0{module}\0{getattr(package, '__version__', '')}\0{int(xnnpack)}".encode())
    verdict = cache_dir() / key.hexdigest()
    if verdict.is_file():
        return
    result = probe(content, module, xnnpack, timeout)
    if result.outcome == "refused":
        raise not_a_model(source, result.detail)
    if result.outcome != "survived":
        what = {
            "crashed": f"the TFLite runtime crashed loading and running the model ({result.detail})",
            "hung": f"the TFLite runtime did not finish loading and running the model within {timeout:g} s",
            "failed": f"the TFLite runtime failed to load and run the model ({result.detail})",
        }[result.outcome]
        raise ModelError(f"{source}: {what}; the file is damaged or not a model catdog can run: export it again "
                         "with catdog-train export")
    try:
        atomic_write_bytes(verdict, b"survived\n")
    except OSError:
        pass  # no cache (a read-only home): the next load probes again


def probe(content: bytes, module: str, xnnpack: bool, timeout: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Load, allocate and invoke a model once in a child process of this Python (no cache).

    Args:
        content: the .tflite file's bytes.
        module: the interpreter's module ("ai_edge_litert.interpreter" or "tflite_runtime.interpreter").
        xnnpack: use the XNNPACK delegate (the runtime's default kernels) or the built-in kernels.
        timeout: seconds before the child is killed and counted as hung.
    """
    import signal
    import subprocess  # here, not at the top: a remembered verdict needs neither (~3 ms of every start)

    # glibc writes its fatal messages ("double free or corruption") to the terminal, not to stderr,
    # unless told otherwise; here they are the reason given.
    env = {**os.environ, "LIBC_FATAL_STDERR_": "1"}
    try:
        child = subprocess.run(_command(module, xnnpack), input=content, capture_output=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ProbeResult("hung", "")
    said = _last_line(child.stderr)
    if child.returncode == 0:
        return ProbeResult("survived", "")
    if child.returncode == 3:  # the reason as load_interpreter gives it: the error, then the runtime's ERROR line
        error = RuntimeError(visible(child.stdout.decode(errors="replace").strip()[:300]))
        return ProbeResult("refused", Captured(text=child.stderr.decode(errors="replace")).reason(error))
    if child.returncode > 0:
        return ProbeResult("failed", said or f"exit {child.returncode}")
    try:
        name = signal.Signals(-child.returncode).name
    except ValueError:
        name = f"signal {-child.returncode}"
    return ProbeResult("crashed", f"{name}: {said}" if said else name)


def _command(module: str, xnnpack: bool) -> list[str]:
    """The child's command line: this Python, running _CHILD."""
    return [sys.executable, "-c", _CHILD, module, "1" if xnnpack else "0"]


def _last_line(stderr: bytes) -> str:
    """The child's last line of stderr (the error, after any traceback; not the runtime's INFO lines), printable
    and short."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()
             if line.strip() and not line.startswith("INFO: ")]
    return visible(lines[-1][:200]) if lines else ""
