"""The trainer's errors: members of catdog's one exception family (catdog.edge.errors.CatDogError)."""

from __future__ import annotations

from catdog.edge.errors import CatDogError


class DataError(CatDogError):
    """A training or evaluation photo folder is missing, empty or laid out wrongly, or a setting is invalid."""

    exit_code = 2
