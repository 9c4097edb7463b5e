"""EfficientNet-Lite0: the converted ImageNet weights compute what the PyTorch port computes, see what
its training saw, and classify the data set's cats and dogs; heads, backbone and misfit weights.

How sharp each check is, measured by breaking the conversion on purpose (first 60 val/ dogs and 60 cats
at 224 px; features at 128x112 against the numpy port; the stem batch norm's statistics):

    model                                   dogs top-1  cats top-5  cats top-1  port    stem BN mean shift, var ratio
    correct                                 100.0%      86.7%       70.0%       1e-5    0.02, 0.64
    conv kernels reshaped, not transposed     0.0%       0.0%        0.0%       -       -
    conv kernels, height and width swapped   90.0%      71.7%       43.3%       5.2     -
    depthwise kernels reshaped                0.0%       0.0%        0.0%       -       -
    ImageNet dense kernel reshaped           10.0%       8.3%        1.7%       -       -
    "valid" padding on stride-2 convs       100.0%      85.0%       63.3%       5.2     -
    symmetric padding k//2 (PyTorch-style)  100.0%      88.3%       73.3%       3.2     -
    normalised x / 255                       98.3%      86.7%       68.3%       -       0.12, 0.17
    normalised with ImageNet mean/std        98.3%      91.7%       68.3%       -       0.13, 3.16
    BGR instead of RGB                       96.7%      86.7%       73.3%       -       -
    (all 500 + 500 val/ photos, correct: dogs top-1 95.0%, cats top-5 91.4%, cats top-1 78.4%)

So the ImageNet classes catch a wrong transpose but not padding or normalisation, which the classes
barely feel on this easy data set: padding is pinned by the numpy port (max difference 1e-5 correct,
over 3 broken), normalisation by the stem batch norm's running statistics (mean shift 0.02 correct,
over 0.12 for either wrong normalisation). Breaking trainer/efficientnet.py itself fails: reshape for
transpose 4 tests here (port, classes, stem statistics, every tensor), "valid" stride-2 padding 5,
x / 255 3 (port, stem statistics, heads), a BGR swap 1 (port).
"""

from __future__ import annotations

import numpy as np
import pytest

from catdog.edge.preprocess import prepare
from catdog.trainer.efficientnet import BACKBONE_OUTPUT, BN_EPSILON, LITE0_MEAN, LITE0_STD, backbone, build_lite0
from catdog.trainer.errors import DataError, WeightsError

from .test_pretrained import installed_imagenet_weights

PHOTOS_PER_CLASS = 60
IMAGENET_DOGS = range(151, 269)
IMAGENET_CATS = range(281, 286)

#: The stride of each of the 16 blocks, from the release's block strings (r1_k3_s11, r2_k3_s22, ...):
#: written out here so the reference below does not borrow the table it checks.
PORT_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1)


@pytest.fixture(scope="module")
def imagenet_weights() -> dict[str, np.ndarray]:
    return installed_imagenet_weights()


@pytest.fixture(scope="module")
def imagenet_model(imagenet_weights):
    """The converted network with its ImageNet head, any input size, built once."""
    return build_lite0((None, None, 3), 1000, imagenet_weights, imagenet_head=True)


@pytest.fixture(scope="module")
def photos_224(val_photos) -> dict[str, np.ndarray]:
    """The first val/ photos of each class as the edge prepares them at 224x224, float32 0..255."""
    return {
        label: np.stack([prepare(path, (224, 224)) for path in paths[:PHOTOS_PER_CLASS]]).astype(np.float32)
        for label, paths in val_photos.items()
    }


def _port_features(weights: dict[str, np.ndarray], pixels: np.ndarray) -> np.ndarray:
    """The pooled features as efficientnet_lite_pytorch computes them in eval mode, in float64 numpy on
    the PyTorch-layout arrays: channels first, cross-correlation, TensorFlow-SAME static padding
    (Conv2dStaticSamePadding: the odd pixel at the bottom and right), batch norm with eps 1e-3."""

    def conv(x: np.ndarray, w: np.ndarray, stride: int = 1, depthwise: bool = False) -> np.ndarray:
        _, _, h, wd = x.shape
        kh, kw = w.shape[2:]
        oh, ow = -(-h // stride), -(-wd // stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))
        out = 0.0
        for dy in range(kh):
            for dx in range(kw):
                patch = x[:, :, dy : dy + (oh - 1) * stride + 1 : stride, dx : dx + (ow - 1) * stride + 1 : stride]
                tap = w[:, :, dy, dx]
                out = out + (patch * tap[None, :, 0, None, None] if depthwise else np.einsum("nchw,oc->nohw", patch, tap))
        return out

    def bn(x: np.ndarray, key: str) -> np.ndarray:
        parts = ("weight", "bias", "running_mean", "running_var")
        gamma, beta, mean, var = (weights[f"{key}.{part}"][None, :, None, None] for part in parts)
        return (x - mean) / np.sqrt(var + 1e-3) * gamma + beta

    def relu6(x: np.ndarray) -> np.ndarray:
        return np.clip(x, 0.0, 6.0)

    x = ((pixels.astype(np.float64) - 127.0) / 128.0).transpose(0, 3, 1, 2)
    x = relu6(bn(conv(x, weights["_conv_stem.weight"], 2), "_bn0"))
    for i, stride in enumerate(PORT_STRIDES):
        key = f"_blocks.{i}."
        y = x
        if key + "_expand_conv.weight" in weights:
            y = relu6(bn(conv(y, weights[key + "_expand_conv.weight"]), key + "_bn0"))
        y = relu6(bn(conv(y, weights[key + "_depthwise_conv.weight"], stride, depthwise=True), key + "_bn1"))
        y = bn(conv(y, weights[key + "_project_conv.weight"]), key + "_bn2")
        x = x + y if stride == 1 and y.shape == x.shape else y
    x = relu6(bn(conv(x, weights["_conv_head.weight"]), "_bn1"))
    return x.mean(axis=(2, 3))


def test_the_converted_model_computes_what_the_pytorch_port_computes(imagenet_model, imagenet_weights, val_photos):
    """Every layout and every padding: 128x112 pads every stride-2 convolution asymmetrically but the
    last, whose 7-pixel-wide input pads 2 and 2."""
    pixels = np.stack([prepare(path, (128, 112)) for path in val_photos["dog"][:2]]).astype(np.float32)
    expected = _port_features(imagenet_weights, pixels)
    features = backbone(imagenet_model).predict(pixels, verbose=0)
    assert features.shape == (2, 1280) and expected.max() > 1.0  # features that mean something
    np.testing.assert_allclose(features, expected, atol=1e-3)  # broken paddings or transposes: over 3


def test_imagenet_classes_on_the_data_sets_dogs_and_cats(imagenet_model, photos_224):
    """Dogs land in ImageNet's dog classes at top-1, cats in its cat classes within the top 5."""
    dogs = imagenet_model.predict(photos_224["dog"], batch_size=30, verbose=0)
    cats = imagenet_model.predict(photos_224["cat"], batch_size=30, verbose=0)
    dogs_top1 = np.isin(dogs.argmax(axis=1), IMAGENET_DOGS).mean()
    cats_top5 = np.isin(np.argsort(-cats, axis=1)[:, :5], IMAGENET_CATS).any(axis=1).mean()
    assert dogs_top1 >= 0.9, f"{dogs_top1:.1%} of dogs in ImageNet's dog classes (100.0% measured)"
    assert cats_top5 >= 0.8, f"{cats_top5:.1%} of cats in ImageNet's cat classes within the top 5 (86.7% measured)"


def test_the_normalisation_reproduces_what_the_stem_batch_norm_saw_in_training(imagenet_model, photos_224):
    """The stem batch norm's running mean and variance were gathered on the release's normalised inputs;
    (x - 127) / 128 brings natural photos back to them, x / 255 or ImageNet's mean/std do not."""
    assert (LITE0_MEAN, LITE0_STD) == (127.0, 128.0)
    import keras

    stem_bn = imagenet_model.get_layer("stem_bn")
    stem = keras.Model(imagenet_model.input, stem_bn.input)
    out = stem.predict(np.concatenate(list(photos_224.values())), batch_size=30, verbose=0).reshape(-1, 32)
    sd = np.sqrt(stem_bn.moving_variance.numpy() + BN_EPSILON)
    mean_shift = np.median(np.abs(out.mean(axis=0) - stem_bn.moving_mean.numpy()) / sd)
    var_ratio = np.median(out.var(axis=0) / sd**2)
    assert mean_shift < 0.06, f"median mean shift {mean_shift:.2f} standard deviations (0.02 measured)"
    assert 0.5 < var_ratio < 2.0, f"median variance ratio {var_ratio:.2f} (0.64 measured)"


def test_every_tensor_is_used(imagenet_model, imagenet_weights):
    """All 247 weights land in the model (the 49 batch-norm step counters are PyTorch bookkeeping)."""
    weights = {k: v for k, v in imagenet_weights.items() if not k.endswith("num_batches_tracked")}
    assert len(weights) == 247
    assert imagenet_model.count_params() == sum(v.size for v in weights.values())
    stem = imagenet_model.get_layer("stem_conv").kernel.numpy()
    assert np.array_equal(stem, weights["_conv_stem.weight"].transpose(2, 3, 1, 0))
    last = imagenet_model.get_layer("block15_dwconv").kernel.numpy()
    assert np.array_equal(last, weights["_blocks.15._depthwise_conv.weight"].transpose(2, 3, 0, 1))


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda w: w.update({"_blocks.3._depthwise_conv.weight": np.zeros((144, 1, 3, 3), np.float32)}),
         ["_blocks.3._depthwise_conv.weight", "has shape (144, 1, 3, 3), the model needs (144, 1, 5, 5)"]),
        (lambda w: w.pop("_blocks.7._bn2.running_var"), ["_blocks.7._bn2.running_var is missing", "(80,)"]),
        (lambda w: w.update({"_blocks.16._project_conv.weight": np.zeros((8, 4, 1, 1), np.float32)}),
         ["_blocks.16._project_conv.weight", "(8, 4, 1, 1)", "not a weight of the model"]),
    ],
    ids=["wrong-shape", "missing", "left-over"],
)
def test_weights_that_do_not_fit_fail_in_one_line_naming_the_key(imagenet_weights, change, words):
    weights = dict(imagenet_weights)
    change(weights)
    with pytest.raises(WeightsError) as caught:
        build_lite0((32, 32, 3), 2, weights)
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_class_heads_skip_the_imagenet_classifier(imagenet_model, imagenet_weights):
    import keras

    two = build_lite0((64, 64, 3), 2, imagenet_weights)
    assert two.input.name == "pixels" and two.output_shape == (None, 1)
    assert two.layers[-1].name == "prob" and two.layers[-1].activation is keras.activations.sigmoid
    three = build_lite0((64, 64, 3), 3)
    assert three.output_shape == (None, 3) and three.layers[-1].name == "probs"
    assert backbone(two).output_shape == (None, 1280) and two.get_layer(BACKBONE_OUTPUT).output.shape == (None, 1280)
    # The same backbone as the ImageNet model: scaling inside, raw 0..255 pixels in.
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    features = backbone(two).predict(pixels, verbose=0)
    np.testing.assert_allclose(features, backbone(imagenet_model).predict(pixels, verbose=0), atol=1e-5)
    scale = two.get_layer("normalise")
    assert np.allclose(scale(np.array([0.0, 127.0, 255.0], np.float32)), [-127 / 128, 0.0, 1.0])


@pytest.mark.parametrize("n_classes, imagenet_head", [(1, False), (2, True)])
def test_impossible_heads_are_refused(n_classes, imagenet_head):
    with pytest.raises(DataError):
        build_lite0((32, 32, 3), n_classes, imagenet_head=imagenet_head)
