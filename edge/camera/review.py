"""Label collected frames (the preview's review view): list DIR/inbox/, move a frame and its sidecar into
DIR/<class>/ (the class-per-folder layout catdog-train reads), delete one, and undo the last action.

Frames are named by their file name in the inbox, checked against the inbox's listing: a path never comes from
the client. Class names are safe folder names (class_problem). A deleted frame waits in DIR/.trash/ until it is
undone or the next action empties the trash (a hidden folder: catdog-train and the class list skip it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CatDogError
from ..files import fsync_folder
from .collect import INBOX, SIDECAR

#: A class name: letters, digits, "-" and "_", 1 to 64 of them (so never ".", "..", a path or a hidden folder).
CLASS_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: A frame's file name in the inbox: no path, no hidden file, a .jpg.
FRAME_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}\.jpg")
TRASH = ".trash"


class ReviewError(CatDogError):
    """A review action that cannot be done; status is the HTTP status that says why (400, 404 or 409)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def class_problem(name: str) -> str | None:
    """Why name cannot be a class folder, or None when it can: 1-64 letters, digits, '-' or '_', and not the inbox."""
    if not CLASS_NAME.fullmatch(name):
        return f"a class name is 1-64 letters, digits, '-' or '_' (got {name[:80]!r})"
    if name == INBOX:
        return f"{INBOX!r} holds the frames waiting for a label; pick another class name"
    return None


@dataclass(frozen=True)
class Action:
    """The last change, kept so that it can be undone."""

    kind: str
    """"label" or "delete"."""
    frame: str
    """The frame's file name."""
    folder: str
    """Where it went: the class name, or TRASH."""


