"""Input from outside a service: one-line errors that a handler maps by ``http_status``,
the ``from_untrusted`` entry point, one spelling per id, DynamoDB's table-name rule."""

from __future__ import annotations

import unicodedata
from datetime import datetime

import pytest

import enrollkit
from enrollkit import (
    Author,
    CancelNotAllowed,
    Course,
    DeduplicationConflictError,
    DeduplicationWindow,
    DynamoDBPersistence,
    EnrollkitError,
    Enrollment,
    EnrollmentIdConflict,
    EnrollmentNotFound,
    InMemoryPersistence,
    InvalidInput,
    OrderNotFound,
    PersistenceError,
    Tenant,
    TransactionCanceled,
    TransactionError,
    TransientFailure,
    User,
    VacancyUnavailable,
    cancel,
    enroll,
    lock_hash,
)
from enrollkit.persistence.base import BasePersistence
from tests.conftest import TENANT, make_course, make_user

# -- http_status ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput, 422),
        (EnrollmentNotFound, 404),
        (OrderNotFound, 404),
        (DeduplicationConflictError, 409),
        (EnrollmentIdConflict, 409),
        (VacancyUnavailable, 409),
        (CancelNotAllowed, 409),
        (TransactionCanceled, 409),
        (TransientFailure, 503),
        (PersistenceError, 500),
        (TransactionError, 500),
        (EnrollkitError, 500),
    ],
)
def test_every_error_class_carries_the_status_a_service_answers(
    error: type[EnrollkitError], status: int
) -> None:
    assert error.http_status == status


def test_every_public_error_is_mapped() -> None:
    errors = [
        getattr(enrollkit, name)
        for name in enrollkit.__all__
        if isinstance(getattr(enrollkit, name), type)
        and issubclass(getattr(enrollkit, name), Exception)
    ]
    assert all(issubclass(error, EnrollkitError) for error in errors)
    assert all(error.http_status in (404, 409, 422, 500, 503) for error in errors)


# -- one-line messages, reason first ----------------------------------------------------------


def test_a_message_is_one_line_whatever_it_was_given() -> None:
    error = PersistenceError("the endpoint answered\n<html>\n" + "x" * 5000)
    text = str(error)
    assert "\n" not in text
    assert text.startswith("the endpoint answered <html>")
    assert len(text) <= 301


def test_a_5000_character_id_is_refused_with_the_reason_first_and_a_short_prefix() -> None:
    with pytest.raises(InvalidInput) as raised:
        Tenant.from_untrusted({"id": "a" * 5000, "name": "Acme"})
    text = str(raised.value)
    assert text.startswith("tenant id: string should have at most 256 characters")
    assert len(text) < 150
    assert "a" * 41 not in text


def test_a_long_id_given_to_an_operation_is_refused_in_one_short_line(
    persistence: BasePersistence, now: datetime
) -> None:
    with pytest.raises(InvalidInput) as raised:
        cancel("x" * 5000, author=Author(id="a", name="A"), persistence_layer=persistence, now=now)
    text = str(raised.value)
    assert text.startswith("enrollment_id: has 5000 characters; at most 256")
    assert "x" * 41 not in text


# -- from_untrusted ---------------------------------------------------------------------------


def test_a_header_with_hash_names_the_field_and_the_reason_first() -> None:
    with pytest.raises(InvalidInput) as raised:
        Tenant.from_untrusted({"id": "ac#me", "name": "Acme"})
    error = raised.value
    assert isinstance(error, ValueError)
    assert str(error).startswith("tenant id: must not contain '#'")
    assert error.field == "id"
    assert "\n" not in str(error)
    assert "validation error" not in str(error)


def test_nested_fields_are_named_by_their_path() -> None:
    body = {
        "user": {"id": "u1", "name": "Ana", "email": "not-an-email"},
        "course": {"id": "c1", "name": "Course", "access_period": 30},
    }
    with pytest.raises(InvalidInput) as raised:
        Enrollment.from_untrusted(body)
    assert str(raised.value).startswith("enrollment user.email: not an email address")
    assert raised.value.field == "user.email"


