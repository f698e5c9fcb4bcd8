"""Logging: standard library loggers under ``enrollkit``, no handlers of ours beyond a
NullHandler, one DEBUG line per transaction, a WARNING per retry, no personal data."""

from __future__ import annotations

import logging
import pkgutil
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

import enrollkit
from enrollkit import (
    Author,
    CancelPolicy,
    DeduplicationConflictError,
    DeduplicationWindow,
    Enrollment,
    InMemoryPersistence,
    RetryPolicy,
    TransientFailure,
    User,
    cancel,
    enroll,
)
from enrollkit.persistence.base import BasePersistence
from enrollkit.transaction.operations import Operation
from tests.conftest import TENANT, make_course

NAME, EMAIL = "Zélia Quintanilha", "zelia.quintanilha@example.com"
TRANSACTIONS = "enrollkit.transaction.builder"


def _enrollkit_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "enrollkit" or r.name.startswith("enrollkit.")]


def _transaction_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == TRANSACTIONS and r.levelno == logging.DEBUG]


def test_the_library_installs_no_handler_that_prints() -> None:
    handlers = logging.getLogger("enrollkit").handlers
    assert handlers and all(isinstance(h, logging.NullHandler) for h in handlers)
    for module in pkgutil.walk_packages(enrollkit.__path__, "enrollkit."):
        assert not logging.getLogger(module.name).handlers, module.name


def test_one_debug_line_per_transaction_and_no_personal_data(
    persistence: BasePersistence, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = User(id="u-zelia", name=NAME, email=EMAIL)
    enrollment = Enrollment(user=user, course=make_course())
    enroll(
        enrollment,
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=DeduplicationWindow(offset_days=1),
        cancel_policy=CancelPolicy(days=3),
        now=now,
    )
    with pytest.raises(DeduplicationConflictError):
        enroll(
            Enrollment(user=user, course=make_course()),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=DeduplicationWindow(offset_days=1),
            now=now,
        )
    cancel(
        enrollment.id,
        author=Author(id="admin", name="Ada Admin"),
        persistence_layer=persistence,
        now=now + timedelta(hours=1),
    )

    lines = _transaction_lines(caplog)
    assert [line.outcome for line in lines] == [  # type: ignore[attr-defined]
        "committed",
        "cancelled: DeduplicationConflictError",
        "committed",
    ]
    first = lines[0]
    assert first.attempt == 1  # type: ignore[attr-defined]
    assert first.operations >= 5  # type: ignore[attr-defined]
    message = first.getMessage()
    assert first.client_request_token in message  # type: ignore[attr-defined]
    assert f"{first.operations} operations, committed, attempt 1" in message  # type: ignore[attr-defined]

    for record in _enrollkit_records(caplog):
        text = record.getMessage() + repr(vars(record))
        for secret in (NAME, EMAIL, "Ada Admin"):
            assert secret not in text, record.getMessage()


class _FailingFirst(InMemoryPersistence):
    """Fails the first ``failures`` transactions with a transient failure."""

    def __init__(self, failures: int, retry_policy: RetryPolicy) -> None:
        super().__init__(retry_policy=retry_policy)
        self.failures = failures

    def execute_transaction(
        self, operations: Sequence[Operation], *, client_request_token: str
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientFailure("ThrottlingException: Rate of requests exceeds the allowed")
        super().execute_transaction(operations, client_request_token=client_request_token)


def test_each_retry_is_a_warning_with_its_reason(
    now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="enrollkit")
    store = _FailingFirst(2, RetryPolicy(attempts=5, sleep=lambda _: None))
    user = User(id="u-1", name=NAME, email=EMAIL)
    enroll(
        Enrollment(user=user, course=make_course()), tenant=TENANT, persistence_layer=store, now=now
    )

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.attempt for w in warnings] == [1, 2]  # type: ignore[attr-defined]
    assert all(w.name == TRANSACTIONS for w in warnings)
    assert "attempt 1 of 5 failed, retrying in" in warnings[0].getMessage()
    assert "ThrottlingException: Rate of requests exceeds the allowed" in warnings[0].getMessage()
    [line] = _transaction_lines(caplog)
    assert line.attempt == 3 and line.outcome == "committed"  # type: ignore[attr-defined]
    assert {w.client_request_token for w in warnings} == {line.client_request_token}  # type: ignore[attr-defined]


def test_retries_running_out_is_the_transaction_line(
    now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="enrollkit")
    store = _FailingFirst(9, RetryPolicy(attempts=2, sleep=lambda _: None))
    user = User(id="u-1", name=NAME, email=EMAIL)
    with pytest.raises(TransientFailure):
        enroll(
            Enrollment(user=user, course=make_course()),
            tenant=TENANT,
            persistence_layer=store,
            now=now,
        )
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    [line] = _transaction_lines(caplog)
    assert (line.outcome, line.attempt) == ("failed: TransientFailure", 2)  # type: ignore[attr-defined]
