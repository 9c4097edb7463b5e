"""Architectures: the seed baseline's size, the compact model's budget, heads for 2 and N classes."""

from __future__ import annotations

import numpy as np

from trainer.config import Arch
from trainer.model import build_model


def test_seed_architecture_is_the_articles_32_5m_parameter_cnn():
    model = build_model(Arch.seed, (128, 128, 3), 2)
    assert 32_400_000 < model.count_params() < 32_600_000
    assert model.output_shape == (None, 1)


def test_compact_model_is_small_and_takes_raw_pixels():
    model = build_model(Arch.compact, (128, 128, 3), 2)
    assert model.count_params() < 300_000
    out = model.predict(np.full((2, 128, 128, 3), 255.0, dtype=np.float32), verbose=0)
    assert out.shape == (2, 1) and np.all((out >= 0) & (out <= 1))


def test_three_classes_get_a_softmax_head():
    model = build_model(Arch.compact, (64, 64, 3), 3)
    out = model.predict(np.zeros((1, 64, 64, 3), dtype=np.float32), verbose=0)
    assert out.shape == (1, 3) and abs(out.sum() - 1.0) < 1e-5
