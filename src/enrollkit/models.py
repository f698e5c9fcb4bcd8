"""The domain models: validated on construction, frozen, pure (no AWS here)."""

from __future__ import annotations

import operator
import re
import unicodedata
import uuid
import weakref
from enum import Enum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictInt,
    ValidationError,
    model_validator,
)
from typing_extensions import Self

from enrollkit.errors import InvalidInput, shorten

MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 1024
MAX_EMAIL_LENGTH = 254
# 100 years: long enough for any course, short enough that every date stays representable.
MAX_ACCESS_PERIOD_DAYS = 36_500

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Deliberately simple: one @, no spaces or control characters, a dot in the domain.
# (pydantic's EmailStr needs the email-validator package, which we do not depend on.)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


# Characters that show nothing, or look like a plain space, so that two ids that print
# alike would be two keys (and two de-duplication locks). By Unicode category: Cc
# controls, Cf format characters (zero-width space/joiners, bidi marks, soft hyphen,
# BOM), Cs surrogates, Zl/Zp line and paragraph separators, Zs spaces other than U+0020.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"})
# ...and blank characters of other categories: the combining grapheme joiner, Hangul
# fillers, the blank Braille pattern, variation selectors.
_INVISIBLE_CHARACTERS = frozenset("\u034f\u115f\u1160\u3164\uffa0\u2800")
_VARIATION_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))


def _is_invisible(character: str) -> bool:
    if character == " ":
        return False
    code = ord(character)
    return (
        unicodedata.category(character) in _INVISIBLE_CATEGORIES
        or character in _INVISIBLE_CHARACTERS
        or any(code in selectors for selectors in _VARIATION_SELECTORS)
    )


def validate_identifier(value: str) -> str:
    """The one rule for every id; returns the id as it is stored.

    Ids become parts of DynamoDB keys (where ``#`` separates key segments) and of lock
    hashes, so one id must have one spelling: it is normalised to Unicode NFC (a composed
    and a decomposed "é" are one id), and characters that show nothing or pass for a
    space (zero-width and other format characters, controls, non-ASCII spaces) are
    refused, as are leading and trailing spaces.
    """
    if not value:
        raise ValueError("must not be empty")
    value = unicodedata.normalize("NFC", value)
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"has {len(value)} characters; at most {MAX_ID_LENGTH} are allowed")
    if "#" in value:
        raise ValueError("must not contain '#' (it separates the segments of a key)")
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    # In ASCII, only the controls (refused above) and the plain space are invisible.
    invisible = None if value.isascii() else next((c for c in value if _is_invisible(c)), None)
    if invisible is not None:
        raise ValueError(
            f"must not contain invisible characters (U+{ord(invisible):04X} "
            f"{unicodedata.name(invisible, 'unnamed')})"
        )
    if value != value.strip(" "):
        raise ValueError("must not start or end with a space")
    return value


def _validate_name(value: str) -> str:
    if not value.strip():
        raise ValueError("a name must not be blank")
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("a name must not contain control characters")
    return value


def _validate_email(value: str) -> str:
    if not _EMAIL.match(value) or _CONTROL_CHARACTERS.search(value):
        raise ValueError("not an email address")
    return value


Identifier = Annotated[str, Field(max_length=MAX_ID_LENGTH), AfterValidator(validate_identifier)]
Name = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(_validate_name)
]
Email = Annotated[str, Field(max_length=MAX_EMAIL_LENGTH), AfterValidator(_validate_email)]

# The partition of the de-duplication locks: no enrollment may use it as its id.
LOCK_PARTITION = "lock"


def validate_enrollment_id(value: str) -> str:
    """An identifier that is not the locks' partition (reading ``lock`` as an enrollment
    would read every lock)."""
    value = validate_identifier(value)
    if value == LOCK_PARTITION:
        raise ValueError(f"{LOCK_PARTITION!r} is reserved and cannot be an enrollment id")
    return value


