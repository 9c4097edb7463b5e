"""Compare catdog-edge classify --format json runs (an emulated Pi against x86): pure functions of the records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath

#: Largest score difference, in output quantization steps, allowed between the same runtime on x86 and
#: on an emulated Pi: measured 0 with XNNPACK, up to 27 for tflite-runtime 2.14 (docs/pi.md); the bound
#: tests/edge/test_runtimes_agree.py uses between the runtimes on ARM.
MAX_STEPS = 48


@dataclass(frozen=True)
class Agreement:
    """How one run's answers compare with a reference run's, photo by photo (matched by val/<label>/<file>)."""

    photos: int
    """Photos both runs classified."""
    same_label: int
    """Photos given the same label."""
    max_diff: float
    """Largest |score difference| of the second label (dog), as a probability."""
    max_steps: int
    """max_diff in output quantization steps."""
    exact: int
    """Photos with identical scores."""
    missing: tuple[str, ...]
    """Photos the reference has and this run has not (or failed)."""
    near_threshold_only: bool
    """True when every label that differs belongs to a photo whose score lies within that photo's
    difference of the threshold (rounding, not a different answer)."""

    @property
    def agreement(self) -> float:
        return self.same_label / self.photos if self.photos else 0.0

    @property
    def ok(self) -> bool:
        return self.photos > 0 and not self.missing and self.near_threshold_only and self.max_steps <= MAX_STEPS

    def summary(self) -> str:
        return (f"{self.same_label}/{self.photos} labels agree ({100 * self.agreement:.1f}%), "
                f"{self.exact} identical scores, max difference {self.max_diff:.6f} ({self.max_steps} steps)"
                + (f", {len(self.missing)} missing" if self.missing else ""))


def photo_key(path: str) -> str:
    """A photo's name independent of where the set is mounted: its last three parts (val/cat/cat.4001.jpg)."""
    return "/".join(PurePosixPath(path).parts[-3:])


def read_records(text: str) -> dict[str, dict]:
    """Classified photos of a JSON-lines output by photo_key; lines for failed photos are left out."""
    records = {}
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            if "error" not in record:
                records[photo_key(record["path"])] = record
    return records


def compare(run: dict[str, dict], reference: dict[str, dict], scale: float, threshold: float = 0.5,
            second: str = "dog") -> Agreement:
    """Compare run with reference on the reference's photos.

    Args:
        run, reference: records by photo_key (read_records).
        scale: the output quantization step (the contract's output scale, 1/256 for the bundled model).
        threshold: the decision threshold on the second label's score.
        second: the label whose score decides (binary models).
    """
    same = exact = 0
    max_diff = 0.0
    near_only = True
    missing = []
    for key, ref in reference.items():
        mine = run.get(key)
        if mine is None:
            missing.append(key)
            continue
        diff = abs(mine["scores"][second] - ref["scores"][second])
        max_diff = max(max_diff, diff)
        exact += diff == 0
        if mine["label"] == ref["label"]:
            same += 1
        elif abs(ref["scores"][second] - threshold) > diff + scale / 2:
            near_only = False
    return Agreement(
        photos=len(reference) - len(missing), same_label=same, max_diff=max_diff,
        max_steps=round(max_diff / scale), exact=exact, missing=tuple(missing), near_threshold_only=near_only,
    )
