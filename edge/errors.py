"""The one exception family of catdog: every message says what went wrong and what to do."""

from __future__ import annotations


class CatDogError(Exception):
    """Base of every error catdog raises on purpose; the CLIs print it as one line."""

    #: Exit code the command-line tools use for this kind of error.
    exit_code: int = 1


class ImageError(CatDogError):
    """A photo could not be read or decoded (one photo fails, the others go on)."""

    exit_code = 1


class ModelError(CatDogError):
    """A model file or its contract is missing, unreadable or inconsistent."""

    exit_code = 2


class RuntimeMissingError(CatDogError):
    """Neither ai-edge-litert nor tflite-runtime can be imported."""

    exit_code = 2


class CameraSetupError(CatDogError):
    """--source names nothing usable, or the package it needs is not installed."""

    exit_code = 2


class SourceError(CatDogError):
    """A frame source could not be opened, or stopped delivering frames for good."""

    exit_code = 1


class SinkSetupError(CatDogError):
    """--webhook, --mqtt or --spool names nothing usable: a malformed URL, or a spool folder that cannot be used."""

    exit_code = 2


class SinkError(CatDogError):
    """A receiver or broker did not take an event; the event stays in the spool and is sent again later."""

    exit_code = 1
