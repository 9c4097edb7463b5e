"""edge never imports TensorFlow, Keras or trainer: checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT


def test_edge_runs_without_importing_tensorflow(bundled_model, val_photos):
    code = textwrap.dedent(
        f"""
        import sys
        import edge, edge.cli, edge.classify, edge.contract, edge.preprocess, edge.runtime, edge.inputs
        prediction = edge.Classifier.load({str(bundled_model)!r}).classify({str(val_photos['cat'][0])!r})
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'trainer', 'tf_keras'))
        print(prediction.label, heavy)
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] in ("cat", "dog")
