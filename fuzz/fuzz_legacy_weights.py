"""Coverage-guided fuzzing (atheris) of the legacy PyTorch weights reader, catdog.trainer.pth.

Property: any bytes give a dict of numpy arrays (at most VIEW_BUDGET times the file's size in memory)
or one WeightsError line that starts with the source; never another exception, never a call the
file chose. Run (make fuzz runs every fuzz/fuzz_*.py this way):

    .venv/bin/python fuzz/fuzz_legacy_weights.py fuzz/corpus/fuzz_legacy_weights -max_total_time=600 \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from catdog.trainer import pth
    from catdog.trainer.errors import WeightsError

import numpy as np

SOURCE = "fuzz.pth"


def TestOneInput(data: bytes) -> None:
    try:
        arrays = pth.read_state_dict_bytes(data, SOURCE)
    except WeightsError as exc:
        message = str(exc)
        assert message.startswith(f"{SOURCE}: ") and len(message.splitlines()) == 1, message
        return
    assert isinstance(arrays, dict)
    assert all(isinstance(name, str) and isinstance(array, np.ndarray) for name, array in arrays.items())
    unique = {id(array): array for array in arrays.values()}.values()
    assert sum(array.nbytes for array in unique) <= pth.VIEW_BUDGET * len(data), "output larger than the budget"


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
