"""The errors enrollkit raises. Every one subclasses :class:`EnrollkitError`.

Errors that mean "a condition of the transaction failed" subclass
:class:`TransactionCanceled`, so they carry the cancellation reasons: one per
operation, in the order the operations were added to the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

# How much of a value an error message shows: enough to recognise it, never a page.
MAX_SHOWN_CHARACTERS = 40
# A message longer than this is cut (the reason comes first, so the cut loses detail only).
MAX_MESSAGE_CHARACTERS = 300


def shorten(value: object, limit: int = MAX_SHOWN_CHARACTERS) -> str:
    """``value`` as a message shows it: its repr, cut to ``limit`` characters plus ``…``."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def one_line(text: str, limit: int = MAX_MESSAGE_CHARACTERS) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space),
    cut to ``limit`` characters plus ``…``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


class EnrollkitError(Exception):
    """Base class of every error enrollkit raises.

    Its message is one line that starts with the reason, and shows at most a short
    prefix of a long value. ``http_status`` is what a service should answer for it:
    ``except EnrollkitError as e: return e.http_status, str(e)``.
    """

    http_status: ClassVar[int] = 500
    """500: a misconfiguration or a bug, unless a subclass says otherwise."""

    def __str__(self) -> str:
        return one_line(super().__str__())


class InvalidInput(EnrollkitError, ValueError):
    """Input breaks a rule: a bad id, a naive datetime, an impossible window, an oversized item.

    ``field`` names the offending field (``"id"``, ``"user.email"``) when one does.
    """

    http_status: ClassVar[int] = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TransactionError(EnrollkitError):
    """The transaction builder was misused, or DynamoDB would refuse the request as built.

    Raised before anything is sent: more than 100 operations, two operations on
    one item, a request over 4 MB, an item over 400 KB, a builder used twice.
    """


@dataclass(frozen=True)
class CancellationReason:
    """Why one operation of a cancelled transaction did not apply.

    ``code`` is DynamoDB's code (``"ConditionalCheckFailed"``, ``"TransactionConflict"``,
    ...) or ``"None"`` for an operation that did not fail. ``item`` is the item's
    content when its condition failed (``ALL_OLD``), ``None`` when the item did not
    exist or the operation did not fail.
    """

    code: str
    message: str | None = None
    item: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def failed(self) -> bool:
        return self.code != "None"


class TransactionCanceled(EnrollkitError):
    """A condition of the transaction failed, so nothing of it was written.

    ``reasons`` has one entry per operation, in the order they were added;
    ``failed_index`` is the position of the first operation whose condition failed.
    """

    http_status: ClassVar[int] = 409
    default_message = "the transaction was cancelled: a condition failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        reasons: Sequence[CancellationReason] = (),
        failed_index: int | None = None,
    ) -> None:
        super().__init__(message or self.default_message)
        self.reasons: tuple[CancellationReason, ...] = tuple(reasons)
        self.failed_index = failed_index

    @property
    def failed_item(self) -> Mapping[str, Any] | None:
        """The current content of the item whose condition failed first, if it existed."""
        if self.failed_index is None:
            return None
        return self.reasons[self.failed_index].item


class DeduplicationConflictError(TransactionCanceled):
    """The (user, course) de-duplication lock is held by another, unexpired enrollment."""

    default_message = "the user is already enrolled in this course (de-duplication lock held)"


class EnrollmentIdConflict(TransactionCanceled):
    """The enrollment id exists already, with another user, course or tenant."""

    default_message = "an enrollment with this id exists with other content"


class CancelNotAllowed(TransactionCanceled):
    """No cancel policy, its window has passed, or the enrollment is already canceled."""

    default_message = "this enrollment cannot be canceled"


class VacancyUnavailable(TransactionCanceled):
    """The seat is used, missing, or for another course."""

    default_message = "the seat is used, missing or for another course"


class OrderNotFound(TransactionCanceled):
    """The order the seats belong to does not exist."""

    http_status: ClassVar[int] = 404
    default_message = "the order does not exist"


class EnrollmentNotFound(EnrollkitError, LookupError):
    """No such enrollment, or it belongs to another tenant than the one given."""

    http_status: ClassVar[int] = 404


class PersistenceError(EnrollkitError):
    """The persistence layer failed for a reason retrying will not fix: a missing table,
    missing credentials, an endpoint that is not DynamoDB (status 500: fix the setup)."""


class TableLayoutMismatch(PersistenceError):
    """An existing table is not laid out as enrollkit needs (``create_tables()``): another
    key schema, TTL on another attribute, streams off. ``differences`` says each."""

    def __init__(self, table_name: str, differences: Sequence[str]) -> None:
        super().__init__(
            f"table {table_name!r} exists with another layout: " + "; ".join(differences)
        )
        self.table_name = table_name
        self.differences: tuple[str, ...] = tuple(differences)


class TransientFailure(PersistenceError):
    """A failure worth retrying (throttling, transaction conflict, internal error,
    lost connection). Backends raise it; the transaction builder retries it with
    backoff and the same client request token, and raises it once retries run out.
    Status 503: the caller may retry later."""

    http_status: ClassVar[int] = 503


class OrderOwnershipConflict(TransactionCanceled):
    """The order belongs to another organization: its seats are not yours to add or spend,
    and its id cannot be created for you."""

    default_message = "the order belongs to another organization"


class CanceledEnrollmentId(EnrollmentIdConflict):
    """The id belongs to this very enrollment (same user, course and tenant), which has
    been canceled. An enrollment id is used once: enroll again with a new id."""

    default_message = "this enrollment was canceled; enroll again with a new id"


class UnreadableItem(EnrollkitError):
    """A stored item enrollkit cannot read (written by another writer, or half migrated):
    the message names the item and the attribute."""


class TransitionNotAllowed(TransactionCanceled):
    """The enrollment's status does not allow this lifecycle step (see the transitions of
    :mod:`enrollkit.lifecycle.transitions`): for instance completing a canceled, expired or
    archived enrollment. Nothing was written."""

    default_message = "the enrollment's status does not allow this step"


class AccessPeriodEnded(TransitionNotAllowed):
    """The enrollment's access period has ended (its ``COURSE_EXPIRED`` event is due), even
    if its expiry has not been delivered yet: no more accesses, no completion."""

    default_message = "the enrollment's access period has ended"
