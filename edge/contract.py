"""The model contract: what a model expects and promises, travelling beside it as JSON."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .files import atomic_write_bytes  # the sidecar is written whole or not at all
from ._contract_json import FIELD_TYPES
from .metadata import MAX_CONTRACT_BYTES, parse_contract_json, read_embedded_contract
from .features import Features
from .presence import Presence
from .quantization import Quantization

FORMAT_VERSION = 1
COLORS = ("RGB", "L")
RESIZE_METHODS = ("bilinear",)
ACTIVATIONS = ("sigmoid", "softmax")
DTYPES = ("uint8", "int8", "float32")
#: Smallest and largest centre crop, as a fraction of each side.
CROP_RANGE = (0.25, 1.0)
#: Largest input side in pixels, most labels and longest label a contract may have: far beyond any
#: real model, small enough that a hostile contract cannot make catdog allocate or print much.
MAX_SIDE = 8192
MAX_LABELS = 1000
MAX_LABEL_CHARS = 200
#: Range of a quantized tensor's values per integer dtype.
INT_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


def check_threshold(value: float, what: str = "--threshold") -> float:
    """The one rule for a binary model's decision threshold: strictly between 0 and 1 (at 0 or 1 one
    label could never be chosen). Returns value.

    Raises:
        ModelError: value is outside (0, 1).
    """
    if not 0.0 < value < 1.0:
        raise ModelError(f"{what} must be strictly between 0 and 1 (a probability of the second label), got {value}")
    return value


@dataclass(frozen=True)
class ModelContract:
    """Everything needed to feed a model and read its answer, and how it was made and measured."""

    labels: tuple[str, ...]
    """Class names in output index order (folder names, sorted)."""
    input_hw: tuple[int, int]
    """Model input (height, width) in pixels."""
    color: str = "RGB"
    """Channel layout the model takes: "RGB" (3 channels) or "L" (grayscale, 1 channel)."""
    resize: str = "bilinear"
    """Resize method of edge.preprocess used to reach input_hw (aspect not kept)."""
    crop: float = 1.0
    """Side of the centred region kept before resizing, as a fraction of each side of the photo
    (1.0: the whole photo). A model trained on random zoomed-in crops sees its subjects at their
    training size when it is fed the centre of each photo (trainer FitConfig.crop)."""
    input_dtype: str = "float32"
    """dtype of the input tensor; pixels are raw 0..255 values in every case."""
    input_quantization: Quantization | None = None
    """Quantization of an integer input tensor, None for float input."""
    output_dtype: str = "float32"
    """dtype of the output tensor."""
    output_quantization: Quantization | None = None
    """Quantization of an integer output tensor, None for float output."""
    activation: str = "sigmoid"
    """"sigmoid": one output, the probability of labels[1]; "softmax": one output per label."""
    threshold: float = 0.5
    """Two-label models (sigmoid or two-unit softmax): labels[1] is chosen when its probability is >= threshold."""
    mode: str = "float32"
    """How the weights are stored: "keras", "float32" or "int8"."""
    training: dict[str, Any] = field(default_factory=dict)
    """How the model was trained: command, data, seed, library versions (free form)."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Figures measured on this model: accuracy, parity with the full model (free form)."""
    format_version: int = FORMAT_VERSION
    """Version of this contract's layout."""
    output_name: str | None = None
    """Name of the class-score output in the model's signature (edge.signature); None: the model's
    first output (contracts written before models had more than one output)."""
    presence: Presence | None = None
    """The presence score that lets the model answer "none" (edge.presence); None: the model always
    answers one of its labels."""
    features: Features | None = None
    """The output carrying the pooled backbone features, which catdog-edge learn fits a new head on
    (edge.features); None: the model exposes none (models that are not pretrained, or exported before)."""

    def __post_init__(self) -> None:
        if not 2 <= len(self.labels) <= MAX_LABELS:
            raise ModelError(
                f"the model contract lists {len(self.labels)} label(s); a classifier needs at least 2 (and at most {MAX_LABELS})"
            )
        if not all(0 < len(label) <= MAX_LABEL_CHARS for label in self.labels) or len(set(self.labels)) != len(self.labels):
            raise ModelError(f"the model contract's labels must be distinct, non-empty and at most {MAX_LABEL_CHARS} characters")
        if len(self.input_hw) != 2 or not all(8 <= side <= MAX_SIDE for side in self.input_hw):
            raise ModelError(f"the model contract has input_hw={self.input_hw}; expected (height, width) of 8 to {MAX_SIDE} px")
        if self.color not in COLORS:
            raise ModelError(f"the model contract has color={self.color!r}; expected one of {COLORS}")
        if self.resize not in RESIZE_METHODS:
            raise ModelError(f"the model contract has resize={self.resize!r}; expected one of {RESIZE_METHODS}")
        if not CROP_RANGE[0] <= self.crop <= CROP_RANGE[1]:
            raise ModelError(f"the model contract has crop={self.crop}; expected a fraction between 0.25 and 1")
        if self.activation not in ACTIVATIONS:
            raise ModelError(f"the model contract has activation={self.activation!r}; expected one of {ACTIVATIONS}")
        if self.activation == "sigmoid" and len(self.labels) != 2:
            raise ModelError("the model contract has a sigmoid output with more than 2 labels; use softmax")
        for name in ("input_dtype", "output_dtype"):
            if getattr(self, name) not in DTYPES:
                raise ModelError(f"the model contract has {name}={getattr(self, name)!r}; expected one of {DTYPES}")
        for dtype, quant in ((self.input_dtype, self.input_quantization), (self.output_dtype, self.output_quantization)):
            low, high = INT_RANGES.get(dtype, (1, 0))  # an empty range: a float tensor takes no quantization
            if quant is not None and not low <= quant.zero_point <= high:
                raise ModelError(
                    f"the model contract quantizes a {dtype} tensor with zero_point={quant.zero_point}; "
                    f"expected an integer dtype ({', '.join(INT_RANGES)}) and a zero_point in its range"
                )
        check_threshold(self.threshold, "the model contract's threshold")
        if self.features is not None and self.features.dtype not in DTYPES:
            raise ModelError(f"the model contract has features.dtype={self.features.dtype!r}; expected one of {DTYPES}")
        if self.presence is not None and self.presence.label in self.labels:
            raise ModelError(
                f"the model contract's presence label {self.presence.label!r} is also a class label; "
                "rename the class folder or the presence label"
            )

    @property
    def answers(self) -> tuple[str, ...]:
        """Every answer the model can give: the labels, then the presence label when it has one."""
        return self.labels if self.presence is None else (*self.labels, self.presence.label)

    @property
    def channels(self) -> int:
        """Number of input channels (3 for RGB, 1 for grayscale)."""
        return 3 if self.color == "RGB" else 1

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one model input, (height, width, channels)."""
        return (*self.input_hw, self.channels)

    def replace(self, **changes: Any) -> "ModelContract":
        """Return a copy with some fields changed."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return ModelContract(**values)

    # --- reading the model's answer -----------------------------------------------------------

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """Turn the raw output tensor into one probability per label.

        Args:
            raw: the model's output for one photo, shape (1, 1) for sigmoid or (1, n_labels) for softmax.

        Returns:
            float32 array (n_labels,) of probabilities in label order.
        """
        values = np.asarray(raw).reshape(-1)
        if self.output_quantization is not None:
            values = self.output_quantization.dequantize(values)
        values = np.clip(values.astype(np.float32), 0.0, 1.0)
        if self.activation == "sigmoid":
            p = float(values[0])
            return np.array([1.0 - p, p], dtype=np.float32)
        return values

    def decide(self, scores: np.ndarray, threshold: float | None = None) -> int:
        """Index of the chosen label: labels[1] when its probability >= threshold (this contract's
        unless given) for two-label models, sigmoid or softmax, else the top score."""
        if len(self.labels) == 2:
            return int(scores[1] >= (self.threshold if threshold is None else threshold))
        return int(np.argmax(scores))

    def check_tensors(self, input_detail: dict, output_detail: dict, source: str) -> None:
        """Check that an interpreter's input and output tensors are what this contract says.

        Raises:
            ModelError: shape, dtype or quantization differ.
        """
        expected_shape = (1, *self.input_shape)
        actual_shape = tuple(int(x) for x in input_detail["shape"])
        if actual_shape != expected_shape:
            raise ModelError(
                f"{source}: model input shape={actual_shape}, contract expects {expected_shape}; "
                "the .tflite and its .json do not belong together, re-export the model"
            )
        for name, detail, want, quant in (
            ("input", input_detail, self.input_dtype, self.input_quantization),
            ("output", output_detail, self.output_dtype, self.output_quantization),
        ):
            got = np.dtype(detail["dtype"]).name
            if got != want:
                raise ModelError(f"{source}: model {name} dtype={got}, contract says {want}; re-export the model")
            scale, zero_point = detail["quantization"]
            if quant is not None and (not np.isclose(scale, quant.scale, rtol=1e-5) or zero_point != quant.zero_point):
                raise ModelError(
                    f"{source}: model {name} quantization=({scale}, {zero_point}), contract says "
                    f"({quant.scale}, {quant.zero_point}); re-export the model"
                )
        n_out = int(np.prod(output_detail["shape"]))
        expected_out = 1 if self.activation == "sigmoid" else len(self.labels)
        if n_out != expected_out:
            raise ModelError(
                f"{source}: model has {n_out} output(s), contract expects {expected_out} for "
                f"{len(self.labels)} labels with {self.activation}; re-export the model"
            )

    def check_presence_tensor(self, detail: dict, source: str) -> None:
        """Check that the interpreter's presence output is one value of the dtype and quantization recorded.

        Raises:
            ModelError: shape, dtype or quantization differ.
        """
        if self.presence is not None:
            _check_extra_output(detail, "presence", self.presence.output, 1, self.presence.dtype,
                                self.presence.quantization, source)

    def check_features_tensor(self, detail: dict, source: str) -> None:
        """Check that the interpreter's features output has the size, dtype and quantization recorded.

        Raises:
            ModelError: shape, dtype or quantization differ.
        """
        if self.features is not None:
            _check_extra_output(detail, "features", self.features.output, self.features.size, self.features.dtype,
                                self.features.quantization, source)

    # --- JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of this contract."""
        data = asdict(self)
        for name in ("output_name", "presence", "features"):  # absent rather than null: older catdog-edge releases read these files
            if data[name] is None:
                del data[name]
        data["labels"] = list(self.labels)
        data["input_hw"] = list(self.input_hw)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "contract") -> "ModelContract":
        """Build a contract from a dict (parsed JSON); unknown fields (from a newer catdog) are ignored
        with a warning.

        Every field's JSON type is checked here, its range in __post_init__.

        Raises:
            ModelError: a required field is missing or a value is invalid.
        """
        if not isinstance(data, dict):
            raise ModelError(f"{source}: the contract is not a JSON object; re-export the model")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k)[:40] for k in set(data) - known)
        if unknown:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            warnings.warn(
                f"{source}: ignoring unknown contract field(s) {', '.join(unknown[:5])}{more} "
                "(written by a newer catdog? upgrade catdog to use them)",
                stacklevel=2,
            )
        values = {k: v for k, v in data.items() if k in known}
        for required in ("labels", "input_hw"):
            if required not in values:
                raise ModelError(f"{source}: the contract has no {required!r}; re-export the model with catdog-train export")
        try:
            for name, value in values.items():
                values[name] = FIELD_TYPES[name](name, value)
            return cls(**values)
        except ModelError as exc:
            message = str(exc).replace("the model contract", "the contract", 1)
            raise ModelError(f"{source}: {message}; re-export the model") from None

    def save(self, path: Path) -> None:
        """Write the contract as JSON, atomically (a failed write leaves the old file)."""
        atomic_write_bytes(Path(path), (json.dumps(self.to_dict(), indent=2) + "\n").encode())

    @classmethod
    def load(cls, path: Path) -> "ModelContract":
        """Read a JSON contract.

        Raises:
            ModelError: the file is missing or is not a valid contract.
        """
        path = Path(path)
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_CONTRACT_BYTES + 1)  # a larger file is refused without reading it all
        except FileNotFoundError:
            raise ModelError(
                f"{path}: model contract not found; it is written beside the model by catdog-train fit/export"
            ) from None
        except OSError as exc:
            raise ModelError(f"{path}: cannot read the model contract ({exc.strerror}); re-export the model") from None
        return cls.from_dict(parse_contract_json(raw, str(path)), source=str(path))


