"""The standard TFLite Metadata and the labels packed in the model: write it, read it, derive a contract from it.

MediaPipe Tasks, the TFLite Task Library and the Android/iOS tooling read a model's classes and input
format from the ``Model.metadata`` entry ``TFLITE_METADATA``: a ``ModelMetadata`` flatbuffer with file
identifier ``M001`` (schema: tflite-support's metadata_schema.fbs, also in MediaPipe), holding one
``TensorMetadata`` per input and per output of the first subgraph. Labels are an associated file
(``labels.txt``, type ``TENSOR_AXIS_LABELS``, on the class-score output) inside a zip archive appended to the
``.tflite``, whose members must be stored, not deflated. catdog's own contract (edge.metadata) stays
beside it: both are written by catdog-train export, and a model that carries only this standard
metadata (MediaPipe Model Maker's, say) gets a contract derived from it when that is possible.

The table is small (under a kilobyte), so it is written and read by hand here, as edge.metadata does
the TFLite file: no flatbuffers package, no generated code.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ._flatbuffer import Reader, open_model
from .errors import ModelError
from .metadata import embed_entry, read_metadata

if TYPE_CHECKING:
    from .contract import ModelContract

#: Metadata entry name the standard readers look for.
METADATA_NAME = "TFLITE_METADATA"
#: File identifier of the ModelMetadata flatbuffer ("Invalid metadata schema version" otherwise).
IDENTIFIER = b"M001"
#: The metadata parser version our fields need (every one of them exists since schema 1.0.0).
MIN_PARSER_VERSION = "1.0.0"
#: Name of the label file packed in the model.
LABELS_FILE = "labels.txt"
#: Fixed timestamp of the zip members: the same model exports to the same bytes.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
#: Largest label file read (the contract allows MAX_LABELS labels of MAX_LABEL_CHARS characters).
MAX_LABELS_BYTES = 1000 * 201 * 4

# Field numbers (metadata_schema.fbs) and enum values.
_MM_NAME, _MM_DESCRIPTION, _MM_VERSION, _MM_SUBGRAPHS, _MM_AUTHOR, _MM_LICENSE, _MM_FILES, _MM_MIN_PARSER = range(8)
_SG_INPUTS, _SG_OUTPUTS = 2, 3
_TM_NAME, _TM_DESCRIPTION, _TM_CONTENT, _TM_PROCESS_UNITS, _TM_FILES = 0, 1, 3, 4, 6
_CONTENT_TYPE, _CONTENT_VALUE = 0, 1
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2
_IMAGE_COLOR, _IMAGE_SIZE = 0, 1
_COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}
_PU_TYPE, _PU_VALUE = 0, 1
_NORMALIZATION = 1
_FILE_NAME, _FILE_DESCRIPTION, _FILE_TYPE, _FILE_LOCALE = 0, 1, 2, 3
_TENSOR_AXIS_LABELS = 2
# The TFLite schema (schema.fbs): Model.subgraphs, SubGraph {tensors, inputs, outputs}, Tensor fields.
_MODEL_SUBGRAPHS = 2
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS = 0, 1, 2
_TENSOR_SHAPE, _TENSOR_TYPE, _TENSOR_NAME, _TENSOR_QUANTIZATION = 0, 1, 3, 4
_QUANT_SCALE, _QUANT_ZERO_POINT = 2, 3
_TFLITE_TYPES = {0: "float32", 3: "uint8", 9: "int8"}


@dataclass(frozen=True)
class ModelInfo:
    """What the standard metadata says about the model as a whole (catdog-train export's options).
    Empty fields get defaults from the contract (see describe)."""

    name: str = ""
    """Model name shown by the readers. Default: "catdog <arch>: <labels>"."""
    description: str = ""
    """What the model does. Default: its labels and how it wants photos, from the contract."""
    version: str = ""
    """Version of the model. Default: the first 12 hex digits of the SHA-256 of the model before this metadata."""
    author: str = ""
    """Who made the model. Default: "catdog-train export"."""
    license: str = ""
    """Licence(s) of the model. Default: none stated."""


@dataclass(frozen=True)
class TensorDescription:
    """The standard metadata of one input or output tensor."""

    name: str
    """Name readers show (MediaPipe reports an output's as the classification head's name)."""
    description: str = ""
    """What the tensor holds."""
    color: str | None = None
    """ImageProperties color space ("RGB", "GRAYSCALE", "UNKNOWN"), None for a tensor that is not an image."""
    size_hw: tuple[int, int] | None = None
    """ImageProperties default size as (height, width), if stated."""
    mean: tuple[float, ...] | None = None
    """NormalizationOptions mean per channel (readers feed (pixel - mean) / std), None when absent."""
    std: tuple[float, ...] | None = None
    """NormalizationOptions std per channel, None when absent."""
    label_file: str | None = None
    """The TENSOR_AXIS_LABELS associated file naming this tensor's classes, None when there is none."""


@dataclass(frozen=True)
class StandardMetadata:
    """A model's standard metadata, as read back from the file."""

    name: str
    """ModelMetadata.name."""
    description: str
    """ModelMetadata.description."""
    version: str
    """ModelMetadata.version."""
    author: str
    """ModelMetadata.author."""
    license: str
    """ModelMetadata.license."""
    min_parser_version: str
    """ModelMetadata.min_parser_version."""
    inputs: tuple[TensorDescription, ...]
    """One per input of the first subgraph."""
    outputs: tuple[TensorDescription, ...]
    """One per output of the first subgraph."""
    labels: tuple[str, ...] | None
    """The first output's labels, read from its packed label file; None when it has none."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["labels"] = None if self.labels is None else list(self.labels)
        return data


# --- writing ----------------------------------------------------------------------------------------


def describe(
    tflite_bytes: bytes, contract: "ModelContract", info: ModelInfo = ModelInfo(), output_names: Sequence[str] = ()
) -> bytes:
    """A copy of a TFLite model with standard metadata and its packed labels (replacing older ones).

    The catdog contract and every other metadata entry stay as they were. Every output of the first
    subgraph is described: the first (the class scores) with the labels, the others by name only.

    Args:
        tflite_bytes: the .tflite file's bytes.
        contract: the model's contract (labels, input size, dtypes); it must describe a softmax output
            of one score per label (a one-unit sigmoid output cannot be labelled in this standard).
        info: the model's name, description, version, author and licence.
        output_names: names of the outputs after the first, in subgraph order (default: the tensors'
            own names in the file).

    Returns:
        The new file's bytes, the same for the same arguments.

    Raises:
        ModelError: the model is grayscale or has a sigmoid output (neither can be described), or the
            bytes are not a TFLite flatbuffer.
    """
    if contract.color != "RGB":
        raise ModelError("the standard TFLite metadata describes RGB image inputs only; a grayscale model keeps its catdog contract alone")
    if contract.activation != "softmax":
        raise ModelError("the standard TFLite metadata needs one score per label; export a two-unit softmax head")
    model = bytes(tflite_bytes[: _archive_start(tflite_bytes)])
    inputs, outputs = _subgraph_io(model, "model")
    if len(inputs) != 1:
        raise ModelError(f"the model has {len(inputs)} inputs; a catdog classifier has one image input")
    names = list(output_names) or [tensor["name"] for tensor in outputs[1:]]
    if len(names) != len(outputs) - 1:
        raise ModelError(f"{len(names)} output name(s) given for the {len(outputs) - 1} output(s) after the class scores")
    defaults = _default_info(model, contract)
    info = ModelInfo(**{k: v or getattr(defaults, k) for k, v in asdict(info).items()})
    height, width = contract.input_hw
    image = _Table(
        (_U8, 1),  # color_space: RGB
        (_REF, _Table((_U32, width), (_U32, height))),  # default_size: ImageSize {width, height}
    )
    normalization = _Table((_REF, _Floats([0.0])), (_REF, _Floats([1.0])))  # mean 0, std 1: raw 0..255 pixels
    input_tensor = _Table(
        (_REF, "image"),
        (_REF, f"RGB photo of {height}x{width} pixels, raw 0..255 values"),
        None,
        (_REF, _Table((_U8, _IMAGE_PROPERTIES), (_REF, image))),
        (_REF, [_Table((_U8, _NORMALIZATION), (_REF, normalization))]),
    )
    labels_file = _Table(
        (_REF, LABELS_FILE), (_REF, "Labels of the classes, one per line in score order."), (_U8, _TENSOR_AXIS_LABELS)
    )
    scores = _Table(
        (_REF, "probability"),
        (_REF, f"Probability of each label: {', '.join(contract.labels)}."),
        None,
        (_REF, _Table((_U8, _FEATURE_PROPERTIES), (_REF, _Table()))),
        None, None,
        (_REF, [labels_file]),
    )
    extra = [_Table((_REF, name), None, None, (_REF, _Table((_U8, _FEATURE_PROPERTIES), (_REF, _Table())))) for name in names]
    subgraph = _Table(None, None, (_REF, [input_tensor]), (_REF, [scores, *extra]))
    metadata = _Table(
        *((_REF, text) if text else None for text in (info.name, info.description, info.version)),
        (_REF, [subgraph]),
        *((_REF, text) if text else None for text in (info.author, info.license)),
        None,
        (_REF, MIN_PARSER_VERSION),
    )
    described = embed_entry(model, METADATA_NAME, _build(metadata, IDENTIFIER))
    return _append_files(described, {LABELS_FILE: "\n".join(contract.labels).encode()})


def _default_info(model: bytes, contract: "ModelContract") -> ModelInfo:
    import hashlib

    arch = contract.training.get("arch")
    crop = "the whole photo" if contract.crop == 1.0 else f"the centre {contract.crop:g} of each side"
    return ModelInfo(
        name=f"catdog {arch}: {', '.join(contract.labels)}" if isinstance(arch, str) else f"catdog: {', '.join(contract.labels)}",
        description=(
            f"Classifies a photo as one of {', '.join(contract.labels)}: {crop}, resized ({contract.resize}) to "
            f"{contract.input_hw[0]}x{contract.input_hw[1]} RGB. Made by catdog-train export, whose contract is embedded too."
        ),
        version=hashlib.sha256(model).hexdigest()[:12],
        author="catdog-train export",
    )


_U8, _U32, _REF = "u8", "u32", "ref"


class _Table:
    """A table to write: one (kind, value) per field number, None for an absent field."""

    def __init__(self, *fields: tuple[str, Any] | None):
        self.fields = fields


class _Floats(list):
    """A vector of float32 to write."""


def _build(root: _Table, identifier: bytes) -> bytes:
    """Flatbuffer bytes of root, laid out front to back: every object before those it points at, so
    each uoffset (unsigned) points forward. Every field takes a 4-byte slot and every object is
    4-aligned, which satisfies the verifier's alignment rules for these types."""
    out = bytearray(8)
    out[4:8] = identifier

    def pad(align: int) -> int:
        out.extend(bytes(-len(out) % align))
        return len(out)

    def write(obj: Any) -> int:
        if isinstance(obj, str):
            raw = obj.encode()
            pos = pad(4)
            out.extend(struct.pack("<I", len(raw)) + raw + b"\0")
            return pos
        if isinstance(obj, _Floats):
            pos = pad(4)
            out.extend(struct.pack(f"<I{len(obj)}f", len(obj), *obj))
            return pos
        if isinstance(obj, list):  # of tables
            pos = pad(4)
            out.extend(struct.pack("<I", len(obj)) + bytes(4 * len(obj)))
            for i, item in enumerate(obj):
                slot = pos + 4 + 4 * i
                struct.pack_into("<I", out, slot, write(item) - slot)
            return pos
        fields = obj.fields
        vtable = pad(4)
        out.extend(struct.pack(f"<HH{len(fields)}H", 4 + 2 * len(fields), 4 + 4 * len(fields),
                               *(0 if f is None else 4 + 4 * i for i, f in enumerate(fields))))
        table = pad(4)
        out.extend(struct.pack("<i", table - vtable) + bytes(4 * len(fields)))
        for i, field in enumerate(fields):
            slot = table + 4 + 4 * i
            if field is None:
                continue
            kind, value = field
            if kind == _U8:
                out[slot] = value
            elif kind == _U32:
                struct.pack_into("<I", out, slot, value)
            else:
                struct.pack_into("<I", out, slot, write(value) - slot)
        return table

    struct.pack_into("<I", out, 0, write(root))
    return bytes(out)


def _append_files(model: bytes, files: dict[str, bytes]) -> bytes:
    """model with a zip archive of files appended: members stored (the readers map them, uncompressed),
    with fixed dates and attributes, offsets counted from the start of the file as tflite-support writes them."""
    buffer = io.BytesIO()
    buffer.write(model)
    with zipfile.ZipFile(buffer, "a") as archive:  # "a" on bytes that are not a zip: appends one after them
        for name, data in files.items():
            member = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            member.compress_type = zipfile.ZIP_STORED
            member.create_system = 3
            member.external_attr = 0o644 << 16
            archive.writestr(member, data)
    return buffer.getvalue()


def _archive_start(data: bytes) -> int:
    """Where a zip archive appended to the model starts (len(data) when there is none)."""
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if eocd < 0 or eocd + 22 > len(data) or eocd + 22 + struct.unpack_from("<H", data, eocd + 20)[0] != len(data):
        return len(data)
    cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
    cd_start = eocd - cd_size
    if cd_start < 0 or data[cd_start : cd_start + 4] != b"PK\x01\x02":
        return len(data)
    # Offsets count from the archive's own start or from the file's (bytes inserted in front shift both).
    start = cd_start - cd_offset + struct.unpack_from("<I", data, cd_start + 42)[0]
    return start if 0 <= start < cd_start and data[start : start + 4] == b"PK\x03\x04" else len(data)


# --- reading ----------------------------------------------------------------------------------------


def read_standard_metadata(model: str | Path | bytes, source: str | None = None) -> StandardMetadata | None:
    """The standard metadata of a .tflite file, None when it has none.

    Args:
        model: a .tflite path, or the file's bytes.
        source: the name errors give the file (default: its path, or "model").

    Raises:
        ModelError: the file is missing or not a TFLite flatbuffer, its metadata table is damaged, or
            the label file it names is missing from the packed archive, compressed or not text.
    """
    if isinstance(model, (str, Path)):
        source = source or str(model)
        try:
            data = Path(model).read_bytes()
        except FileNotFoundError:
            raise ModelError(f"{model}: model not found; pass a .tflite file") from None
        except OSError as exc:
            raise ModelError(f"{model}: cannot read the model ({exc.strerror})") from None
    else:
        data, source = bytes(model), source or "model"
    raw = read_metadata(data, source).get(METADATA_NAME)
    if raw is None:
        return None
    reader = _MetadataReader(raw, source)
    if len(raw) < 8 or raw[4:8] != IDENTIFIER:
        raise ModelError(f"{source}: its standard metadata ({METADATA_NAME}) lacks the {IDENTIFIER.decode()} file identifier; write it with metadata schema 1.x")
    root = reader.u32(0)
    subgraphs = reader.vector(root, _MM_SUBGRAPHS)
    if not subgraphs:
        raise reader.fail("no subgraph described")
    subgraph = reader.deref(subgraphs[0])
    inputs = tuple(_tensor_description(reader, reader.deref(s)) for s in reader.vector(subgraph, _SG_INPUTS))
    outputs = tuple(_tensor_description(reader, reader.deref(s)) for s in reader.vector(subgraph, _SG_OUTPUTS))
    label_file = outputs[0].label_file if outputs else None
    return StandardMetadata(
        name=_text(reader, root, _MM_NAME), description=_text(reader, root, _MM_DESCRIPTION),
        version=_text(reader, root, _MM_VERSION), author=_text(reader, root, _MM_AUTHOR),
        license=_text(reader, root, _MM_LICENSE), min_parser_version=_text(reader, root, _MM_MIN_PARSER),
        inputs=inputs, outputs=outputs,
        labels=None if label_file is None else _read_labels(data, label_file, source),
    )


class _MetadataReader(Reader):
    """Bounds-checked reads of a ModelMetadata buffer: damage is reported as the metadata's."""

    def fail(self, what: str) -> ModelError:
        return ModelError(f"{self.source}: its standard metadata ({METADATA_NAME}) is damaged ({what}); re-export the model")


def _text(reader: Reader, table: int, field: int) -> str:
    pos = reader.field_pos(table, field)
    return "" if pos is None else reader.string(pos).decode("utf-8", errors="replace")


def _floats(reader: Reader, table: int, field: int) -> tuple[float, ...]:
    return tuple(reader.f32(pos) for pos in reader.vector(table, field))


def _tensor_description(reader: Reader, tensor: int) -> TensorDescription:
    color = size_hw = mean = std = label_file = None
    content_pos = reader.field_pos(tensor, _TM_CONTENT)
    if content_pos is not None:
        content = reader.deref(content_pos)
        type_pos, value_pos = reader.field_pos(content, _CONTENT_TYPE), reader.field_pos(content, _CONTENT_VALUE)
        if type_pos is not None and reader.u8(type_pos) == _IMAGE_PROPERTIES and value_pos is not None:
            image = reader.deref(value_pos)
            color_pos, size_pos = reader.field_pos(image, _IMAGE_COLOR), reader.field_pos(image, _IMAGE_SIZE)
            color = _COLOR_SPACES.get(reader.u8(color_pos) if color_pos is not None else 0, "UNKNOWN")
            if size_pos is not None:
                size = reader.deref(size_pos)
                width, height = (reader.field_pos(size, f) for f in (0, 1))
                if width is not None and height is not None:
                    size_hw = (reader.u32(height), reader.u32(width))
    for slot in reader.vector(tensor, _TM_PROCESS_UNITS):
        unit = reader.deref(slot)
        type_pos, value_pos = reader.field_pos(unit, _PU_TYPE), reader.field_pos(unit, _PU_VALUE)
        if type_pos is not None and reader.u8(type_pos) == _NORMALIZATION and value_pos is not None:
            options = reader.deref(value_pos)
            mean, std = _floats(reader, options, 0), _floats(reader, options, 1)
    for slot in reader.vector(tensor, _TM_FILES):
        file = reader.deref(slot)
        type_pos = reader.field_pos(file, _FILE_TYPE)
        if label_file is None and type_pos is not None and reader.u8(type_pos) == _TENSOR_AXIS_LABELS:
            label_file = _text(reader, file, _FILE_NAME)
    return TensorDescription(
        name=_text(reader, tensor, _TM_NAME), description=_text(reader, tensor, _TM_DESCRIPTION), color=color,
        size_hw=size_hw, mean=mean, std=std, label_file=label_file,
    )


def _read_labels(data: bytes, name: str, source: str) -> tuple[str, ...]:
    """The labels in the packed file name, one per line (blank lines ignored)."""
    what = f"{source}: its label file {name!r}"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            member = archive.getinfo(name)
            if member.compress_type != zipfile.ZIP_STORED:
                raise ModelError(f"{what} is compressed; the standard readers need it stored, re-pack the model")
            if member.file_size > MAX_LABELS_BYTES:
                raise ModelError(f"{what} is {member.file_size} bytes, over {MAX_LABELS_BYTES}")
            text = archive.read(member).decode("utf-8")
    except KeyError:
        raise ModelError(f"{what} is not packed in the model; pack it in the zip archive after the model") from None
    except UnicodeDecodeError:
        raise ModelError(f"{what} is not UTF-8 text") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, NotImplementedError, struct.error):
        raise ModelError(f"{what} cannot be read: the zip archive after the model is missing or damaged") from None
    return tuple(line.strip("\r") for line in text.split("\n") if line.strip())


