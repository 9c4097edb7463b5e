"""Evaluation figures (F1, ROC AUC, most confidently wrong) and the evaluate command with plots."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from catdog.edge.classify import Classifier
from catdog.trainer.cli import app
from catdog.trainer.config import EvaluateConfig
from catdog.trainer.data import load_labelled
from catdog.trainer.errors import DataError
from catdog.trainer.evaluate import roc_auc, roc_curve, summarize

runner = CliRunner()


def _pairwise_auc(scores, positive):
    pos, neg = scores[positive], scores[~positive]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


def test_roc_auc_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(60), 1)  # rounding makes ties
    positive = rng.random(60) < 0.4
    assert roc_auc(scores, positive) == pytest.approx(_pairwise_auc(scores, positive))
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], bool)) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1], bool)) == 0.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([True, True])) is None
    fpr, tpr = roc_curve(scores, positive)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids: ties give diagonal steps
    assert area == pytest.approx(roc_auc(scores, positive))


def test_summarize_per_class_f1_confusion_and_most_wrong():
    names = ("cat", "dog", "fox")
    labels = np.array([0, 0, 0, 1, 1, 2])
    scores = np.array([
        [0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1],
        [0.1, 0.8, 0.1], [0.3, 0.1, 0.6], [0.1, 0.1, 0.8],
    ])
    predicted = scores.argmax(axis=1)
    paths = tuple(f"p{i}.jpg" for i in range(6))
    report = summarize("m.tflite", labels, scores, names, paths, predicted, most_wrong=5)
    assert report.confusion == ((2, 1, 0), (0, 1, 1), (0, 0, 1))
    cat, dog, fox = report.per_class
    assert (cat.precision, cat.recall) == (1.0, pytest.approx(2 / 3)) and cat.f1 == pytest.approx(0.8)
    assert (dog.precision, dog.recall, dog.f1) == (0.5, 0.5, 0.5)
    assert fox.precision == 0.5 and fox.recall == 1.0 and fox.f1 == pytest.approx(2 / 3)
    assert report.accuracy == pytest.approx(4 / 6)
    assert [(m.path, m.predicted, m.true) for m in report.most_wrong] == [("p1.jpg", "dog", "cat"), ("p4.jpg", "fox", "dog")]
    one_vs_rest = [_pairwise_auc(scores[:, i], labels == i) for i in range(3)]
    assert one_vs_rest == pytest.approx([8 / 9, 11 / 16, 1.0])
    assert report.roc_auc == pytest.approx(np.mean(one_vs_rest))  # the mean one-vs-rest area
    assert json.loads(json.dumps(report.to_dict()))["per_class"]["fox"]["f1"] == pytest.approx(0.6667)


def test_evaluate_command_json_text_and_confusion_png(tiny_model, data_dir, tmp_path):
    args = ["evaluate", str(tiny_model.tflite), "--data", str(data_dir / "val"), "--limit-per-class", "10"]
    result = runner.invoke(app, [*args, "--format", "json", "--plots", str(tmp_path / "plots"), "--most-wrong", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["photos"] == 20 and sum(map(sum, report["confusion"])) == 20
    assert report["accuracy"] == pytest.approx((report["confusion"][0][0] + report["confusion"][1][1]) / 20)
    assert set(report["per_class"]["cat"]) == {"photos", "precision", "recall", "f1"}
    # The same photos and model, scored here and ranked pairwise: the area evaluate reports.
    classifier = Classifier.load(tiny_model.tflite)
    photos = load_labelled(data_dir / "val", classifier.contract, limit_per_class=10)
    dog = np.array([classifier.predict(image)[1] for image in photos.images])
    assert report["roc_auc"] == pytest.approx(_pairwise_auc(dog, photos.labels == 1), abs=1e-4)
    wrong = report["most_wrong"]
    assert len(wrong) <= 3 and all(w["true"] != w["predicted"] for w in wrong)
    assert [w["confidence"] for w in wrong] == sorted((w["confidence"] for w in wrong), reverse=True)
    confusion_png, roc_png = report["plots"]
    assert confusion_png.endswith("tiny-tflite.confusion.png") and roc_png.endswith("tiny-tflite.roc.png")
    for png in report["plots"]:
        with Image.open(png) as img:
            assert img.format == "PNG" and img.width >= 200
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "ROC AUC" in text.stdout and "macro F1" in text.stdout
    assert "confusion (rows true, columns predicted)" in text.stdout


def test_evaluate_refuses_other_files(tmp_path):
    with pytest.raises(DataError, match="expected a .keras or .tflite model"):
        EvaluateConfig(model_path=tmp_path / "m.onnx", data_dir=tmp_path)
