"""edge.presence and the contract's presence record: the soft confidence, the score, and what a contract may say."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catdog.edge.contract import ModelContract
from catdog.edge.errors import ModelError
from catdog.edge.presence import Presence
from catdog.edge.quantization import Quantization

BASE = {"labels": ["cat", "dog"], "input_hw": [224, 224]}
PRESENCE = {"output": "presence", "threshold": 4.5, "scale": 0.7, "method": "imagenet"}


def test_probability_is_one_half_at_the_threshold_and_rises_with_the_score():
    p = Presence(output="presence", threshold=4.5, scale=0.7)
    assert p.probability(4.5) == pytest.approx(0.5)
    values = [p.probability(s) for s in (-100.0, 2.0, 4.0, 4.5, 5.0, 8.0, 1e9)]
    assert values == sorted(values) and values[0] < 1e-20 and values[-1] == 1.0
    assert p.probability(3.0, threshold=3.0) == pytest.approx(0.5)


def test_score_dequantizes_an_integer_output():
    p = Presence(output="presence", threshold=0.5, scale=0.1, dtype="uint8", quantization=Quantization(0.05, 10))
    assert p.score(np.array([[30]], dtype=np.uint8)) == pytest.approx(1.0)
    assert Presence(output="p", threshold=0.5, scale=0.1).score(np.array([[0.25]], np.float32)) == pytest.approx(0.25)


@pytest.mark.parametrize("changes, message", [
    ({"scale": 0.0}, "scale > 0"),
    ({"threshold": float("nan")}, "finite"),
    ({"method": "vibes"}, "presence.method"),
    ({"output": ""}, "must name an output"),
    ({"label": ""}, "presence.label"),
])
def test_invalid_presence_records_are_refused(changes, message):
    with pytest.raises(ModelError, match=message):
        Presence(**{"output": "presence", "threshold": 1.0, "scale": 1.0} | changes)


def test_contract_round_trips_its_presence_and_lists_none_among_its_answers():
    contract = ModelContract.from_dict(BASE | {"output_name": "scores", "presence": PRESENCE})
    assert contract.presence == Presence(output="presence", threshold=4.5, scale=0.7, method="imagenet")
    assert contract.answers == ("cat", "dog", "none")
    again = ModelContract.from_dict(json.loads(json.dumps(contract.to_dict())))
    assert again == contract


def test_a_contract_without_presence_is_written_as_before():
    """Older catdog-edge releases warn about every field they do not know: a model without a presence
    score must not make them."""
    data = ModelContract.from_dict(BASE).to_dict()
    assert "presence" not in data and "output_name" not in data
    assert ModelContract.from_dict(BASE).answers == ("cat", "dog")


@pytest.mark.parametrize("presence, message", [
    (3, "presence"),
    ({"output": "presence"}, "threshold"),
    (PRESENCE | {"threshold": "high"}, "presence.threshold"),
    (PRESENCE | {"quantization": {"scale": 0.1}}, "presence.quantization"),
    (PRESENCE | {"label": "dog"}, "also a class label"),
])
def test_contract_refuses_a_malformed_presence(presence, message):
    with pytest.raises(ModelError, match=message):
        ModelContract.from_dict(BASE | {"presence": presence})