def _subgraph_io(model: bytes, source: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first subgraph's input and output tensors as {"name", "dtype", "shape", "quantization"}."""
    reader, root = open_model(model, source)
    subgraphs = reader.vector(root, _MODEL_SUBGRAPHS)
    if not subgraphs:
        raise reader.fail("no subgraph")
    subgraph = reader.deref(subgraphs[0])
    tensors = reader.vector(subgraph, _SUBGRAPH_TENSORS)

    def tensor(index: int) -> dict[str, Any]:
        if not 0 <= index < len(tensors):
            raise reader.fail(f"the subgraph names tensor {index} of {len(tensors)}")
        table = reader.deref(tensors[index])
        type_pos, name_pos = reader.field_pos(table, _TENSOR_TYPE), reader.field_pos(table, _TENSOR_NAME)
        quantization, quant_pos = None, reader.field_pos(table, _TENSOR_QUANTIZATION)
        if quant_pos is not None:
            quant = reader.deref(quant_pos)
            scales, zero_points = reader.vector(quant, _QUANT_SCALE), reader.vector(quant, _QUANT_ZERO_POINT, width=8)
            if scales:
                quantization = (reader.f32(scales[0]), reader.i64(zero_points[0]) if zero_points else 0)
        return {
            "name": "" if name_pos is None else reader.string(name_pos).decode("utf-8", errors="replace"),
            "dtype": _TFLITE_TYPES.get(reader.u8(type_pos) if type_pos is not None else 0, "unsupported"),
            "shape": tuple(reader.i32(pos) for pos in reader.vector(table, _TENSOR_SHAPE)),
            "quantization": quantization,
        }

    return ([tensor(reader.i32(pos)) for pos in reader.vector(subgraph, _SUBGRAPH_INPUTS)],
            [tensor(reader.i32(pos)) for pos in reader.vector(subgraph, _SUBGRAPH_OUTPUTS)])


# --- a contract from the standard metadata ----------------------------------------------------------


def derive_contract(model: bytes, source: str) -> "ModelContract | None":
    """A catdog contract for a model that carries only the standard metadata (MediaPipe Model Maker's,
    say): labels from its packed label file, input and output from its tensors; None when the model
    has no standard metadata.

    catdog feeds raw 0..255 pixels: a uint8 input takes them as they are (the standard readers ignore
    normalization there too); a float32 or int8 input must state mean 0 and std 1.

    Raises:
        ModelError: one line saying what the metadata lacks (labels, an image input, normalization
            catdog can feed).
    """
    from .contract import ModelContract
    from .quantization import Quantization

    meta = read_standard_metadata(model, source)
    if meta is None:
        return None
    no = f"{source}: no catdog contract, and its standard metadata"
    if meta.labels is None:
        raise ModelError(f"{no} names no label file on its first output; pack labels.txt (TENSOR_AXIS_LABELS) or add a catdog contract")
    inputs, outputs = _subgraph_io(model, source)
    if len(inputs) != 1 or not outputs or len(meta.inputs) != 1:
        raise ModelError(f"{no} describes {len(meta.inputs)} input(s) of a model with {len(inputs)}; catdog needs one image input")
    tensor, described = inputs[0], meta.inputs[0]
    shape = tensor["shape"]
    if len(shape) != 4 or shape[0] != 1 or shape[3] not in (1, 3):
        raise ModelError(f"{no} describes an input of shape {list(shape)[:8]}; catdog needs [1, height, width, 1 or 3]")
    if tensor["dtype"] != "uint8":
        if described.mean is None or described.std is None:
            raise ModelError(f"{no} gives no NormalizationOptions for its {tensor['dtype']} input; catdog must know how pixels are scaled")
        if any(m != 0.0 for m in described.mean) or any(s != 1.0 for s in described.std):
            raise ModelError(
                f"{no} normalizes pixels as (x - {_values(described.mean)}) / {_values(described.std)}; catdog feeds "
                f"raw 0..255 pixels (mean 0, std 1) to {tensor['dtype']} inputs, so it cannot run this model"
            )
    output = outputs[0]
    n_scores = math.prod(output["shape"])
    if n_scores != len(meta.labels):
        raise ModelError(f"{no} lists {len(meta.labels)} labels for a first output of {n_scores} scores; they must match")

    def quantization(t: dict[str, Any]) -> Quantization | None:
        scale_zero = t["quantization"]
        return Quantization(float(scale_zero[0]), int(scale_zero[1])) if scale_zero and t["dtype"] != "float32" else None

    try:
        return ModelContract(
            labels=meta.labels, input_hw=(shape[1], shape[2]), color="RGB" if shape[3] == 3 else "L",
            input_dtype=tensor["dtype"],
            # uint8 pixels go in as they are, as the standard readers feed them.
            input_quantization=None if tensor["dtype"] == "uint8" else quantization(tensor),
            output_dtype=output["dtype"], output_quantization=quantization(output), activation="softmax",
            mode="float32" if tensor["dtype"] == "float32" else "int8",
            training={"standard_metadata": {k: v for k, v in (("name", meta.name), ("version", meta.version),
                                                               ("author", meta.author)) if v}},
        )
    except ModelError as exc:
        message = str(exc).replace("the model contract", "the contract derived from it", 1)
        raise ModelError(f"{no}: {message}") from None


def _values(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:g}" for v in values)
