"""The TFLite interpreter, imported in this one place: ai-edge-litert, else tflite-runtime."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from ._quiet import captured_stderr
from .errors import ModelError, RuntimeMissingError
from .models import bundled_models


class RuntimeName(str, Enum):
    """Which interpreter package to use."""

    auto = "auto"
    litert = "litert"
    tflite_runtime = "tflite-runtime"


# (choice, module holding Interpreter, distribution name for the version)
_CANDIDATES = {
    RuntimeName.litert: ("ai_edge_litert.interpreter", "ai-edge-litert"),
    RuntimeName.tflite_runtime: ("tflite_runtime.interpreter", "tflite-runtime"),
}


@dataclass(frozen=True)
class Runtime:
    """An importable interpreter package."""

    name: str
    """"litert" or "tflite-runtime"."""
    distribution: str
    """The pip distribution name, e.g. "ai-edge-litert"."""
    interpreter_class: Any
    """The package's Interpreter class."""
    op_resolver_type: Any
    """The package's OpResolverType enum (chooses kernels: with or without the XNNPACK delegate)."""

    @property
    def version(self) -> str:
        """Installed version of the package (read on demand: importlib.metadata slows cold start)."""
        from importlib import metadata

        try:
            return metadata.version(self.distribution)
        except metadata.PackageNotFoundError:
            return "unknown"


def find_runtime(choice: RuntimeName | str = RuntimeName.auto) -> Runtime:
    """Import the interpreter package asked for ("auto": ai-edge-litert first, then tflite-runtime).

    Raises:
        RuntimeMissingError: the package (or, for "auto", either package) is not installed.
    """
    choice = RuntimeName(choice)
    order = list(_CANDIDATES) if choice is RuntimeName.auto else [choice]
    problems = []
    for name in order:
        module_name, dist = _CANDIDATES[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            problems.append(f"{dist}: {exc}")
            continue
        return Runtime(name=name.value, distribution=dist, interpreter_class=module.Interpreter,
                       op_resolver_type=module.OpResolverType)
    wanted = "ai-edge-litert or tflite-runtime" if choice is RuntimeName.auto else _CANDIDATES[choice][1]
    raise RuntimeMissingError(
        f"no TFLite runtime: install {wanted} (pip install ai-edge-litert, or the wheel's [edge] extra; "
        f"older Raspberry Pi OS: pip install tflite-runtime 'numpy<2') [{'; '.join(problems)}]"
    )


def read_model(model_path: Path) -> bytes:
    """The bytes of a .tflite file.

    Raises:
        ModelError: the file is missing or unreadable.
    """
    model_path = _existing(model_path)
    try:
        return model_path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{model_path}: cannot read the model ({exc.strerror})") from None


def _existing(model_path: Path) -> Path:
    """model_path as a Path, when it is a file (ModelError naming the bundled models when not)."""
    model_path = Path(model_path)
    if not model_path.is_file():
        names = ", ".join(bundled_models())
        raise ModelError(
            f"{model_path}: model not found; pass --model with a .tflite file made by catdog-train export "
            f"or a bundled model's name ({names})"
        )
    return model_path


def load_interpreter(
    model_path: Path, runtime: Runtime, threads: int | None = None, xnnpack: bool = True, content: bytes | None = None
) -> Any:
    """Create an interpreter for a .tflite file and allocate its tensors.

    Args:
        model_path: the .tflite file.
        runtime: from find_runtime().
        threads: interpreter threads; None for the runtime's default.
        xnnpack: let the runtime apply its default XNNPACK delegate (ai-edge-litert runs int8 models
            through it, about 3x faster here); False runs the built-in kernels, which give the same
            numbers as tflite-runtime 2.14 to the last bit. The two kernel sets round differently,
            so int8 scores differ by a few quantization steps.
        content: the file's bytes when the caller has read them (to check them: the runtime then loads
            those very bytes); None lets the runtime map the file itself, which copies no megabytes.

    Raises:
        ModelError: the file is missing or is not a TFLite model.
    """
    model_path = Path(model_path)
    model = {"model_path": str(_existing(model_path))} if content is None else {"model_content": content}
    resolver = runtime.op_resolver_type
    try:
        # The runtime announces its XNNPACK delegate on file descriptor 2 while allocating ("INFO:
        # Created TensorFlow Lite XNNPACK delegate for CPU."); kept out of the output unless verbose.
        with captured_stderr() as printed:
            interpreter = runtime.interpreter_class(
                **model,
                num_threads=threads,
                experimental_op_resolver_type=resolver.AUTO if xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise not_a_model(model_path, printed.reason(exc)) from None
    return interpreter


def not_a_model(model_path: Path | str, reason: str) -> ModelError:
    """The error for a file the runtime refuses to load (or, in edge.modelprobe's child, to run), with its reason."""
    return ModelError(f"{model_path}: not a valid TFLite model ({reason}); export one with catdog-train export")
