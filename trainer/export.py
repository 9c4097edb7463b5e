"""Convert a .keras model to .tflite (int8, float16, dynamic-range or float32), check parity, embed the contract."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from catdog.edge.classify import Classifier
from catdog.edge.contract import ModelContract, sidecar_path
from catdog.edge.quantization import Quantization
from catdog.edge.errors import ModelError
from catdog.edge.files import atomic_write_bytes
from catdog.edge.metadata import embed_contract, read_embedded_contract
from catdog.edge.runtime import find_runtime, load_interpreter
from catdog.edge.signature import first_output, ordered_output_names, output_names
from catdog.edge.std_metadata import ModelInfo, describe, read_standard_metadata

from ._tf import import_tensorflow, quiet
from .config import ExportConfig, ExportMode
from .data import LoadedPhotos, load_for, scan_folder, stratified_sample
from .errors import DataError
from .keras_model import load_keras
from .model import softmax_head, with_features
from .parity import ParityReport, parity_on_photos
from .recipe import photo_set_hash, portable_contract, portable_path, recorded_check
from .scan import DataReport, check_data


@dataclass(frozen=True)
class ExportResult:
    """What export wrote and measured."""

    out_path: Path
    """The .tflite file."""
    contract_path: Path
    """Its contract (.json)."""
    mode: ExportMode
    """How weights and tensors are stored."""
    size_bytes: int
    """Size of the .tflite file."""
    calibration_photos: int
    """Photos used for int8 calibration (0 for the other modes)."""
    calibration_counts: dict[str, int]
    """Calibration photos per label."""
    parity: ParityReport
    """Parity with the Keras model on the validation photos."""


def _recorded_data(
    contract: ModelContract, data_root: Path | None, progress: Callable[[int, int], None] | None,
    log: Callable[[str], None],
) -> DataReport:
    """The checked photo sets the model was fitted on: check_data on the settings its contract records,
    with the recorded (relative) folders found under data_root, and their content checked against the
    hashes fit recorded.

    Raises:
        DataError: the contract records no settings, or the photos are not there, differ from fit's or
            no longer pass the checks.
    """
    escape = "pass --data-root DIR (the folder that holds them) or --calibration and --parity-data"
    try:
        check = recorded_check(contract, data_root)
    except DataError as exc:
        raise DataError(f"{exc} (--calibration and --parity-data)") from None
    folders = [folder for folder in (check.data_dir, check.val_dir) if folder is not None]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        where = "the working directory" if data_root is None else str(data_root)
        raise DataError(f"the photos fit used ({' and '.join(missing)}, as the contract records them) are not in {where}; {escape}")
    log("checking the photos fit used, as the contract records them: " + " and ".join(map(str, folders)))
    try:
        report = check_data(check, progress)
    except DataError as exc:
        raise DataError(f"cannot rebuild the photo sets recorded in the contract ({exc}); {escape}") from None
    for name, photos, folder in (("training", report.train, check.data_dir), ("validation", report.val, check.val_dir)):
        recorded = contract.training.get("train_set_sha256" if name == "training" else "val_set_sha256")
        if recorded is not None and photo_set_hash(photos) != recorded:
            raise DataError(f"the {name} photos in {folder or check.data_dir} are not the ones fit used (their content "
                            f"hash differs); {escape}")
    return report


def convert(keras_model: Any, mode: ExportMode, calibration: LoadedPhotos | None) -> bytes:
    """Convert a Keras model to TFLite flatbuffer bytes.

    int8: full-integer ops, uint8 input of raw pixels and uint8 output, calibrated on the given photos.
    float16: float16 weights (dequantized at load), float32 input and output.
    dynamic: int8 weights, float32 input and output, activations quantized at run time.
    none: float32 throughout.

    Raises:
        ModelError: the converter failed.
    """
    tf, _ = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if mode is ExportMode.int8:
        if calibration is None or len(calibration.images) == 0:
            raise DataError("int8 export needs calibration photos")

        def representative() -> Iterator[list[np.ndarray]]:
            for image in calibration.images:
                yield [image[np.newaxis].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    elif mode is ExportMode.float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode is ExportMode.dynamic:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        # The converter saves a temporary SavedModel and prints its signature listing on stdout, and
        # its quantizer's settings and warnings on stderr, which would bury the export's own report.
        with quiet() as printed, contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()
    except Exception as exc:  # the converter raises many types; report it as one clear error
        raise ModelError(f"TFLite conversion failed ({printed.reason(exc)})") from None


def _contract_for(tflite_path: Path, base: ModelContract, mode: ExportMode) -> ModelContract:
    """The base contract with the tensor details of the converted model (every output found by its name)."""
    interpreter = load_interpreter(tflite_path, find_runtime())
    outputs = interpreter.get_output_details()
    by_index = {detail["index"]: detail for detail in outputs}
    named = output_names(tflite_path, str(tflite_path)) if base.output_name else {}  # mapped, not read
    details = {"input": interpreter.get_input_details()[0],
               "output": by_index[named[base.output_name]] if base.output_name else outputs[0]}
    values: dict[str, Any] = {"mode": mode.stored_as}
    for name, detail in details.items():
        values[f"{name}_dtype"], values[f"{name}_quantization"] = _dtype_and_quantization(detail)
    for name in ("presence", "features"):
        record = getattr(base, name)
        if record is not None:
            dtype, quantization = _dtype_and_quantization(by_index[named[record.output]])
            values[name] = dataclasses.replace(record, dtype=dtype, quantization=quantization)
    return base.replace(**values)


def _dtype_and_quantization(detail: dict) -> tuple[str, Quantization | None]:
    scale, zero_point = detail["quantization"]
    return np.dtype(detail["dtype"]).name, Quantization(float(scale), int(zero_point)) if scale else None


def export(
    config: ExportConfig,
    log: Callable[[str], None] = lambda _: None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Export a .keras model to .tflite with its contract, after checking parity on validation photos.

    Calibration and parity photos default to the training and validation sets fit used, rebuilt by
    the same data checks (trainer.scan.check_data) from the settings the contract records (its folders
    found under config.data_root, their content hashes checked), so the validation accuracy recorded
    here is measured on the photos fit validated on.
    The contract is embedded in the .tflite metadata (edge.metadata) and written beside it as JSON, and
    the standard TFLite metadata with the labels packed in the file (edge.std_metadata) lets other
    readers (MediaPipe Tasks, the Task Library) name the classes. A two-class sigmoid head is turned
    into the equivalent two-unit softmax head first (trainer.model.softmax_head), as that standard needs.
    Nothing is written at config.out_path unless conversion and the parity run both succeed.

    Args:
        config: the model, the mode and the photos.
        log: receives short progress messages.
        progress: progress(done, total) while the recorded photos are checked.

    Raises:
        TensorFlowMissingError: TensorFlow is not installed.
        ModelError: the model cannot be loaded or converted, or the embedded contract changed its answers.
        DataError: calibration or validation photos cannot be found.
    """
    keras_model, contract = load_keras(config.model_path)
    contract = portable_contract(contract)  # a model fitted before paths were portable exports without them
    if contract.activation == "sigmoid":  # one score per label, which the standard metadata can label: exact
        keras_model, contract = softmax_head(keras_model), contract.replace(activation="softmax")
    keras_model, contract = with_features(keras_model, contract)  # pretrained: what catdog-edge learn fits on
    calibrate = config.mode is ExportMode.int8
    recorded = None
    if config.parity_dir is None or (calibrate and config.calibration_dir is None):
        recorded = _recorded_data(contract, config.data_root, progress, log)
    calibration = None
    calibration_counts: dict[str, int] = {}
    if calibrate:
        if config.calibration_dir is not None:
            pool = scan_folder(config.calibration_dir, class_names=contract.labels)
        else:
            pool = recorded.train
        cal_set = stratified_sample(pool, config.calibration_count, config.seed)
        calibration = load_for(cal_set, contract)
        calibration_counts = {name: int(np.sum(calibration.labels == i)) for i, name in enumerate(contract.labels)}
        log(f"calibrating int8 on {len(calibration.labels)} photos {calibration_counts}")
    if config.parity_dir is not None:
        parity_set = scan_folder(config.parity_dir, class_names=contract.labels)
    else:
        parity_set = recorded.val
    data = convert(keras_model, config.mode, calibration)
    if contract.output_name is not None:  # the class scores stay output 0, where catdog-edge releases before named outputs read them
        data = first_output(data, contract.output_name, str(config.model_path))

    out = config.out_path
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        tmp_model = Path(tmp) / out.name
        tmp_model.write_bytes(data)
        tflite_contract = _contract_for(tmp_model, contract, config.mode)
        tflite_contract.save(sidecar_path(tmp_model))
        classifier = Classifier.load(tmp_model)
        val = load_for(parity_set, contract)
        report = parity_on_photos(keras_model, classifier, val)
        metrics = dict(contract.metrics)
        if config.parity_dir is None:  # fit's validation photos: figures comparable with fit's
            metrics.update(
                val_photos=report.photos,
                keras_val_accuracy=round(report.keras_accuracy, 4),
                tflite_val_accuracy=round(report.tflite_accuracy, 4),
            )
            if report.tflite_none_rate is not None:
                metrics["tflite_val_none_rate"] = round(report.tflite_none_rate, 4)
        else:
            metrics["parity_data"] = portable_path(config.parity_dir)
        metrics.update(
            {
                "parity": report.to_dict(),
                "calibration_photos": 0 if calibration is None else len(calibration.labels),
                "calibration_per_label": calibration_counts,
            }
        )
        tflite_contract = tflite_contract.replace(metrics=metrics)
        tflite_contract.save(sidecar_path(tmp_model))
        _embed(tmp_model, tflite_contract, val.images[0], before=classifier.predict(val.images[0]))
        _describe(tmp_model, tflite_contract, config.info, log)
        # Durably, the model first: a sidecar never describes a model that is not there yet.
        atomic_write_bytes(out, tmp_model.read_bytes())
        atomic_write_bytes(sidecar_path(out), sidecar_path(tmp_model).read_bytes())
    return ExportResult(
        out_path=out,
        contract_path=sidecar_path(out),
        mode=config.mode,
        size_bytes=out.stat().st_size,
        calibration_photos=metrics["calibration_photos"],
        calibration_counts=calibration_counts,
        parity=report,
    )


