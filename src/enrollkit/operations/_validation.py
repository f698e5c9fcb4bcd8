"""Argument checks shared by the operations: a typed error before anything is written."""

from __future__ import annotations

from typing import Any, TypeVar

from enrollkit.errors import InvalidInput
from enrollkit.models import validate_identifier

T = TypeVar("T")


def require_instance(name: str, value: Any, kind: type[T]) -> T:
    if not isinstance(value, kind):
        raise InvalidInput(f"{name} must be a {kind.__name__}, not {type(value).__name__}")
    return value


def require_identifier(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, not {type(value).__name__}")
    try:
        return validate_identifier(value)
    except ValueError as error:
        raise InvalidInput(f"{name}: {error}") from None