class Review:
    """The review actions on one collect folder, safe to call from several server threads (one lock)."""

    def __init__(self, folder: Path, labels: tuple[str, ...], none_label: str = "none"):
        """folder: DIR of --collect; labels: the model's labels (classes offered even before their folder exists);
        none_label: the answer for "none of the classes" (its own button). Empties DIR/.trash/ left by an earlier
        run (deletes nobody undid)."""
        self.folder = Path(folder)
        self.inbox = self.folder / INBOX
        self.labels = tuple(label for label in labels if class_problem(label) is None and label != none_label)
        self.none_label = none_label
        self._lock = threading.Lock()
        self._last: Action | None = None
        shutil.rmtree(self.folder / TRASH, ignore_errors=True)

    # --- reading ---

    def frames(self) -> list[str]:
        """The inbox's frames, newest first (names start with the time they were kept)."""
        try:
            names = [entry.name for entry in os.scandir(self.inbox) if FRAME_NAME.fullmatch(entry.name)
                     and entry.is_file(follow_symlinks=False)]
        except OSError:
            return []
        return sorted(names, reverse=True)

    def classes(self) -> list[str]:
        """The model's labels, then the other class folders in DIR (sorted); not the inbox, hidden folders or
        the none label (it has its own button)."""
        try:
            found = sorted(entry.name for entry in os.scandir(self.folder)
                           if entry.is_dir(follow_symlinks=False) and class_problem(entry.name) is None)
        except OSError:
            found = []
        return [*self.labels, *(name for name in found if name not in self.labels and name != self.none_label)]

    def image(self, name: str) -> Path | None:
        """The inbox frame called name, or None when there is none (the name is checked, never joined blindly)."""
        return self.inbox / name if name in self._listed(name) else None

    def sidecar(self, name: str) -> dict[str, Any]:
        """A listed frame's sidecar (what the collector recorded), {} when it is missing or unreadable."""
        try:
            record = json.loads((self.inbox / name).with_suffix(SIDECAR).read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def state(self, limit: int = 200) -> dict[str, Any]:
        """What the review view shows: the newest frames (limit) with their sidecars, the count, the classes and
        whether there is something to undo."""
        names = self.frames()
        return {
            "frames": [{"name": name, **_shown(self.sidecar(name))} for name in names[:limit]],
            "count": len(names),
            "classes": self.classes(),
            "none": self.none_label,
            "undo": None if self._last is None else {"kind": self._last.kind, "frame": self._last.frame,
                                                     "folder": self._last.folder},
        }

    def _listed(self, name: str) -> list[str]:
        if not FRAME_NAME.fullmatch(name):
            raise ReviewError(400, "frame must be a frame's file name in the inbox, e.g. 20261207-103312-123_f0000042_cat.jpg")
        return [name] if name in self.frames() else []

    # --- changing ---

    def label(self, name: str, cls: str) -> Action:
        """Move the inbox frame name (and its sidecar) into DIR/<cls>/, creating the folder.

        Raises:
            ReviewError: 400 for a bad frame or class name, 404 for a frame not in the inbox, 409 when the class
                folder already has a file of that name.
        """
        problem = class_problem(cls)
        if problem is not None:
            raise ReviewError(400, problem)
        return self._move(name, cls, "label")

    def delete(self, name: str) -> Action:
        """Move the inbox frame name (and its sidecar) into DIR/.trash/, where undo() finds it.

        Raises:
            ReviewError: 400 for a bad frame name, 404 for a frame not in the inbox.
        """
        return self._move(name, TRASH, "delete")

    def add_class(self, cls: str) -> None:
        """Create DIR/<cls>/ so that it is offered as a class (nothing happens if it exists).

        Raises:
            ReviewError: 400 for a bad class name; 409 when the folder cannot be created.
        """
        problem = class_problem(cls)
        if problem is not None:
            raise ReviewError(400, problem)
        try:
            (self.folder / cls).mkdir(exist_ok=True)
        except OSError as exc:
            raise ReviewError(409, f"cannot create the class folder {cls!r} ({exc.strerror})") from None

    def undo(self) -> Action:
        """Put the frame of the last label or delete back in the inbox; returns that action.

        Raises:
            ReviewError: 409 when there is nothing to undo, or the frame is no longer where it was put.
        """
        with self._lock:
            last = self._last
            if last is None:
                raise ReviewError(409, "nothing to undo (only the last action can be undone)")
            source = self.folder / last.folder
            self._last = None
            try:
                self._rename(source, self.inbox, last.frame)
            except FileNotFoundError:
                raise ReviewError(409, f"{last.frame} is no longer in {last.folder}; nothing was undone") from None
            return last

    def _move(self, name: str, folder: str, kind: str) -> Action:
        with self._lock:
            if not self._listed(name):
                raise ReviewError(404, f"{name} is not in the inbox (labelled or dropped meanwhile?); reload the list")
            target = self.folder / folder
            if (target / name).exists():
                raise ReviewError(409, f"{folder} already has a {name}; delete this frame instead")
            shutil.rmtree(self.folder / TRASH, ignore_errors=True)  # the last delete can no longer be undone
            target.mkdir(exist_ok=True)
            try:
                self._rename(self.inbox, target, name)
            except FileNotFoundError:
                raise ReviewError(404, f"{name} is not in the inbox (dropped meanwhile?); reload the list") from None
            self._last = Action(kind, name, folder)
            return self._last

    @staticmethod
    def _rename(source: Path, target: Path, name: str) -> None:
        """Move name, then its sidecar, from folder source to folder target (renames: nothing is rewritten), and
        make both folders' entries durable."""
        sidecar = Path(name).with_suffix(SIDECAR).name
        os.rename(source / name, target / name)
        try:
            os.rename(source / sidecar, target / sidecar)
        except FileNotFoundError:
            pass  # a frame without a sidecar moves alone
        fsync_folder(target)
        fsync_folder(source)


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    """The sidecar fields the view shows (what the model answered, why the frame was kept, when)."""
    return {key: record[key] for key in ("time", "label", "confidence", "kept", "smoothed", "scores", "presence")
            if key in record}
