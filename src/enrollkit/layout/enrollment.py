"""The enrollment's own items, in its partition ``<enrollment id>``: the root item ``0``,
``metadata#tenant``, ``cancel_policy`` and ``canceled_date``; and the whole item
collection as one Query reads it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from enrollkit.errors import UnreadableItem
from enrollkit.layout import lock, schedule, seat
from enrollkit.layout.table import (
    CREATE_DATE,
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
    UPDATE_DATE,
    attr,
    key,
    present_and_live,
    read,
)
from enrollkit.models import (
    Author,
    CancelPolicy,
    Course,
    Enrollment,
    EnrollmentStatus,
    KeyPair,
    Tenant,
    Vacancy,
)
from enrollkit.timing import cancel_deadline, iso, ttl

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

ROOT_SK = "0"
TENANT_SK = "metadata#tenant"
CANCEL_POLICY_SK = "cancel_policy"
CANCELED_DATE_SK = "canceled_date"
STATUS = "status"
TENANT_ID = "metadata__tenant_id"
RELATED_IDS = "metadata__related_ids"
REQUEST_TOKEN = "request_token"
IDEMPOTENCY_KEY = "idempotency_key"
RETURNED_SEAT = "returned_seat"
# A retry of an enroll wrote the same of these (the rest is dates and status).
_IDENTITY = ("user", "course", TENANT_ID)


def root_key(enrollment_id: str) -> KeyPair:
    return key(enrollment_id, ROOT_SK)


def tenant_key(enrollment_id: str) -> KeyPair:
    return key(enrollment_id, TENANT_SK)


def cancel_policy_key(enrollment_id: str) -> KeyPair:
    return key(enrollment_id, CANCEL_POLICY_SK)


def canceled_date_key(enrollment_id: str) -> KeyPair:
    return key(enrollment_id, CANCELED_DATE_SK)


# -- builders ----------------------------------------------------------------------------


def root_item(enrollment: Enrollment, tenant: Tenant, now: datetime) -> dict[str, Any]:
    return {
        **enrollment.model_dump(mode="json"),
        SORT_KEY: ROOT_SK,
        CREATE_DATE: iso(now),
        TENANT_ID: tenant.id,
        RELATED_IDS: {tenant.id, enrollment.user.id},
    }


def tenant_item(enrollment_id: str, tenant: Tenant, now: datetime) -> dict[str, Any]:
    return {
        **tenant_key(enrollment_id).as_key(),
        "tenant_id": f"ORG#{tenant.id}",
        "name": tenant.name,
        CREATE_DATE: iso(now),
    }


def cancel_policy_item(enrollment_id: str, policy: CancelPolicy, now: datetime) -> dict[str, Any]:
    item: dict[str, Any] = {**cancel_policy_key(enrollment_id).as_key(), CREATE_DATE: iso(now)}
    if policy.days is not None:
        item[TTL_ATTRIBUTE] = ttl(cancel_deadline(now, policy.days))
    return item


@dataclass(frozen=True)
class CancelRecord:
    """What the ``canceled_date`` item records about a cancel, beyond who and when:
    ``request_token`` (this very request, to recognise its own commit after a lost
    response), the caller's ``idempotency_key`` if any, and the seat it gave back."""

    request_token: str
    idempotency_key: str | None
    returned_seat: Vacancy | None


def canceled_date_item(
    enrollment_id: str, author: Author, now: datetime, record: CancelRecord
) -> dict[str, Any]:
    item: dict[str, Any] = {
        **canceled_date_key(enrollment_id).as_key(),
        "author": author.model_dump(mode="json"),
        CREATE_DATE: iso(now),
        REQUEST_TOKEN: record.request_token,
    }
    if record.idempotency_key is not None:
        item[IDEMPOTENCY_KEY] = record.idempotency_key
    if record.returned_seat is not None:
        item[RETURNED_SEAT] = record.returned_seat.model_dump(mode="json")
    return item