def _embed(model_path: Path, contract: ModelContract, probe: np.ndarray, before: np.ndarray) -> None:
    """Embed the contract in the .tflite file in place, then check the model still answers probe as
    it did before (before: the un-embedded model's scores for probe).

    Raises:
        ModelError: the rewritten file reads back a different contract or gives a different answer.
    """
    payload = json.dumps(contract.to_dict(), separators=(",", ":")).encode()
    model_path.write_bytes(embed_contract(model_path.read_bytes(), payload))
    if read_embedded_contract(model_path) != json.loads(payload):
        raise ModelError(f"{model_path}: the embedded contract does not read back; please report this")
    after = Classifier.load(model_path).predict(probe)
    if not np.array_equal(before, after):
        raise ModelError(f"{model_path}: embedding the contract changed the model's output; please report this")


def _describe(model_path: Path, contract: ModelContract, info: ModelInfo, log: Callable[[str], None]) -> None:
    """Add the standard TFLite metadata and the packed labels to the .tflite file in place (RGB models:
    the standard cannot describe a grayscale input), then check that both it and the contract read back.

    Raises:
        ModelError: the rewritten file reads back different labels or a different contract.
    """
    if contract.color != "RGB":
        log("grayscale model: no standard TFLite metadata (it describes RGB inputs only); the catdog contract is embedded")
        return
    extra = ordered_output_names(model_path.read_bytes(), str(model_path))[1:] if contract.output_name else []
    model_path.write_bytes(describe(model_path.read_bytes(), contract, info, output_names=extra))
    standard = read_standard_metadata(model_path)
    if standard is None or standard.labels != contract.labels or read_embedded_contract(model_path) != contract.to_dict():
        raise ModelError(f"{model_path}: the standard metadata or the contract does not read back; please report this")
