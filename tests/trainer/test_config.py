"""FitConfig validation: the progressive-resizing settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import DataError
from trainer.config import Arch, FitConfig


@pytest.mark.parametrize("settings, message", [
    ({"epochs": 10, "small_epochs": 10}, "--small-epochs must be"),
    ({"small_epochs": -1}, "--small-epochs must be"),
    ({"small_epochs": 5, "small_size": 96}, "--small-size must be"),
    ({"small_epochs": 5, "small_size": 16}, "--small-size must be"),
    ({"small_epochs": 5, "arch": Arch.seed}, "needs --arch compact"),
])
def test_bad_progressive_resizing_settings_say_what_to_change(settings, message):
    with pytest.raises(DataError, match=message):
        FitConfig(data_dir=Path("photos"), **settings)


def test_small_size_is_ignored_without_small_epochs():
    assert FitConfig(data_dir=Path("photos"), small_size=500).small_epochs == 0