@pytest.mark.parametrize(
    ("data", "start"),
    [
        ({"id": "u1", "name": "Ana"}, "user email: field required"),
        ({"id": "u1", "name": "Ana", "email": "a@b.co", "age": 3}, "user age: unknown field"),
        (["u1"], "user: input should be a valid dictionary"),
    ],
)
def test_missing_unknown_and_malformed_data(data: object, start: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        User.from_untrusted(data)
    assert str(raised.value).startswith(start)


def test_json_text_is_parsed_and_its_errors_are_invalid_input() -> None:
    assert Tenant.from_untrusted('{"id": "acme", "name": "Acme"}') == Tenant(id="acme", name="Acme")
    with pytest.raises(InvalidInput) as raised:
        Tenant.from_untrusted("{not json")
    assert str(raised.value).startswith("tenant: invalid JSON")
    with pytest.raises(InvalidInput) as raised:
        Tenant.from_untrusted(b'{"id": "ac#me", "name": "Acme"}')
    assert str(raised.value).startswith("tenant id: must not contain '#'")


def test_valid_data_builds_the_model() -> None:
    assert Course.from_untrusted({"id": "c1", "name": "C", "access_period": 3}) == Course(
        id="c1", name="C", access_period=3
    )
    assert DeduplicationWindow.from_untrusted({"offset_days": 0}).offset_days == 0


def test_an_operation_given_an_unvalidated_model_says_which_field_in_one_line(
    persistence: BasePersistence, now: datetime
) -> None:
    bad_tenant = Tenant.model_construct(id="ac#me", name="Acme")
    enrollment = Enrollment(user=make_user(), course=make_course())
    with pytest.raises(InvalidInput) as raised:
        enroll(enrollment, tenant=bad_tenant, persistence_layer=persistence, now=now)
    assert str(raised.value).startswith("tenant id: must not contain '#'")


# -- identity: one spelling per id ------------------------------------------------------------

COMPOSED = "jos\u00e9"
DECOMPOSED = "jose\u0301"


@pytest.mark.parametrize(
    "lookalike",
    [
        "u\u200b1",  # zero-width space
        "u\u200d1",  # zero-width joiner
        "\ufeffu1",  # byte order mark
        "u\u00ad1",  # soft hyphen
        "u1\u202e",  # right-to-left override
        "u\u00a01",  # no-break space
        "u\u30001",  # ideographic space
        "u1\ufe0f",  # variation selector
        "u\u31641",  # Hangul filler
        "u\u20281",  # line separator
        "u1 ",
        " u1",
    ],
)
def test_invisible_characters_are_refused_in_every_id(lookalike: str) -> None:
    with pytest.raises(InvalidInput):
        User.from_untrusted({"id": lookalike, "name": "Ana", "email": "ana@example.com"})
    with pytest.raises(ValueError, match=r"invisible|space"):
        Tenant(id=lookalike, name="Acme")


def test_visible_ids_are_kept() -> None:
    for value in ("u1", "ana souza", "日本語", "Ünïcödé-1.2_3", "a b"):
        assert Tenant(id=value, name="x").id == value


def test_ids_are_stored_in_nfc() -> None:
    assert User(id=DECOMPOSED, name="José", email="jose@example.com").id == COMPOSED
    assert Enrollment(
        id=DECOMPOSED, user=make_user(), course=make_course()
    ).id == unicodedata.normalize("NFC", DECOMPOSED)
    assert lock_hash(DECOMPOSED, "c1") == lock_hash(COMPOSED, "c1")


def test_a_lookalike_user_id_cannot_get_past_the_lock(
    persistence: BasePersistence, now: datetime
) -> None:
    window = DeduplicationWindow(offset_days=0)
    course = make_course()
    first = Enrollment(user=User(id=COMPOSED, name="José", email="j@example.com"), course=course)
    enroll(
        first, tenant=TENANT, persistence_layer=persistence, deduplication_window=window, now=now
    )
    same_person = Enrollment(
        user=User(id=DECOMPOSED, name="José", email="j@example.com"), course=course
    )
    with pytest.raises(DeduplicationConflictError):
        enroll(
            same_person,
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=window,
            now=now,
        )
    with pytest.raises(InvalidInput):
        Enrollment.from_untrusted(
            {
                "user": {"id": "jos\u200b\u00e9", "name": "José", "email": "j@example.com"},
                "course": course.model_dump(),
            }
        )


def test_cancel_finds_an_enrollment_by_either_spelling_of_its_id(
    persistence: BasePersistence, now: datetime
) -> None:
    enrollment = Enrollment(id=COMPOSED, user=make_user(), course=make_course())
    enroll(enrollment, tenant=TENANT, persistence_layer=persistence, now=now)
    with pytest.raises(CancelNotAllowed):  # found (no policy), not EnrollmentNotFound
        cancel(DECOMPOSED, author=Author(id="a", name="A"), persistence_layer=persistence, now=now)


# -- table names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ab", "x" * 256, "my table", "enroll#ments", "tábla", ""])
def test_table_names_follow_dynamodbs_rules(name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        InMemoryPersistence(name)
    assert str(raised.value).startswith("table_name: a DynamoDB table name has 3 to 255")
    with pytest.raises(InvalidInput) as raised:
        InMemoryPersistence("enrollments", name)
    assert raised.value.field == "order_table_name"
    with pytest.raises(InvalidInput):
        DynamoDBPersistence(name, endpoint_url="http://localhost:1")


@pytest.mark.parametrize("name", ["abc", "x" * 255, "My_Table-1.prod"])
def test_valid_table_names_are_accepted(name: str) -> None:
    assert InMemoryPersistence(name, "orders").table_name == name
