"""Parity of the bundled models: int8 and float32 TFLite against the Keras model on real val photos."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from catdog.edge.contract import ModelContract
from catdog.trainer.cli import app
from catdog.trainer.parity import check_parity, compare
from tests.conftest import ROOT

BUNDLED_KERAS = ROOT / "models" / "catdog.keras"
COMPACT_KERAS = ROOT / "models" / "catdog-compact.keras"  # small: quick to export again


def test_compare_counts_agreement_and_differences():
    contract = ModelContract(labels=("cat", "dog"), input_hw=(8, 8))
    keras = np.array([[0.9, 0.1], [0.2, 0.8], [0.45, 0.55]])
    tflite = np.array([[0.8, 0.2], [0.2, 0.8], [0.55, 0.45]])
    report = compare(keras, tflite, np.array([0, 1, 1]), contract)
    assert report.photos == 3 and report.agreement == pytest.approx(2 / 3)
    assert report.max_abs_diff == pytest.approx(0.1) and report.mean_abs_diff == pytest.approx(0.2 / 3)
    assert report.keras_accuracy == 1.0 and report.tflite_accuracy == pytest.approx(2 / 3)


def test_bundled_int8_model_matches_keras_on_all_val_photos(bundled_model, data_dir):
    report = check_parity(BUNDLED_KERAS, bundled_model, data_dir / "val")
    assert report.photos == 1000
    # The shipped model's targets: top-1 agreement >= 99%, accuracy within 0.5 points of Keras.
    assert report.agreement >= 0.99, report
    assert report.mean_abs_diff <= 0.01, report
    assert abs(report.keras_accuracy - report.tflite_accuracy) <= 0.005 + 1e-9, report


def test_a_tflite_model_fed_differently_from_the_keras_model_is_refused(bundled_model, data_dir, tmp_path):
    """Comparing models fed different pixels (here a different centre crop) would measure nothing."""
    import shutil

    from catdog.edge.errors import ModelError

    keras_path = tmp_path / "cropped.keras"
    shutil.copy(BUNDLED_KERAS, keras_path)
    contract = ModelContract.load(BUNDLED_KERAS.with_suffix(".json"))
    contract.replace(crop=0.5 if contract.crop != 0.5 else 1.0).save(keras_path.with_suffix(".json"))
    with pytest.raises(ModelError, match="crops; export the .tflite from this .keras"):
        check_parity(keras_path, bundled_model, data_dir / "val", limit_per_class=2)


def test_float32_export_matches_keras_exactly(data_dir, tmp_path):
    out = tmp_path / "float.tflite"
    result = CliRunner().invoke(
        app, ["export", str(COMPACT_KERAS), "--out", str(out), "--parity-data", str(data_dir / "val")]
    )
    assert result.exit_code == 0, result.output
    contract = ModelContract.load(out.with_suffix(".json"))
    assert contract.mode == "float32" and contract.input_dtype == "float32"
    report = check_parity(COMPACT_KERAS, out, data_dir / "val", limit_per_class=100)
    assert report.photos == 200 and report.agreement == 1.0
    assert report.max_abs_diff <= 1e-4, report
