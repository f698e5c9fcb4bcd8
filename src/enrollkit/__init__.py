"""enrollkit: enroll users into courses and cancel enrollments on DynamoDB, atomically.

``import enrollkit`` loads only the models and errors; the operations and backends
(which use boto3) load on first use, so a cold start pays only for what it uses.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from enrollkit.errors import (
    AccessPeriodEnded,
    CanceledEnrollmentId,
    CancelNotAllowed,
    DeduplicationConflictError,
    EnrollkitError,
    EnrollmentIdConflict,
    EnrollmentNotFound,
    InvalidInput,
    OrderNotFound,
    OrderOwnershipConflict,
    PersistenceError,
    TableLayoutMismatch,
    TransactionCanceled,
    TransactionError,
    TransientFailure,
    TransitionNotAllowed,
    UnreadableItem,
    VacancyUnavailable,
)
from enrollkit.layout.lock import lock_hash
from enrollkit.models import (
    AdminOverride,
    Author,
    CancelPolicy,
    Certificate,
    Course,
    DeduplicationWindow,
    Enrollment,
    EnrollmentStatus,
    EnrollOutcome,
    KeyPair,
    LifecycleEvent,
    SeatStatus,
    Tenant,
    User,
    Vacancy,
)

if TYPE_CHECKING:
    from enrollkit.lifecycle.delivery import DeliveryReport, DueEvent, FailedDelivery
    from enrollkit.lifecycle.steps import AccessResult, CompleteResult, complete, record_access
    from enrollkit.lifecycle.stream import handle_stream_batch
    from enrollkit.lifecycle.sweeper import SweepSettings, deliver_due
    from enrollkit.operations.bulk import BulkOutcome, BulkResult, enroll_many
    from enrollkit.operations.cancel import CancelResult, cancel
    from enrollkit.operations.enroll import enroll
    from enrollkit.operations.orders import create_order
    from enrollkit.operations.reads import get_enrollment, list_enrollments
    from enrollkit.operations.seats import SeatLedger, SeatRecord, add_vacancies, seat_ledger
    from enrollkit.persistence.base import BasePersistence, PersistenceLayer
    from enrollkit.persistence.dynamodb import DynamoDBPersistence
    from enrollkit.persistence.memory import InMemoryPersistence
    from enrollkit.records import (
        CancellationRecord,
        CancelPolicyRecord,
        EnrollmentRecord,
        EnrollmentSummary,
        LockRecord,
        Page,
    )
    from enrollkit.transaction.builder import TransactionBuilder
    from enrollkit.transaction.retry import RetryPolicy

__version__ = "0.1.0"

# A library installs no handlers: the application decides where its records go. The
# NullHandler keeps Python's last-resort handler from printing WARNINGs to stderr when
# the application configured no logging at all.
logging.getLogger(__name__).addHandler(logging.NullHandler())

# Public name -> the module that defines it, imported on first access (PEP 562).
_LAZY = {
    "enroll": "enrollkit.operations.enroll",
    "cancel": "enrollkit.operations.cancel",
    "CancelResult": "enrollkit.operations.cancel",
    "create_order": "enrollkit.operations.orders",
    "add_vacancies": "enrollkit.operations.seats",
    "seat_ledger": "enrollkit.operations.seats",
    "SeatLedger": "enrollkit.operations.seats",
    "SeatRecord": "enrollkit.operations.seats",
    "enroll_many": "enrollkit.operations.bulk",
    "BulkOutcome": "enrollkit.operations.bulk",
    "BulkResult": "enrollkit.operations.bulk",
    "get_enrollment": "enrollkit.operations.reads",
    "list_enrollments": "enrollkit.operations.reads",
    "EnrollmentRecord": "enrollkit.records",
    "EnrollmentSummary": "enrollkit.records",
    "Page": "enrollkit.records",
    "LockRecord": "enrollkit.records",
    "CancelPolicyRecord": "enrollkit.records",
    "CancellationRecord": "enrollkit.records",
    "record_access": "enrollkit.lifecycle.steps",
    "complete": "enrollkit.lifecycle.steps",
    "AccessResult": "enrollkit.lifecycle.steps",
    "CompleteResult": "enrollkit.lifecycle.steps",
    "deliver_due": "enrollkit.lifecycle.sweeper",
    "SweepSettings": "enrollkit.lifecycle.sweeper",
    "handle_stream_batch": "enrollkit.lifecycle.stream",
    "DueEvent": "enrollkit.lifecycle.delivery",
    "DeliveryReport": "enrollkit.lifecycle.delivery",
    "FailedDelivery": "enrollkit.lifecycle.delivery",
    "PersistenceLayer": "enrollkit.persistence.base",
    "BasePersistence": "enrollkit.persistence.base",
    "InMemoryPersistence": "enrollkit.persistence.memory",
    "DynamoDBPersistence": "enrollkit.persistence.dynamodb",
    "TransactionBuilder": "enrollkit.transaction.builder",
    "RetryPolicy": "enrollkit.transaction.retry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'enrollkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AccessPeriodEnded",
    "AccessResult",
    "AdminOverride",
    "Author",
    "BasePersistence",
    "BulkOutcome",
    "BulkResult",
    "CancelNotAllowed",
    "CancelPolicy",
    "CancelPolicyRecord",
    "CancelResult",
    "CanceledEnrollmentId",
    "CancellationRecord",
    "Certificate",
    "CompleteResult",
    "Course",
    "DeduplicationConflictError",
    "DeduplicationWindow",
    "DeliveryReport",
    "DueEvent",
    "DynamoDBPersistence",
    "EnrollOutcome",
    "EnrollkitError",
    "Enrollment",
    "EnrollmentIdConflict",
    "EnrollmentNotFound",
    "EnrollmentRecord",
    "EnrollmentStatus",
    "EnrollmentSummary",
    "FailedDelivery",
    "InMemoryPersistence",
    "InvalidInput",
    "KeyPair",
    "LifecycleEvent",
    "LockRecord",
    "OrderNotFound",
    "OrderOwnershipConflict",
    "Page",
    "PersistenceError",
    "PersistenceLayer",
    "RetryPolicy",
    "SeatLedger",
    "SeatRecord",
    "SeatStatus",
    "SweepSettings",
    "TableLayoutMismatch",
    "Tenant",
    "TransactionBuilder",
    "TransactionCanceled",
    "TransactionError",
    "TransientFailure",
    "TransitionNotAllowed",
    "UnreadableItem",
    "User",
    "Vacancy",
    "VacancyUnavailable",
    "add_vacancies",
    "cancel",
    "complete",
    "create_order",
    "deliver_due",
    "enroll",
    "enroll_many",
    "get_enrollment",
    "handle_stream_batch",
    "list_enrollments",
    "lock_hash",
    "record_access",
    "seat_ledger",
]
