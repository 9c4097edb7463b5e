"""The bundled models (catdog.edge.bundled = models/): each within its budget, each with the recipe
that made it and the accuracy it measured recorded in its contract."""

from __future__ import annotations

import numpy as np

from catdog.edge import Classifier, bundled_models
from catdog.edge.contract import contract_for_model
from catdog.edge.modelcheck import check_model
from catdog.edge.models import is_bundled

from tests.conftest import copy_model_with_contract


def test_the_default_model_is_the_pretrained_one_within_its_budget(bundled_model):
    contract = contract_for_model(bundled_model)
    assert contract.mode == "int8" and contract.input_dtype == "uint8" and contract.input_hw == (224, 224)
    assert bundled_model.stat().st_size <= 5_000_000  # <= 5 MB
    training, metrics = contract.training, contract.metrics
    assert training["arch"] == "efficientnet-lite0" and training["weights"] == "imagenet"
    assert training["multiply_adds"] <= 400_000_000
    # what it measured on the 1,000 val photos it never saw (make model; issue 16's bar)
    assert metrics["val_photos"] == 1000 and metrics["tflite_val_accuracy"] >= 0.98
    assert metrics["parity"]["agreement"] >= 0.99
    assert abs(metrics["tflite_val_accuracy"] - metrics["keras_val_accuracy"]) <= 0.005
    classifier = Classifier.load(bundled_model)
    assert tuple(classifier.input_detail["shape"][1:3]) == contract.input_hw


def test_the_compact_model_fits_the_pi_zero_budget():
    compact = bundled_models()["compact"]
    assert compact.stat().st_size <= 300_000  # <= 300 KB
    contract = contract_for_model(compact)
    assert contract.mode == "int8" and contract.training["arch"] == "compact"
    assert contract.training["multiply_adds"] <= 50_000_000  # <= 100 MFLOPs per photo
    assert contract.training["params"] <= 300_000
    assert Classifier.load("compact").contract == contract


def test_each_bundled_model_records_a_reproducible_recipe():
    for name, path in bundled_models().items():
        training = contract_for_model(path).training
        command = training["command"]
        assert command.startswith("catdog-train fit ") and f"--arch {training['arch']}" in command, (name, command)
        assert training["config"]["seed"] == int(command.split("--seed ")[1].split()[0]), name
        assert {"tensorflow", "keras", "numpy", "python"} <= set(training["versions"]), name
    compact = contract_for_model(bundled_models()["compact"]).training
    assert "--keep last" in compact["command"]  # nothing chosen on val/
    assert compact["saved_epoch"] == compact["epochs_run"] == compact["config"]["epochs"]


def test_each_bundled_model_passes_the_structural_check_it_skips_at_load(tmp_path):
    """Loading a bundled model skips check_model (they install with the package, like its code), so each
    must pass it here; a copy outside the bundled folder is checked on every load."""
    for name, path in bundled_models().items():
        assert is_bundled(path), name
        content = path.read_bytes()
        check_model(content, contract_for_model(path, content), str(path))
        copy = tmp_path / path.name
        copy.write_bytes(content)
        assert not is_bundled(copy), name


def test_a_copy_of_a_bundled_model_is_checked_on_load(tmp_path, monkeypatch):
    """A bundled model is neither checked nor read whole (the runtime maps the file); a copy is read once,
    checked, and those bytes loaded."""
    import catdog.edge.classify

    shipped = bundled_models()["default"]  # the installed package's own under CATDOG_INSTALLED=1
    copy = copy_model_with_contract(shipped, tmp_path / "catdog.tflite", {})
    checked, read = [], []
    monkeypatch.setattr("catdog.edge.modelcheck.check_model", lambda content, contract, source: checked.append(source))
    real_read = catdog.edge.classify.read_model
    monkeypatch.setattr("catdog.edge.classify.read_model", lambda path: read.append(str(path)) or real_read(path))
    shipped_scores = Classifier.load(shipped).predict(np.zeros((224, 224, 3), np.uint8))
    assert checked == read == []
    copy_scores = Classifier.load(copy).predict(np.zeros((224, 224, 3), np.uint8))
    assert checked == read == [str(copy)]
    assert np.array_equal(shipped_scores, copy_scores)
