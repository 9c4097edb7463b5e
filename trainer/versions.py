"""Library versions recorded in a model's contract, so a training run can be reproduced."""

from __future__ import annotations

import platform
import sys
from importlib import metadata


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape a trained model."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for dist in ("catdog-toolkit", "tensorflow", "keras", "numpy", "pillow", "ai-edge-litert"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions
