"""Learn on the device: a new head on a base model's own backbone features, numpy only, written as a self-contained .tflite.

`catdog-edge learn DIR --out MODEL` reads DIR/<class>/ photos (the layout catdog-train reads; DIR/inbox/,
hidden folders and the presence label's folder, e.g. DIR/none/, are not classes), runs the base model
(int8, made by catdog-train export of a pretrained model, which exposes its pooled features as an output:
edge.features) on each photo, and fits on those features:

- the class head: L2-regularised logistic regression, its strength chosen by cross-validation on the
  photos, the same code and grid as catdog-train fit (edge.head);
- the presence score "familiarity": spherical k-means centroids of the features, its threshold from
  out-of-fold scores, as catdog-train fit's familiarity part (edge.familiarity); photos of the empty
  scene in DIR/none/ (the review view's "none") move the threshold as catdog-train fit --none does.

The classes may differ from the base's (new ones, fewer). MODEL is the base's graph with the new head
grafted onto its int8 features (edge.graft): the class scores, the presence score and the features are all
computed by TFLite builtins in the file, so MODEL is a model like any other (every catdog-edge command,
MediaPipe and the other standard metadata readers read its new labels), and it can be the base of the next
learn. The head is quantized here (int8 weights, int32 bias, output range from the training logits), so its
answers equal the numpy head's within quantization error. The contract is embedded and written beside MODEL;
nothing is written at MODEL unless the whole model was built and read back (edge.files).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .camera.collect import INBOX
from .classify import Classifier
from .contract import ModelContract, sidecar_path
from .errors import CatDogError, ImageError, ModelError
from .familiarity import PERCENTILE, familiarity, fit_familiarity, rescaling, threshold_with_none, unit
from .files import atomic_write_bytes
from .graft import Dense, graft
from .head import L2_GRID, LinearHead, search_head
from .metadata import embed_contract
from .modelcheck import check_model
from .preprocess import IMAGE_SUFFIXES
from .presence import NONE_LABEL, Presence
from .quantization import Quantization
from .signature import output_names

#: A class needs at least this many photos (two cross-validation folds).
MIN_PER_CLASS = 2
#: Margin added on each side of the training outputs' range when choosing an output's int8 scale.
RANGE_MARGIN = 0.1
#: Fraction of the checked photos on which the written model must answer as the numpy head (near-ties may differ).
MIN_AGREEMENT = 0.9
#: Training photos the written model is run on to check it answers as the numpy head does.
CHECK_PHOTOS = 32


class LearnError(CatDogError):
    """The photos cannot teach a model: no class folders, one class, too few readable photos."""

    exit_code = 2


@dataclass(frozen=True)
class LearnConfig:
    """What catdog-edge learn fits and where it writes it."""

    data_dir: Path
    """Photos, data_dir/<class>/<photo>; inbox/, hidden folders and the presence label's folder are skipped."""
    out_path: Path
    """The .tflite to write (its contract beside it, .json)."""
    model: Path | str | None = None
    """The base model: a .tflite path or a bundled model's name; None: the default (edge.models.resolve_model)."""
    seed: int = 1337
    """Seeds the cross-validation folds and k-means."""
    presence: bool = True
    """Fit a familiarity presence score (the model can answer "none")."""
    threads: int | None = None
    """Interpreter threads for computing the features (None: the runtime's default)."""


@dataclass(frozen=True)
class LearnResult:
    """What learn fitted and wrote."""

    out_path: Path
    contract_path: Path
    labels: tuple[str, ...]
    """The new model's classes (folder names, sorted)."""
    photos: dict[str, int]
    """Photos per class the head was fitted on."""
    skipped: list[str] = field(default_factory=list)
    """Photos that could not be read (path: reason)."""
    l2: float = 0.0
    """The L2 strength cross-validation chose."""
    cv_accuracy: dict[float, float] = field(default_factory=dict)
    """Mean held-out accuracy of each strength tried."""
    train_accuracy: float = 0.0
    """The numpy head's accuracy on the photos it was fitted on."""
    agreement: float = 0.0
    """Fraction of the checked photos where the written model's answer equals the numpy head's."""
    features_seconds: float = 0.0
    """Time spent computing the features (the base model on every photo)."""
    fit_seconds: float = 0.0
    """Time spent fitting the head and the presence score."""


def class_folders(data_dir: Path, skip: tuple[str, ...] = ()) -> list[Path]:
    """The class folders of a photo tree, sorted: not inbox/, hidden folders or the names in skip.

    Raises:
        LearnError: data_dir is not a folder.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise LearnError(f"{data_dir}: not a folder; pass DIR holding one folder of photos per class (DIR/<class>/)")
    return sorted(p for p in data_dir.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and p.name != INBOX and p.name not in skip)


def learn(config: LearnConfig, log: Callable[[str], None] = lambda _: None,
          progress: Callable[[int, int], None] | None = None) -> LearnResult:
    """Fit a new head (and presence score) on a base model's features of config.data_dir's photos and write the model.

    Args:
        config: the photos, the base model and the output.
        log: receives short progress messages.
        progress: progress(done, total) while the features are computed.

    Raises:
        LearnError: fewer than 2 classes, or a class with fewer than MIN_PER_CLASS readable photos.
        ModelError: the base model cannot be loaded or exposes no features (re-export it), or the written model
            does not answer as the numpy head (MIN_AGREEMENT).
        OSError: MODEL cannot be written (nothing is left at MODEL).
    """
    from .models import resolve_model

    base_path = resolve_model(config.model)
    base = Classifier.load(base_path, presence=False, threads=config.threads)
    if base.contract.features is None:
        raise ModelError(f"{base_path}: the model exposes no backbone features; export a pretrained model "
                         "(catdog-train fit --arch efficientnet-lite0, then catdog-train export --quantize) to learn from it")
    none_label = base.contract.presence.label if base.contract.presence is not None else NONE_LABEL
    folders = class_folders(config.data_dir, skip=(none_label,))
    photos = [(path, label) for label, folder in enumerate(folders) for path in _photos(folder)]
    if len(folders) < 2:
        raise LearnError(f"{config.data_dir}: {len(folders)} class folder(s); learning needs at least 2 "
                         "(DIR/<class>/ with photos in each)")
    start = time.perf_counter()
    rows, labels, pixels_kept, skipped = [], [], [], []
    for done, (path, label) in enumerate(photos, 1):
        try:
            pixels = base.preprocess(path)
        except ImageError as exc:
            skipped.append(f"{path}: {exc}")
            continue
        if labels.count(label) < CHECK_PHOTOS:  # each class's first photos check the written model
            pixels_kept.append((pixels, len(rows)))
        rows.append(base.features(pixels))
        labels.append(label)
        if progress is not None:
            progress(done, len(photos))
    features_seconds = time.perf_counter() - start
    names = tuple(folder.name for folder in folders)
    y = np.asarray(labels, np.intp)  # the platform's index type: int32 on 32-bit Pi OS
    counts = {name: int(np.sum(y == i)) for i, name in enumerate(names)}
    few = [name for name, n in counts.items() if n < MIN_PER_CLASS]
    if few:
        raise LearnError(f"{config.data_dir}: class(es) {', '.join(few)} have fewer than {MIN_PER_CLASS} readable photos; "
                         "add photos or remove the folder")
    x = np.stack(rows).astype(np.float32)
    log(f"features of {len(y)} photos {counts} in {features_seconds:.1f} s; fitting the head")

    start = time.perf_counter()
    search = search_head(x, y, len(names), seed=config.seed)
    head = softmax_kernel(search.head)
    presence_dense, presence_record = (None, None)
    if config.presence:
        none_x = _none_features(base, Path(config.data_dir) / none_label, skipped)
        presence_dense, presence_record = _familiarity(x, y, config.seed, none_x, none_label)
    fit_seconds = time.perf_counter() - start
    logits = x.astype(np.float64) @ head.kernel + head.bias
    margin = RANGE_MARGIN * float(np.ptp(logits))
    dense = Dense(head.kernel, head.bias, float(logits.min()) - margin, float(logits.max()) + margin)

    content = graft(_without_archive(base_path.read_bytes()), dense, presence_dense, base.contract.features.output,
                    str(base_path))
    train_accuracy = float(np.mean(search.head.predict(x) == y))
    contract = _contract(base.contract, names, presence_record, config, base_path, counts, search, train_accuracy)
    out = Path(config.out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".learn-") as tmp:
        model_path = Path(tmp) / out.name
        model_path.write_bytes(content)
        contract = _tensor_details(model_path, contract)
        content = embed_contract(content, json.dumps(contract.to_dict(), separators=(",", ":")).encode())
        if contract.color == "RGB":  # the standard metadata describes RGB inputs only
            from .signature import ordered_output_names
            from .std_metadata import ModelInfo, describe

            content = describe(content, contract, ModelInfo(author="catdog-edge learn"),
                               output_names=ordered_output_names(content, str(out))[1:])
        model_path.write_bytes(content)
        contract.save(sidecar_path(model_path))
        check_model(content, contract, str(out))
        learned = Classifier.load(model_path, threads=config.threads)
        expected = search.head.predict(x[[row for _, row in pixels_kept]])
        got = np.array([int(np.argmax(learned.predict(pixels))) for pixels, _ in pixels_kept])
        agreement = float(np.mean(got == expected))
        if agreement < MIN_AGREEMENT:
            raise ModelError(f"the learned model answers as its numpy head on only {agreement:.0%} of the photos checked; "
                             "nothing was written, please report this")
        atomic_write_bytes(out, content)  # the model first: a sidecar never describes a model that is not there
        atomic_write_bytes(sidecar_path(out), sidecar_path(model_path).read_bytes())
    log(f"wrote {out}: {', '.join(names)}; L2 {search.l2:g}, cross-validated accuracy {search.cv_accuracy[search.l2]:.3f}")
    return LearnResult(out, sidecar_path(out), names, counts, skipped, search.l2, search.cv_accuracy, train_accuracy,
                       agreement, features_seconds, fit_seconds)


def softmax_kernel(head: LinearHead) -> LinearHead:
    """The head as one logit per label: a one-unit sigmoid head (two labels) becomes the equivalent two-unit
    softmax, [-W/2, W/2] and [-b/2, b/2] (softmax([-z/2, z/2]) = [1 - sigmoid(z), sigmoid(z)])."""
    if head.kernel.shape[1] != 1:
        return head
    return LinearHead(np.concatenate([-head.kernel / 2, head.kernel / 2], axis=1),
                      np.concatenate([-head.bias / 2, head.bias / 2]))


def _photos(folder: Path) -> list[Path]:
    """The photo files of a folder, sorted (not hidden files)."""
    if not folder.is_dir():
        return []
    return [path for path in sorted(folder.iterdir())
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES]


def _none_features(base: Classifier, folder: Path, skipped: list[str]) -> np.ndarray:
    """Features (M, D) of the user's photos of the empty scene (DIR/none/, which the review view fills)."""
    rows = []
    for path in _photos(folder):
        try:
            rows.append(base.features(base.preprocess(path)))
        except ImageError as exc:
            skipped.append(f"{path}: {exc}")
    return np.stack(rows) if rows else np.zeros((0, base.contract.features.size), np.float32)


def _familiarity(x: np.ndarray, y: np.ndarray, seed: int, none_x: np.ndarray, none_dir: str) -> tuple[Dense, dict]:
    """The familiarity presence score as a dense layer on unit features (rescaling folded in) and its record.

    With photos of the empty scene (none_x, M > 0, from the folder named none_dir) the threshold moves as catdog-train fit --none moves it
    (edge.familiarity.threshold_with_none); the record's "threshold" is then not 0.
    """
    centroids, oof = fit_familiarity(x, y, seed)
    threshold, width = rescaling(oof)
    kernel = centroids.T.astype(np.float64) / width
    bias = np.full(len(centroids), -threshold / width)
    train = (familiarity(unit(x), centroids) - threshold) / width
    record = {"photos": int(len(x)), "percentile": PERCENTILE, "threshold": 0.0, "parts": [
        {"method": "familiarity", "raw_threshold": round(threshold, 6), "width": round(width, 6), "units": len(centroids)}]}
    low = min(float(train.min()), -threshold / width)  # a photo unlike any training photo: cosine near 0
    if len(none_x):
        none = (familiarity(unit(none_x), centroids) - threshold) / width
        moved, rule = threshold_with_none((oof - threshold) / width, none)
        record.update(threshold=round(moved, 6), none_photos=len(none), none_dir=none_dir, rule=rule)
        low = min(low, float(none.min()))
    high = float(train.max())
    margin = RANGE_MARGIN * (high - low)
    return Dense(kernel, bias, low - margin, high + margin), record


def _contract(base: ModelContract, labels: tuple[str, ...], presence: dict | None, config: LearnConfig, base_path: Path,
              counts: dict[str, int], search, train_accuracy: float) -> ModelContract:
    """The new model's contract before its tensor details are read back (edge.learn._tensor_details)."""
    label = base.presence.label if base.presence is not None else NONE_LABEL
    record = None if presence is None else Presence(
        output="presence", threshold=presence.pop("threshold"), scale=1.0, method="familiarity", label=label,
        calibration=presence)
    training = {
        "command": "catdog-edge learn", "arch": base.training.get("arch", "?"), "train_photos": sum(counts.values()),
        "multiply_adds": base.training.get("multiply_adds"), "base_model": base_path.name, "base_labels": list(base.labels),
        "data_dir": Path(config.data_dir).name, "photos_per_label": counts, "seed": config.seed,
        "head_l2": search.l2, "head_cv_accuracy": {f"{k:g}": round(v, 4) for k, v in search.cv_accuracy.items()},
        "l2_grid": list(L2_GRID), "folds": search.folds,
    }
    metrics = {"cv_accuracy": round(search.cv_accuracy[search.l2], 4), "train_accuracy": round(train_accuracy, 4)}
    return base.replace(labels=labels, activation="softmax", threshold=0.5, output_name="scores", presence=record,
                        training=training, metrics=metrics)


def _tensor_details(model_path: Path, contract: ModelContract) -> ModelContract:
    """The contract with the dtype and quantization of the written model's outputs, read by the interpreter."""
    from .runtime import find_runtime, load_interpreter

    interpreter = load_interpreter(model_path, find_runtime())
    by_index = {detail["index"]: detail for detail in interpreter.get_output_details()}
    named = output_names(model_path.read_bytes(), str(model_path))

    def read(name: str) -> tuple[str, Quantization | None]:
        detail = by_index[named[name]]
        scale, zero_point = detail["quantization"]
        return np.dtype(detail["dtype"]).name, Quantization(float(scale), int(zero_point)) if scale else None

    dtype, quant = read("scores")
    values = {"output_dtype": dtype, "output_quantization": quant}
    for name in ("presence", "features"):
        record = getattr(contract, name)
        if record is not None:
            dtype, quant = read(record.output)
            values[name] = dataclasses.replace(record, dtype=dtype, quantization=quant)
    return contract.replace(**values)


def _without_archive(content: bytes) -> bytes:
    """The model without the zip of packed labels the standard metadata appends (the new model packs its own)."""
    from .std_metadata import _archive_start

    return content[: _archive_start(content)]
