"""Measure a model on this device: invoke latency percentiles and end-to-end photos per second."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .classify import Classifier, Failure
from .pipeline import Plan


@dataclass(frozen=True)
class LatencyStats:
    """Invoke latency in milliseconds."""

    runs: int
    min: float
    p50: float
    p95: float
    p99: float
    mean: float


@dataclass(frozen=True)
class BenchResult:
    """What catdog-edge bench measured."""

    model: str
    runtime: str
    runtime_version: str
    threads: int | None
    """Interpreter threads asked for (None: the runtime's default)."""
    xnnpack: bool
    """Whether the runtime's XNNPACK delegate was allowed."""
    invoke: LatencyStats
    """Interpreter invoke() alone, on one prepared photo."""
    photos: int
    """Photos classified end to end (0 when no folder was given)."""
    failed: int
    """Photos among them that could not be read."""
    photos_per_second: float | None
    """End-to-end throughput: decode, preprocess, inference."""
    workers: int
    """Threads that decoded and classified the photos of the end-to-end run (chosen unless given)."""
    interpreters: int
    """Interpreters those threads shared (the classifier's own and copies; chosen unless given)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model": self.model, "runtime": self.runtime, "runtime_version": self.runtime_version,
            "threads": self.threads, "xnnpack": self.xnnpack,
            "invoke_ms": {k: round(v, 4) if isinstance(v, float) else v for k, v in vars(self.invoke).items()},
            "photos": self.photos, "failed": self.failed,
            "photos_per_second": None if self.photos_per_second is None else round(self.photos_per_second, 2),
            "workers": self.workers, "interpreters": self.interpreters,
        }


def latency_stats(samples_ms: Sequence[float]) -> LatencyStats:
    """Summarise latency samples (milliseconds)."""
    arr = np.asarray(samples_ms, dtype=np.float64)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return LatencyStats(len(arr), float(arr.min()), float(p50), float(p95), float(p99), float(arr.mean()))


def time_invoke(classifier: Classifier, runs: int, warmup: int = 5) -> LatencyStats:
    """Time invoke() alone on a mid-grey input, after a few warm-up runs."""
    pixels = np.full(classifier.contract.input_shape, 128, dtype=np.uint8)
    for _ in range(warmup):
        classifier.predict(pixels)
    interpreter = classifier.interpreter
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        samples.append((time.perf_counter() - start) * 1000.0)
    return latency_stats(samples)


def bench(
    classifier: Classifier, runs: int = 200, photos: Sequence[Path] = (), workers: int | None = None
) -> BenchResult:
    """Time invoke() runs times, then classify the photos end to end (if any) as classify_many does.

    workers: threads for the end-to-end run; None lets classify_many choose from the model's cost.
    """
    invoke = time_invoke(classifier, runs)
    failed = 0
    rate = None
    plan = Plan(workers=1, interpreters=1)
    if photos:
        start = time.perf_counter()
        for result in classifier.classify_many(photos, workers=workers):
            failed += isinstance(result, Failure)
        rate = len(photos) / (time.perf_counter() - start)
        plan = classifier.last_plan or plan
    return BenchResult(
        model=str(classifier.model_path), runtime=classifier.runtime.name,
        runtime_version=classifier.runtime.version, threads=classifier.threads, xnnpack=classifier.xnnpack, invoke=invoke,
        photos=len(photos), failed=failed, photos_per_second=rate,
        workers=plan.workers, interpreters=plan.interpreters,
    )