def _label(model: type[BaseModel]) -> str:
    """A model's name as words: ``DeduplicationWindow`` -> ``deduplication window``."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", model.__name__).lower()


def invalid_input(subject: str, error: ValidationError) -> InvalidInput:
    """pydantic's ValidationError as one line: the field, the reason, a short prefix of the
    value; e.g. ``tenant id: must not contain '#' (...) (got 'ac#me')``."""
    problems = error.errors(include_url=False)
    first = problems[0]
    field = ".".join(str(part) for part in first["loc"])
    reason = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    reason = reason.removeprefix("Value error, ")
    reason = reason[:1].lower() + reason[1:]
    shown = first.get("input")
    got = f" (got {shorten(shown)})" if isinstance(shown, (str, int, float)) else ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    where = f"{subject} {field}" if field else subject
    return InvalidInput(f"{where}: {reason}{got}{more}", field=field or None)


# Each model instance that pydantic validated, by id: a weak reference to it and its field
# values as validated. model_construct() and model_copy() build new instances that are not
# here, and a field changed in place (object.__setattr__) no longer matches its values.
# The models among those values are kept apart, so the check walks only into them.
_VALIDATED: dict[int, tuple[weakref.ref[BaseModel], tuple[Any, ...], tuple[BaseModel, ...]]] = {}


def _forget(key: int) -> Any:
    return lambda _: _VALIDATED.pop(key, None)


def was_validated(model: BaseModel) -> bool:
    """Whether ``model`` is exactly as pydantic validated it, and so is every model in it.
    ``False`` means: validate it again (it may have skipped validation)."""
    seen = _VALIDATED.get(id(model))
    if seen is None:
        return False
    reference, validated_values, nested = seen
    values = model.__dict__
    return (
        reference() is model
        and len(values) == len(validated_values)
        and all(map(operator.is_, values.values(), validated_values))
        and (not nested or all(map(was_validated, nested)))
    )


class _Frozen(BaseModel):
    # Schemas build on first use, not at import: `import enrollkit` stays light.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    @classmethod
    def from_untrusted(cls, data: Any) -> Self:
        """Build the model from data you do not control (a request body, a header, a CSV
        row): a mapping of its fields (nested models as mappings), or that as JSON text.

        Raises:
            InvalidInput: one line naming the field first (``tenant id: must not contain
                '#' ...``), never pydantic's multi-line ``ValidationError``.
        """
        try:
            if isinstance(data, (str, bytes, bytearray)):
                return cls.model_validate_json(data)
            return cls.model_validate(data)
        except ValidationError as error:
            raise invalid_input(_label(cls), error) from None


class _Argument(_Frozen):
    """A model the operations take as an argument: remembered as validated."""

    @model_validator(mode="wrap")
    @classmethod
    def _remember_validated(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # Lets the operations skip validating an argument a second time (was_validated).
        model = handler(data)
        # An instance given as a field's value comes back as it is, unvalidated (a
        # model_construct() one too): only a model built from input here was validated.
        # (An "after" validator runs for both, and so took such an instance as validated.)
        if model is not data:
            key = id(model)
            values = tuple(model.__dict__.values())
            nested = tuple(value for value in values if isinstance(value, BaseModel))
            _VALIDATED[key] = (weakref.ref(model, _forget(key)), values, nested)
        return model


class EnrollmentStatus(str, Enum):
    """An enrollment's status (its ``status`` attribute). It moves only along the
    transitions of :mod:`enrollkit.lifecycle.transitions`: enroll() writes ``PENDING``,
    record_access() ``IN_PROGRESS``, complete() ``COMPLETED``, cancel() ``CANCELED``, and
    the due events ``COURSE_EXPIRED`` and ``COURSE_ARCHIVED`` ``EXPIRED`` and ``ARCHIVED``."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    ARCHIVED = "ARCHIVED"


class LifecycleEvent(str, Enum):
    """Scheduled lifecycle events; each value is the sort key of its schedule item."""

    REMINDER_NO_ACCESS_3_DAYS = "schedules#reminder_no_access_3_days"
    NO_ACTIVITY_7_DAYS = "schedules#no_activity_7_days"
    ACCESS_PERIOD_REMINDER_30_DAYS = "schedules#access_period_reminder_30_days"
    CERT_EXPIRATION_REMINDER_30_DAYS = "schedules#cert_expiration_reminder_30_days"
    COURSE_ARCHIVED = "schedules#course_archived"
    COURSE_EXPIRED = "schedules#course_expired"


