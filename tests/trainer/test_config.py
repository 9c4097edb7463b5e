"""FitConfig validation, its data-check fields, and the progressive-resizing split of the epochs."""

from __future__ import annotations

from pathlib import Path

import pytest

from catdog.trainer.errors import DataError
from catdog.trainer.config import Arch, CheckConfig, FitConfig


@pytest.mark.parametrize("settings, message", [
    ({"small_fraction": 1.0}, "--small-fraction must be"),
    ({"small_fraction": -0.1}, "--small-fraction must be"),
    ({"small_size": 16}, "--small-size must be"),
    ({"source_size": 16}, "--source-size must be"),
    ({"crop": 0.1}, "--crop must be"),
    ({"crop": 1.5}, "--crop must be"),
])
def test_bad_progressive_resizing_settings_say_what_to_change(settings, message):
    with pytest.raises(DataError, match=message):
        FitConfig(data_dir=Path("photos"), **settings)


@pytest.mark.parametrize("settings, message", [
    ({"imbalance_ratio": 0.5}, "--imbalance-ratio must be at least 1"),
    ({"val_split": 1.0}, "--val-split must be between 0 and 1"),
    ({"limit_per_class": 1}, "--limit-per-class must be at least 2"),
])
def test_fit_validates_its_data_check_settings_as_check_does(settings, message):
    for config in (CheckConfig, FitConfig):
        with pytest.raises(DataError, match=message):
            config(data_dir=Path("photos"), **settings)


def test_fit_settings_are_the_check_settings_plus_training_ones():
    """Each data-check option is defined once: FitConfig is a CheckConfig, and check_data takes it as one."""
    config = FitConfig(data_dir=Path("photos"), min_side=40, imbalance_ratio=2.0)
    assert isinstance(config, CheckConfig) and (config.min_side, config.imbalance_ratio) == (40, 2.0)


@pytest.mark.parametrize("settings, small_epochs", [
    ({}, 44),  # the defaults: 63 epochs, 70% at 64 px
    ({"epochs": 10, "small_fraction": 0.5}, 5),
    ({"epochs": 2, "small_fraction": 0.9}, 1),  # at least one epoch at full size
    ({"small_fraction": 0.0}, 0),
    ({"small_size": 96}, 0),  # not smaller than the 96 px input: nothing to gain
    ({"arch": Arch.seed}, 0),  # the seed model takes one input size only
])
def test_small_epochs_follow_the_fraction_where_they_apply(settings, small_epochs):
    assert FitConfig(data_dir=Path("photos"), **settings).small_epochs == small_epochs


@pytest.mark.parametrize("settings, source_hw", [
    ({}, (128, 128)),  # the defaults: 96 px input, crops resampled from 128 px photos
    ({"image_hw": (96, 144)}, (128, 192)),  # the shorter side at source_size, proportions kept
    ({"image_hw": (160, 160)}, (160, 160)),  # never under the input size
    ({"augment": False}, (96, 96)),  # no crops to sharpen: decoded at the input size
])
def test_training_photos_are_decoded_at_the_source_size_when_augmenting(settings, source_hw):
    assert FitConfig(data_dir=Path("photos"), **settings).source_hw == source_hw


@pytest.mark.parametrize("settings, crop", [
    ({}, 0.83),  # the mean side of the default training crops (40-100% of the area)
    ({"augment": False}, 1.0),  # trained on whole photos: fed whole photos
    ({"crop": 0.9}, 0.9),
    ({"crop": 1.0, "augment": False}, 1.0),
])
def test_the_contract_crop_matches_what_training_showed(settings, crop):
    assert FitConfig(data_dir=Path("photos"), **settings).input_crop == crop
