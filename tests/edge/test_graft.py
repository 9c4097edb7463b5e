"""edge.graft: the quantization of a grafted dense layer (the model it writes is tested in test_learn.py)."""

from __future__ import annotations

import numpy as np
import pytest

from catdog.edge.graft import Dense, output_quantization, quantize_dense
from catdog.edge.quantization import Quantization


def test_the_output_range_covers_the_training_outputs_and_zero():
    q = output_quantization(-3.0, 5.0)
    assert q.scale == pytest.approx(8.0 / 255)
    assert q.dequantize(np.array([-128, 127])).tolist() == pytest.approx([-3.0, 5.0], abs=q.scale)
    positive = output_quantization(2.0, 4.0)  # 0 stays representable
    assert positive.dequantize(np.array([-128]))[0] == pytest.approx(0.0, abs=positive.scale)


def test_a_quantized_dense_layer_computes_the_float_one_within_its_steps():
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(64, 3)), rng.normal(size=3)
    x_q = Quantization(0.05, -128)
    x_int = rng.integers(-128, 128, size=(20, 64))
    x = x_q.dequantize(x_int).astype(np.float64)
    weights, w_scale, b_int, out_q = quantize_dense(Dense(kernel, bias, -40.0, 40.0), x_q)
    assert weights.dtype == np.int8 and weights.shape == (3, 64) and np.abs(weights).max() == 127
    assert b_int.dtype == np.int32
    # what FULLY_CONNECTED computes: int32 accumulation, rescaled by input scale x weight scale
    acc = (x_int - x_q.zero_point) @ weights.T.astype(np.int64) + b_int
    exact = x @ kernel + bias
    assert np.max(np.abs(acc * x_q.scale * w_scale - exact)) < 0.01 * np.ptp(exact)
    assert out_q.scale == pytest.approx(80.0 / 255)
