"""How classify_many spreads photos over threads: a pure choice from the model's measured cost and the cores."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """Threads and interpreters for a run of photos (see plan_pipeline)."""

    workers: int
    """Threads that each decode a photo and then run the model on it; 1 runs everything on the calling thread."""
    interpreters: int
    """Interpreters the workers share (the classifier's own plus copies of it): how many invokes run at once."""

    def __post_init__(self) -> None:
        if not 1 <= self.interpreters <= self.workers:
            raise ValueError(f"a plan needs 1 <= interpreters <= workers, got {self.interpreters} and {self.workers}")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, e.g. under taskset or a cgroup)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def plan_pipeline(
    decode_ms: float, invoke_ms: float, cores: int, threads: int = 1, workers: int | None = None,
    interpreters: int | None = None,
) -> Plan:
    """Choose workers and interpreters that keep every core busy.

    A photo costs decode_ms of one core (Pillow, which releases the GIL) and invoke_ms of wall time on an
    interpreter running `threads` threads (so threads * invoke_ms of core time; the runtimes also release
    the GIL). With every core busy the run finishes a photo every (decode_ms + threads * invoke_ms) / cores
    ms. Invokes on one interpreter run one after another, so one interpreter alone finishes a photo every
    invoke_ms at best: when that is slower than the cores could go, more interpreters are needed, as few as
    reach the cores' pace (each copy holds its own tensors: a few MB for EfficientNet-Lite0), and no more
    than cores // threads can run at once. Every core gets a worker, so decoding fills the time the
    interpreters leave. One core runs everything on the calling thread: threads there add only switching.

    Args:
        decode_ms: milliseconds to read, decode and prepare one photo on one core (measured).
        invoke_ms: milliseconds the model takes on one prepared photo (measured: both invokes with --flip).
        cores: CPU cores this process may use (usable_cores()).
        threads: interpreter threads of each interpreter (1 is the runtimes' default).
        workers: the caller's choice of workers (--workers), kept as given; None chooses.
        interpreters: the caller's choice of interpreters, kept as given (up to workers); None chooses.

    Returns:
        The Plan.
    """
    cores, threads = max(1, cores), max(1, threads)
    if workers is None:
        workers = cores if cores > 1 else 1
    if interpreters is None:
        period_ms = (decode_ms + threads * invoke_ms) / cores  # every core busy
        needed = math.ceil(invoke_ms / period_ms - 1e-9) if period_ms > 0 else 1  # 1e-9: float rounding
        interpreters = min(needed, max(1, cores // threads))
    return Plan(workers=workers, interpreters=max(1, min(interpreters, workers)))
