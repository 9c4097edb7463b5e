"""The JSON types of a model contract's fields: each value checked and converted, one ModelError each."""

from __future__ import annotations

from typing import Any

from .errors import ModelError
from .features import Features
from .presence import Presence
from .quantization import Quantization


def _typed(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ModelError(f"the model contract has {name}={shown}; expected {expected}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(name: str, value: Any) -> str:
    _typed(name, value, isinstance(value, str), "a string")
    return value


def _number(name: str, value: Any) -> float:
    _typed(name, value, _is_int(value) or isinstance(value, float), "a number")
    return float(value)


def _labels(name: str, value: Any) -> tuple[str, ...]:
    _typed(name, value, isinstance(value, list) and all(isinstance(x, str) for x in value), "a list of strings")
    return tuple(value)


def _hw(name: str, value: Any) -> tuple[int, int]:
    _typed(name, value, isinstance(value, list) and len(value) == 2 and all(_is_int(x) for x in value),
           "[height, width] in whole pixels")
    return tuple(value)


def _quantization(name: str, value: Any) -> Quantization | None:
    if value is None:
        return None
    _typed(name, value, isinstance(value, dict) and set(value) == {"scale", "zero_point"}, '{"scale": ..., "zero_point": ...}')
    _typed(f"{name}.zero_point", value["zero_point"], _is_int(value["zero_point"]), "an integer")
    return Quantization(scale=_number(f"{name}.scale", value["scale"]), zero_point=value["zero_point"])


def _optional_string(name: str, value: Any) -> str | None:
    return None if value is None else _string(name, value)


#: presence's JSON fields and how each is read (Presence checks the ranges).
_PRESENCE_FIELDS = {
    "output": _string, "threshold": _number, "scale": _number, "method": _string, "label": _string, "dtype": _string,
    "quantization": _quantization, "calibration": lambda name, value: _free_form(name, value),
}


def _presence(name: str, value: Any) -> Presence | None:
    if value is None:
        return None
    _typed(name, value, isinstance(value, dict) and {"output", "threshold", "scale"} <= set(value),
           '{"output": ..., "threshold": ..., "scale": ...}')
    return Presence(**{key: read(f"{name}.{key}", value[key]) for key, read in _PRESENCE_FIELDS.items() if key in value})


def _features(name: str, value: Any) -> Features | None:
    if value is None:
        return None
    _typed(name, value, isinstance(value, dict) and "output" in value, '{"output": ..., "size": ..., "dtype": ...}')
    if "size" in value:
        _typed(f"{name}.size", value["size"], _is_int(value["size"]), "a whole number")
    reads = {"output": _string, "size": lambda _, v: v, "dtype": _string, "quantization": _quantization}
    return Features(**{key: read(f"{name}.{key}", value[key]) for key, read in reads.items() if key in value})


def _free_form(name: str, value: Any) -> dict[str, Any]:
    _typed(name, value, isinstance(value, dict), "a JSON object")
    return value


def _version(name: str, value: Any) -> int:
    _typed(name, value, _is_int(value) and value >= 1, "a whole number >= 1")  # newer ones load (unknown fields warn)
    return value


#: How each contract field is checked and converted from its JSON value (ranges: ModelContract).
FIELD_TYPES = {
    "labels": _labels, "input_hw": _hw, "color": _string, "resize": _string, "crop": _number,
    "input_dtype": _string, "input_quantization": _quantization, "output_dtype": _string,
    "output_quantization": _quantization, "activation": _string, "threshold": _number, "mode": _string,
    "training": _free_form, "metrics": _free_form, "format_version": _version,
    "output_name": _optional_string, "presence": _presence, "features": _features,
}