def canceled_changes(now: datetime) -> dict[str, Any]:
    """What cancel() sets on the root item."""
    return {STATUS: EnrollmentStatus.CANCELED.value, UPDATE_DATE: iso(now)}


# -- conditions ------------------------------------------------------------------------------


def root_is_new() -> ConditionBase:
    return attr(PARTITION_KEY).not_exists()


def cancelable_for(tenant_id: Any) -> ConditionBase:
    """Not canceled yet, and still the tenant's."""
    return attr(STATUS).ne(EnrollmentStatus.CANCELED.value) & attr(TENANT_ID).eq(tenant_id)


def cancel_policy_live(now: datetime) -> ConditionBase:
    return present_and_live(now)


# -- parsers -----------------------------------------------------------------------------------


def same_enrollment(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Same user, course and tenant: the enrollment a retry would have written."""
    return all(existing.get(name) == wanted[name] for name in _IDENTITY)


def tenant_of(root: Mapping[str, Any]) -> Any:
    return root.get(TENANT_ID)


def is_canceled(root: Mapping[str, Any]) -> bool:
    return root.get(STATUS) == EnrollmentStatus.CANCELED.value


def course_of(root: Mapping[str, Any]) -> Course:
    try:
        return Course.model_validate(read(root, "course", Mapping))
    except ValidationError as error:
        raise UnreadableItem(
            f"item {root.get(PARTITION_KEY)!r}/{ROOT_SK!r}: attribute 'course' is not a "
            f"course: {error}"
        ) from None


def parse_cancel_record(canceled_date: Mapping[str, Any]) -> CancelRecord:
    """The cancel a ``canceled_date`` item records (one written before these attributes
    has none of them: it matches no request)."""
    token = canceled_date.get(REQUEST_TOKEN)
    idempotency_key = canceled_date.get(IDEMPOTENCY_KEY)
    returned = canceled_date.get(RETURNED_SEAT)
    try:
        seat_returned = Vacancy.model_validate(returned) if returned is not None else None
    except ValidationError as error:
        raise UnreadableItem(
            f"item {canceled_date.get(PARTITION_KEY)!r}/{CANCELED_DATE_SK!r}: attribute "
            f"{RETURNED_SEAT!r} is not a seat: {error}"
        ) from None
    return CancelRecord(
        request_token=token if isinstance(token, str) else "",
        idempotency_key=idempotency_key if isinstance(idempotency_key, str) else None,
        returned_seat=seat_returned,
    )


@dataclass(frozen=True)
class EnrollmentItems:
    """An enrollment's item collection, as one Query of its partition reads it."""

    enrollment_id: str
    by_sk: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of(cls, enrollment_id: str, items: Iterable[Mapping[str, Any]]) -> EnrollmentItems:
        return cls(enrollment_id, {str(item[SORT_KEY]): item for item in items})

    @property
    def root(self) -> Mapping[str, Any] | None:
        return self.by_sk.get(ROOT_SK)

    @property
    def canceled_date(self) -> Mapping[str, Any] | None:
        return self.by_sk.get(CANCELED_DATE_SK)

    @property
    def cancel_policy(self) -> Mapping[str, Any] | None:
        return self.by_sk.get(CANCEL_POLICY_SK)

    @property
    def lock_metadata(self) -> Mapping[str, Any] | None:
        return self.by_sk.get(lock.LOCK_METADATA_SK)

    @property
    def parent_vacancy(self) -> Mapping[str, Any] | None:
        return self.by_sk.get(seat.PARENT_VACANCY_SK)

    @property
    def taken_seat(self) -> Vacancy | None:
        """The seat the enrollment holds, from its ``parent_vacancy`` item."""
        parent = self.parent_vacancy
        return seat.parse_parent_vacancy(parent) if parent is not None else None

    @property
    def schedule_keys(self) -> list[KeyPair]:
        return [key(self.enrollment_id, sk) for sk in self.by_sk if schedule.is_schedule(sk)]
