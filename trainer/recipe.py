"""A fit's recipe: its settings as the contract records them, the catdog-train fit command that trains
them again, and the data checks that rebuild the photo sets it trained and validated on.

Both the record and the command are derived from FitConfig's fields, so a new field is in them
without being listed here; only fields whose option is not named after them are, and fields that
apply to some runs only (applies). Models travel, so no path in them is absolute (portable_path);
the photo sets are identified by their content instead (photo_set_hash).
"""

from __future__ import annotations

import hashlib
import os
import shlex
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Any

from catdog.edge.contract import ModelContract

from .config import Arch, CheckConfig, Distribute, FitConfig, Keep, PresenceMethod
from .data import PhotoSet
from .errors import DataError
from .pretrained import IMAGENET, NONE
from .scan import DataReport

#: FitConfig fields whose catdog-train fit option is not "--" + the name with dashes (data_dir is the argument).
OPTION_NAMES = {"val_dir": "--val", "learning_rate": "--lr", "image_hw": "--image-size", "cache_dir": "--cache",
                "none_dir": "--none"}
#: FitConfig fields that are not part of the recipe: they say what to do with files, not what to train.
NOT_RECORDED = ("resume", "overwrite", "cache_dir", "no_cache")
#: FitConfig fields that only training a network uses: a pretrained fit computes features once and fits
#: its head by cross-validation, so none of them changes it (and FitConfig refuses some of them there).
NETWORK_TRAINING = (
    "epochs", "small_fraction", "small_size", "source_size", "batch_size", "learning_rate", "weight_decay",
    "label_smoothing", "augment", "patience", "keep", "grayscale", "distribute", "mixed_precision",
)
#: FitConfig fields holding a path (weights holds one unless it names IMAGENET or NONE).
PATH_FIELDS = ("data_dir", "val_dir", "out", "weights", "none_dir")
#: FitConfig fields recorded as an enum's value.
ENUM_FIELDS = {"arch": Arch, "keep": Keep, "distribute": Distribute, "presence": PresenceMethod}


def portable_path(path: Path | str, cwd: Path | None = None) -> str:
    """How a contract records a path: relative to the working directory when inside it, else its final
    folder or file name only. Never absolute: a shared model must not carry its maker's home directory.

    The comparison is lexical (no symlinks followed), so a link inside the working directory stays a
    path inside it.
    """
    here = Path(os.path.abspath(Path.cwd() if cwd is None else cwd))
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    if absolute.is_relative_to(here):
        return absolute.relative_to(here).as_posix()
    return absolute.name or "."


def photo_set_hash(photos: PhotoSet) -> str | None:
    """sha256 of a photo set's content: each photo's label and bytes (the digests the data checks took),
    in no particular order, so it names the same photos wherever the folder is. None without digests."""
    if not photos.digests:
        return None
    lines = sorted(f"{photos.class_names[label]}\t{digest}\n" for label, digest in zip(photos.labels, photos.digests))
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def applies(config: FitConfig, name: str) -> bool:
    """Whether a FitConfig field had any effect on the run it configures: the recipe records only those
    (a pretrained fit's command lists no --epochs). A field that applies but is None is in the record
    (as null) and left out of the command."""
    if name in NOT_RECORDED:
        return False
    if name == "val_split":
        return config.val_dir is None
    if config.arch.pretrained:
        return name not in NETWORK_TRAINING
    rules = {
        "weights": False,  # only pretrained architectures start from weights
        "presence": False,  # and have a presence score
        "none_dir": False,
        "small_size": config.arch is Arch.compact,  # progressive resizing: compact only
        "small_fraction": config.arch is Arch.compact and config.small_size < min(config.image_hw),
        "source_size": config.augment,
        "patience": config.keep is Keep.best,
    }
    return rules.get(name, True)


