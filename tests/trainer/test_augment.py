"""augment_batch: seeded, in range, really changes photos, resizes, and is exact where it should be."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trainer.conftest import TINY_SIZE
from catdog.trainer.augment import AugmentConfig, augment_batch


#: No geometry or colour change but the random flip.
STILL = dict(rotation=0.0, area=(1.0, 1.0), aspect=(1.0, 1.0), shift=0.0, contrast=0.0, brightness=0.0, saturation=0.0)


def _augment(batch, seed, out_hw=(TINY_SIZE, TINY_SIZE), config=AugmentConfig()):
    import tensorflow as tf

    return augment_batch(tf.constant(batch), out_hw, tf.random.Generator.from_seed(seed), config).numpy()


def _photos(data_dir):
    from catdog.trainer.data import load_photos, per_class_sample, scan_folder

    photos = load_photos(per_class_sample(scan_folder(data_dir / "val"), 4, seed=1), (TINY_SIZE, TINY_SIZE))
    return photos.images.astype(np.float32)


def test_augmentation_is_seeded_keeps_pixel_range_and_changes_the_photos(data_dir):
    batch = _photos(data_dir)
    first, again, other = _augment(batch, 5), _augment(batch, 5), _augment(batch, 6)
    assert first.shape == batch.shape and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 255.0
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.abs(first - batch).mean() > 5.0  # the photos did change


def test_without_geometry_or_colour_changes_each_photo_is_itself_or_its_mirror(data_dir):
    batch = _photos(data_dir)
    out = _augment(batch, 3, config=AugmentConfig(**STILL))
    mirrored = [np.allclose(o, p[:, ::-1], atol=1e-3) for o, p in zip(out, batch)]
    unchanged = [np.allclose(o, p, atol=1e-3) for o, p in zip(out, batch)]
    assert all(m or u for m, u in zip(mirrored, unchanged))
    assert any(mirrored) and any(unchanged)  # the flip is random, not always or never


def test_output_size_is_the_one_asked_for_and_a_flat_photo_stays_flat():
    flat = np.full((3, TINY_SIZE, TINY_SIZE, 3), 120.0, np.float32)
    out = _augment(flat, 1, out_hw=(32, 40), config=AugmentConfig(contrast=0.0, brightness=0.0))
    assert out.shape == (3, 32, 40, 3)
    assert np.allclose(out, 120.0, atol=1e-3)  # every output pixel comes from the photo (reflection fill)


def test_colour_jitter_moves_brightness_and_saturation_only_when_asked(data_dir):
    batch = _photos(data_dir)
    plain = _augment(batch, 2, config=AugmentConfig(**STILL))
    bright = _augment(batch, 2, config=AugmentConfig(**{**STILL, "brightness": 0.2}))
    grey = np.repeat(batch.mean(axis=3, keepdims=True), 3, axis=3)
    saturated = _augment(grey, 2, config=AugmentConfig(**{**STILL, "saturation": 0.5}))
    assert not np.allclose(plain, bright, atol=1.0)
    assert np.allclose(saturated.std(axis=3), 0.0, atol=1e-3)  # grey stays grey whatever the saturation


@pytest.mark.parametrize("area, side", [((0.4, 1.0), 0.83), ((1.0, 1.0), 1.0), ((0.25, 0.25), 0.5)])
def test_mean_crop_side_is_the_mean_square_root_of_the_area(area, side):
    assert AugmentConfig(area=area).mean_crop_side == pytest.approx(side, abs=0.002)
    draws = np.sqrt(np.random.default_rng(0).uniform(*area, 200_000))
    assert AugmentConfig(area=area).mean_crop_side == pytest.approx(draws.mean(), abs=0.002)
