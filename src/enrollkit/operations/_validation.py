"""Argument checks shared by the operations: a typed error before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from enrollkit.errors import InvalidInput
from enrollkit.models import (
    invalid_input,
    validate_enrollment_id,
    validate_identifier,
    was_validated,
)

T = TypeVar("T")


def require_instance(name: str, value: Any, kind: type[T]) -> T:
    """``value`` as a ``kind``, as pydantic validated it: use the result, not the argument.

    model_copy(update=...) and model_construct() skip validation, and hostile code can
    change a field in place: an id with '#' or the reserved 'lock' would then reach the
    keys, an id in NFD would key a second lock beside its NFC spelling. Such a model is
    validated again and the validated copy returned. (A model as pydantic validated it,
    nested models too, is returned as it is, not validated twice.)
    """
    if not isinstance(value, kind):
        raise InvalidInput(f"{name} must be a {kind.__name__}, not {type(value).__name__}")
    model: object = value
    if isinstance(model, BaseModel) and not was_validated(model):
        # The dump only feeds validation: pydantic's warnings about values of the wrong
        # type (those validation converts or refuses) would be noise to the caller.
        try:
            return cast(T, type(model).model_validate(model.model_dump(warnings=False)))
        except ValidationError as error:
            raise invalid_input(name, error) from None
    return value


def require_identifier(
    name: str, value: Any, rule: Callable[[str], str] = validate_identifier
) -> str:
    """``value`` checked by ``rule`` (an id rule of ``enrollkit.models``), as InvalidInput;
    returns the id as stored (NFC): use the result, not the argument, in keys."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, not {type(value).__name__}")
    try:
        return rule(value)
    except ValueError as error:
        raise InvalidInput(f"{name}: {error}", field=name) from None


def require_enrollment_id(value: Any) -> str:
    return require_identifier("enrollment_id", value, validate_enrollment_id)
