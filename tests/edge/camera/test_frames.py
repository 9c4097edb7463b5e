"""edge.camera.frames: source settings are validated at the boundary, and reconnect backoff doubles up to a cap."""

from __future__ import annotations

import pytest

from catdog.edge.camera.frames import SourceConfig
from catdog.edge.errors import CameraSetupError


def test_config_is_validated():
    with pytest.raises(CameraSetupError, match="--fps"):
        SourceConfig("0", fps=0)
    with pytest.raises(CameraSetupError, match="--max-retries"):
        SourceConfig("0", max_retries=-1)
    with pytest.raises(CameraSetupError, match="backoff"):
        SourceConfig("0", backoff_s=2.0, backoff_max_s=1.0)
    with pytest.raises(CameraSetupError, match="empty"):
        SourceConfig(" ")
    config = SourceConfig("0", backoff_s=0.5, backoff_max_s=3.0)
    assert [config.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