def _check_extra_output(detail: dict, what: str, name: str, size: int, dtype: str, quant: Quantization | None,
                        source: str) -> None:
    """Check an output beside the class scores (presence, features) against its record."""
    got = np.dtype(detail["dtype"]).name
    scale, zero_point = detail["quantization"]
    if int(np.prod(detail["shape"])) != size or got != dtype or (
        quant is not None and (not np.isclose(scale, quant.scale, rtol=1e-5) or zero_point != quant.zero_point)
    ):
        raise ModelError(
            f"{source}: the {what} output {name!r} is {tuple(int(x) for x in detail['shape'])} "
            f"{got} ({scale}, {zero_point}), the contract says {size} {dtype} value(s)"
            + (f" ({quant.scale}, {quant.zero_point})" if quant else "") + "; re-export the model"
        )


def sidecar_path(model_path: Path) -> Path:
    """The JSON contract that sits beside a model: models/catdog.tflite -> models/catdog.json."""
    return Path(model_path).with_suffix(".json")


#: Contract fields that decide how a model is fed and read; the sidecar must agree on these.
_BEHAVIOUR_FIELDS = (
    "labels", "input_hw", "color", "resize", "crop", "input_dtype", "input_quantization", "output_dtype",
    "output_quantization", "activation", "threshold", "output_name", "presence", "features",
)


