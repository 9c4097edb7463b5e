"""A fit's recipe: its settings as the contract records them, the catdog-train fit command that trains
them again, and the data checks that rebuild the photo sets it trained and validated on.

Both the record and the command are derived from FitConfig's fields, so a new field is in them
without being listed here; only fields whose option is not named after them are.
"""

from __future__ import annotations

import shlex
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Any

from catdog.edge.contract import ModelContract

from .config import CheckConfig, FitConfig
from .errors import DataError

#: FitConfig fields whose catdog-train fit option is not "--" + the name with dashes (data_dir is the argument).
OPTION_NAMES = {"val_dir": "--val", "learning_rate": "--lr", "image_hw": "--image-size", "cache_dir": "--cache"}
#: FitConfig fields that are not part of the recipe: they say what to do with files, not what to train.
NOT_RECORDED = ("resume", "overwrite", "cache_dir", "no_cache")


def option_name(field_name: str) -> str:
    """The catdog-train fit option that sets a FitConfig field, e.g. "epochs" -> "--epochs"."""
    return OPTION_NAMES.get(field_name, "--" + field_name.replace("_", "-"))


def size_text(hw: tuple[int, int]) -> str:
    """--image-size's text for (height, width): "96" when square, else "96x144"."""
    height, width = hw
    return str(height) if height == width else f"{height}x{width}"


def parse_size(text: str) -> tuple[int, int]:
    """(height, width) from --image-size's text: "96" (square) or "96x144".

    Raises:
        DataError: anything else.
    """
    parts = text.lower().split("x")
    if len(parts) > 2 or not all(p.strip().isdigit() for p in parts):
        raise DataError(f"--image-size must be a size in pixels, e.g. 96, or HEIGHTxWIDTH, e.g. 96x128; got {text!r}")
    return int(parts[0]), int(parts[-1])


def config_record(config: FitConfig) -> dict[str, Any]:
    """The config as flat JSON-ready values (the contract's training.config), without NOT_RECORDED."""
    record = {}
    for field in fields(config):
        if field.name in NOT_RECORDED:
            continue
        value = getattr(config, field.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        record[field.name] = value
    return record


def command_line(config: FitConfig) -> str:
    """The catdog-train fit command that trains this config (recorded in the contract as the recipe).

    Every recorded field is written out, defaults included, so the command means the same after a
    default changes; a None (the default of every optional setting) is left out, as there is no
    option for it.
    """
    parts = ["catdog-train", "fit", str(config.data_dir)]
    for field in fields(config):
        value = getattr(config, field.name)
        if field.name == "data_dir" or field.name in NOT_RECORDED or value is None:
            continue
        name = option_name(field.name)
        if isinstance(value, bool):
            parts.append(name if value else "--no-" + name.removeprefix("--"))
        elif isinstance(value, Enum):
            parts += [name, value.value]
        elif isinstance(value, tuple):
            parts += [name, size_text(value)]
        else:
            parts += [name, str(value)]
    return shlex.join(parts)


def recorded_check(contract: ModelContract) -> CheckConfig:
    """The data checks of the fit that made a model, from its contract's record: check_data on it gives
    the very photo sets the model was trained and validated on.

    Raises:
        DataError: the contract records no training settings.
    """
    record = contract.training.get("config") or {}
    if "data_dir" not in record:
        raise DataError("the model's contract records no training data; pass the photo folders explicitly")
    values = {f.name: record[f.name] for f in fields(CheckConfig) if f.name in record}
    for name in ("data_dir", "val_dir"):
        if values.get(name) is not None:
            values[name] = Path(values[name])
    return CheckConfig(**values)