def recorded_value(config: FitConfig, name: str) -> Any:
    """A field's value as the recipe records it: paths made portable."""
    value = getattr(config, name)
    if value is not None and name in PATH_FIELDS and not (name == "weights" and value in (IMAGENET, NONE)):
        return portable_path(value)
    return value


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
    """The config as flat JSON-ready values (the contract's training.config): the fields that applied,
    paths made portable."""
    record = {}
    for field in fields(config):
        if not applies(config, field.name):
            continue
        value = recorded_value(config, field.name)
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        record[field.name] = value
    return record


def command_line(config: FitConfig) -> str:
    """The catdog-train fit command that trains this config (recorded in the contract as the recipe).

    Every field that applies is written out, defaults included, so the command means the same after a
    default changes; a None (the default of every optional setting) is left out, as there is no
    option for it. Paths are portable (relative to where fit ran, or only their final name).
    """
    parts = ["catdog-train", "fit", recorded_value(config, "data_dir")]
    for field in fields(config):
        value = recorded_value(config, field.name)
        if field.name == "data_dir" or not applies(config, field.name) or value is None:
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


def recorded_check(contract: ModelContract, data_root: Path | None = None) -> CheckConfig:
    """The data checks of the fit that made a model, from its contract's record: check_data on it gives
    the very photo sets the model was trained and validated on.

    Args:
        contract: the model's contract.
        data_root: the folder that holds the recorded photo folders: a folder recorded as a relative path
            is data_root / that path, or data_root / its final name when that is not a folder (fit
            recorded it from another working directory, e.g. DATA/train as "train" or as
            "DATA/train"). None: the recorded paths as they are, from the working directory.

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
            if data_root is not None:
                inside = Path(data_root) / values[name]
                values[name] = inside if inside.is_dir() else Path(data_root) / values[name].name
    return CheckConfig(**values)


def data_record(config: CheckConfig, report: DataReport) -> dict[str, Any]:
    """What the contract's training record says about the photos: the folders (portable) and the content
    hash of each checked set, by which export knows it rebuilt the same sets wherever the folders are."""
    return {
        "train_dir": portable_path(config.data_dir),
        "val_dir": portable_path(config.val_dir) if config.val_dir is not None else None,
        "train_set_sha256": photo_set_hash(report.train),
        "val_set_sha256": photo_set_hash(report.val),
    }


def portable_contract(contract: ModelContract, report: DataReport | None = None) -> ModelContract:
    """A contract rewritten as fit writes one now: the recorded config and command with portable paths
    and only the settings that applied, the data folders and a parity folder by their portable names.
    Everything else (the measurements included) is kept; a contract fit wrote so already is unchanged.

    Args:
        contract: the contract (a .keras model's, or a .tflite model's: their training records are the same).
        report: the recorded photo sets as check_data rebuilt them (check_data(recorded_check(contract, root))),
            to record their content hashes as well; None keeps the hashes the contract has.

    Raises:
        DataError: the recorded config is not one FitConfig accepts.
    """
    training, metrics = dict(contract.training), dict(contract.metrics)
    record = training.get("config") or {}
    if "data_dir" in record:
        values = {f.name: record[f.name] for f in fields(FitConfig) if f.name in record}
        for name in ("data_dir", "val_dir", "out"):
            if values.get(name) is not None:
                values[name] = Path(values[name])
        for name, kind in ENUM_FIELDS.items():
            if values.get(name) is not None:
                values[name] = kind(values[name])
        if values.get("image_hw") is not None:
            values["image_hw"] = tuple(values["image_hw"])
        config = FitConfig(**values)
        training.update(config=config_record(config), command=command_line(config))
        if report is not None:
            training.update(data_record(config, report))
    for name in ("train_dir", "val_dir"):
        if training.get(name) is not None:
            training[name] = portable_path(training[name])
    if metrics.get("parity_data") is not None:
        metrics["parity_data"] = portable_path(metrics["parity_data"])
    return contract.replace(training=training, metrics=metrics)