def contract_for_model(model_path: Path, content: bytes | None = None) -> ModelContract:
    """The contract of a .tflite model: the one embedded in the file, else the JSON sidecar beside it,
    else one derived from the file's standard TFLite metadata (edge.std_metadata.derive_contract).

    content, if given, is the file's bytes (saves reading it again).

    A sidecar that disagrees with the embedded contract on how to feed or read the model is
    reported with a warning, and the embedded one is used.

    Raises:
        ModelError: no contract at all, or an invalid one.
    """
    sidecar = sidecar_path(model_path)
    embedded = read_embedded_contract(model_path if content is None else content, str(model_path))
    if embedded is None:
        if not sidecar.is_file():  # a model from another tool (MediaPipe Model Maker) may carry the standard metadata
            from .std_metadata import derive_contract

            derived = derive_contract(Path(model_path).read_bytes() if content is None else content, str(model_path))
            if derived is not None:
                return derived
        return ModelContract.load(sidecar)
    contract = ModelContract.from_dict(embedded, source=f"{model_path} (embedded contract)")
    if sidecar.is_file():
        try:
            beside = ModelContract.load(sidecar)
        except ModelError as exc:
            warnings.warn(f"{exc}; using the contract embedded in {model_path}", stacklevel=2)
            return contract
        differ = [f for f in _BEHAVIOUR_FIELDS if getattr(beside, f) != getattr(contract, f)]
        if differ:
            warnings.warn(
                f"{sidecar} disagrees with the contract embedded in {model_path} on {', '.join(differ)}; "
                "using the embedded one (re-export to refresh the sidecar)",
                stacklevel=2,
            )
    return contract
