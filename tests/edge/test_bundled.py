"""The bundled model (edge.bundled = models/): the edge budget and the recipe it records."""

from __future__ import annotations

from catdog.edge import Classifier
from catdog.edge.contract import contract_for_model


def test_bundled_model_fits_the_edge_budget(bundled_model):
    assert bundled_model.stat().st_size <= 300_000  # <= 300 KB
    contract = contract_for_model(bundled_model)
    assert contract.mode == "int8" and contract.input_dtype == "uint8"
    training = contract.training
    assert training["multiply_adds"] <= 50_000_000  # <= 100 MFLOPs per photo
    assert training["params"] <= 300_000
    classifier = Classifier.load(bundled_model)
    assert tuple(classifier.input_detail["shape"][1:3]) == contract.input_hw


def test_bundled_model_records_a_reproducible_recipe(bundled_model):
    training = contract_for_model(bundled_model).training
    command = training["command"]
    assert command.startswith("catdog-train fit ") and "--seed" in command and "--keep last" in command
    assert training["config"]["seed"] == int(command.split("--seed ")[1].split()[0])
    assert {"tensorflow", "keras", "numpy", "python"} <= set(training["versions"])
    assert training["saved_epoch"] == training["epochs_run"] == training["config"]["epochs"]
