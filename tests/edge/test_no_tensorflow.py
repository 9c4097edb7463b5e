"""edge never imports TensorFlow, Keras or trainer: checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from catdog.edge import Classifier
from tests.conftest import ROOT


def test_edge_runs_without_importing_tensorflow(bundled_model, val_photos):
    code = textwrap.dedent(
        f"""
        import sys
        import catdog.edge, catdog.edge.cli, catdog.edge.classify, catdog.edge.contract, catdog.edge.preprocess, catdog.edge.runtime, catdog.edge.inputs
        import catdog.edge.learn, catdog.edge.graft, catdog.edge.head, catdog.edge.familiarity
        prediction = catdog.edge.Classifier.load({str(bundled_model)!r}).classify({str(val_photos['cat'][0])!r})
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras') or m.startswith('catdog.trainer'))
        print(prediction.label, heavy)
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == Classifier.load(bundled_model).classify(val_photos["cat"][0]).label