class User(_Argument):
    """The person enrolled. ``name`` and ``email`` are copied into the schedule items, so
    a reminder can be sent without another read."""

    id: Identifier
    name: Name
    email: Email


class Course(_Argument):
    """A course, with its access period in whole days (at least 1)."""

    id: Identifier
    name: Name
    access_period: Annotated[StrictInt, Field(gt=0, le=MAX_ACCESS_PERIOD_DAYS)]
    """Days of access from enrollment."""


class Enrollment(_Argument):
    """One user in one course. ``id`` defaults to a new UUID4 string, given when the
    object is built: reuse the object (or the id) to retry an enroll() safely.
    ``lock`` is reserved and cannot be an id."""

    id: Annotated[str, AfterValidator(validate_enrollment_id)] = Field(
        default_factory=lambda: str(uuid.uuid4())
    )
    user: User
    course: Course
    status: EnrollmentStatus = EnrollmentStatus.PENDING
    progress: Annotated[StrictInt, Field(ge=0, le=100)] = 0


class Tenant(_Argument):
    """The organization an enrollment belongs to."""

    id: Identifier
    name: Name


class Author(_Argument):
    """Who did something (for instance, who canceled an enrollment)."""

    id: Identifier
    name: Name


class DeduplicationWindow(_Argument):
    """Blocks another enrollment of the same user in the same course until
    ``offset_days`` before this one's access period ends."""

    offset_days: Annotated[StrictInt, Field(ge=0, le=MAX_ACCESS_PERIOD_DAYS)]


class CancelPolicy(_Argument):
    """Cancel is allowed for ``days`` after enrollment; ``None`` means no limit."""

    days: Annotated[StrictInt, Field(gt=0, le=MAX_ACCESS_PERIOD_DAYS)] | None = None


class Vacancy(_Argument):
    """One prepaid seat of an organization's order."""

    org_id: Identifier
    order_id: Identifier
    slot_id: Identifier


class Certificate(_Frozen):
    """The certificate of a completed enrollment: ``expires_at`` (timezone-aware), or
    ``None`` for one that never expires. An expiring certificate schedules
    ``CERT_EXPIRATION_REMINDER_30_DAYS`` and ``COURSE_ARCHIVED`` (at its expiry)."""

    expires_at: AwareDatetime | None = None


class AdminOverride(_Frozen):
    """An administrator's cancel that ignores the cancel policy (none, or its window
    passed). The ``reason`` is recorded with the cancel (``canceled_date``), for audit."""

    reason: Name


class KeyPair(_Frozen):
    """The key of one item: partition key ``id`` and sort key ``sk``.

    Built positionally, ``KeyPair("lock", h)``, as the original code writes it, or by
    keyword, ``KeyPair(pk="lock", sk=h)``.
    """

    pk: str = Field(min_length=1)
    sk: str = Field(min_length=1)

    def __init__(self, pk: str, sk: str) -> None:
        # Validated as BaseModel.__init__ validates, without its frame and keyword
        # packing: an operation builds a dozen keys.
        self.__pydantic_validator__.validate_python({"pk": pk, "sk": sk}, self_instance=self)

    def as_key(self) -> dict[str, str]:
        return {"id": self.pk, "sk": self.sk}


class EnrollOutcome(str, Enum):
    """What enroll() did: wrote the enrollment, or found this very enrollment already there
    (a retry, for instance after a lost response) and changed nothing."""

    CREATED = "CREATED"
    ALREADY_ENROLLED = "ALREADY_ENROLLED"


class SeatStatus(str, Enum):
    """Status of an order's ``generated_items#<slot>`` record."""

    AVAILABLE = "AVAILABLE"
    USED = "USED"
    ROLLBACK = "ROLLBACK"
