"""A .tflite model's named outputs: the signature's output names and the tensors they stand for.

The TFLite converter names output tensors after its own graph ("StatefulPartitionedCall:1") and may
put them in any order, but it keeps the Keras output names in the model's signature
(``Model.signature_defs``, field 7 of the root table in schema.fbs: ``SignatureDef {inputs, outputs:
[TensorMap], signature_key, ..., subgraph_index}``, ``TensorMap {name: string, tensor_index: uint}``).
catdog finds every output by that name, never by position. Old catdog models have a single output and
no name in their contract; they are read as before.

Writing: ``first_output`` reorders the subgraph's output list in place (a vector of the same length),
so that the class scores stay the output a catdog-edge release that reads output 0 finds.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from ._flatbuffer import Reader, open_model
from .errors import ModelError

# Root Model fields, SubGraph fields and SignatureDef / TensorMap fields of schema.fbs.
_SUBGRAPHS, _SIGNATURE_DEFS = 2, 7
_SUBGRAPH_OUTPUTS = 2
_SIG_OUTPUTS, _SIG_SUBGRAPH = 1, 4
_MAP_NAME, _MAP_TENSOR = 0, 1


def output_names(model: bytes | Path, source: str = "model") -> dict[str, int]:
    """The signature's output names of subgraph 0 and the tensor index each stands for.

    Args:
        model: the .tflite file's bytes, or its path (mapped: only the pages read are loaded).
        source: names the file in errors.

    Returns:
        {name: tensor index}, empty when the model has no signature (old converters wrote none).

    Raises:
        ModelError: the bytes are not a TFLite flatbuffer or the signature points outside the file.
    """
    if isinstance(model, Path):
        try:
            with model.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return output_names(data, source)
        except (OSError, ValueError) as exc:  # ValueError: mmap of an empty file
            raise ModelError(f"{source}: cannot read the model ({exc}); pass a .tflite file made by catdog-train export") from None
    reader, root = open_model(model, source)
    names: dict[str, int] = {}
    for slot in reader.vector(root, _SIGNATURE_DEFS):
        signature = reader.table(slot)
        subgraph_pos = reader.field_pos(signature, _SIG_SUBGRAPH)
        if subgraph_pos is not None and reader.u32(subgraph_pos) != 0:
            continue
        for entry in reader.vector(signature, _SIG_OUTPUTS):
            tensor_map = reader.table(entry)
            name_pos, index_pos = reader.field_pos(tensor_map, _MAP_NAME), reader.field_pos(tensor_map, _MAP_TENSOR)
            if name_pos is None:
                continue
            name = reader.string(name_pos).decode("utf-8", errors="replace")
            names.setdefault(name, reader.u32(index_pos) if index_pos is not None else 0)
        break  # one signature (the converter writes "serving_default")
    return names


def _subgraph_outputs(reader: Reader, root: int) -> range:
    subgraphs = reader.vector(root, _SUBGRAPHS)
    if not subgraphs:
        raise reader.fail("no subgraph")
    return reader.vector(reader.table(subgraphs[0]), _SUBGRAPH_OUTPUTS)


def first_output(model: bytes, name: str, source: str = "model") -> bytes:
    """The model with the output the signature calls name moved to the front of subgraph 0's outputs.

    The other outputs keep their order; tensors, signature and every offset are unchanged (the vector
    is rewritten in place, same length), so the model computes exactly what it did.

    Raises:
        ModelError: the signature has no output of that name, or the bytes are not a TFLite model.
    """
    reader, root = open_model(model, source)
    tensor = output_names(model, source).get(name)
    if tensor is None:
        raise ModelError(f"{source}: the model's signature has no output {name!r}; re-export the model")
    slots = _subgraph_outputs(reader, root)
    order = [reader.i32(pos) for pos in slots]
    if tensor not in order:
        raise ModelError(f"{source}: output {name!r} (tensor {tensor}) is not an output of the model; re-export it")
    order.remove(tensor)
    order.insert(0, tensor)
    data = bytearray(model)
    struct.pack_into(f"<{len(order)}i", data, slots.start, *order)
    return bytes(data)


def ordered_output_names(model: bytes, source: str = "model") -> list[str]:
    """The signature's names of subgraph 0's outputs, in the subgraph's order (an output the signature does
    not name is left out).

    Raises:
        ModelError: the bytes are not a TFLite model.
    """
    reader, root = open_model(model, source)
    by_tensor = {tensor: name for name, tensor in output_names(model, source).items()}
    return [by_tensor[t] for t in (reader.i32(pos) for pos in _subgraph_outputs(reader, root)) if t in by_tensor]
