"""The enrollment's own items, in its partition ``<enrollment id>``: the root item ``0``,
``metadata#tenant``, ``cancel_policy`` and ``canceled_date``; and the whole item
collection as one Query reads it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
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
    item_exists,
    key,
    present_and_live,
    read,
)
from enrollkit.models import (
    AdminOverride,
    Author,
    CancelPolicy,
    Certificate,
    Course,
    Enrollment,
    EnrollmentStatus,
    KeyPair,
    LifecycleEvent,
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
CERTIFICATE_SK = "certificate"
STATUS = "status"
PROGRESS = "progress"
FIRST_ACCESS_DATE = "first_access_date"
LAST_ACCESS_DATE = "last_access_date"
COMPLETED_DATE = "completed_date"
EXPIRES_AT = "expires_at"
ADMIN_OVERRIDE = "admin_override"
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


def certificate_key(enrollment_id: str) -> KeyPair:
    return key(enrollment_id, CERTIFICATE_SK)


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
    override: AdminOverride | None = None
    """Set when an administrator canceled regardless of the cancel policy (audited)."""


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
    if record.override is not None:
        item[ADMIN_OVERRIDE] = record.override.model_dump(mode="json")
    return item


def certificate_item(enrollment_id: str, certificate: Certificate, now: datetime) -> dict[str, Any]:
    expires_at = certificate.expires_at
    return {
        **certificate_key(enrollment_id).as_key(),
        EXPIRES_AT: iso(expires_at) if expires_at is not None else None,
        CREATE_DATE: iso(now),
    }


def stored_certificate(item: Mapping[str, Any] | None) -> Certificate | None:
    """The certificate a ``certificate`` item records (``None`` for none, or unreadable)."""
    if item is None:
        return None
    expires_at = item.get(EXPIRES_AT)
    try:
        return Certificate(
            expires_at=datetime.fromisoformat(expires_at) if isinstance(expires_at, str) else None
        )
    except (ValueError, ValidationError):
        return None


# -- status changes ---------------------------------------------------------------------------


def status_changes(status: EnrollmentStatus, now: datetime, **also: Any) -> dict[str, Any]:
    """What a step that moves the root item to ``status`` sets, with ``also``. Every status
    write goes through here, so an attribute derived from the status (an index key) is
    kept right in one place."""
    return {STATUS: status.value, UPDATE_DATE: iso(now), **also}


def canceled_changes(now: datetime) -> dict[str, Any]:
    """What cancel() sets on the root item."""
    return status_changes(EnrollmentStatus.CANCELED, now)


def first_access_changes(now: datetime, progress: int | None) -> dict[str, Any]:
    """What the first access sets: IN_PROGRESS, the first (and last) access date."""
    also: dict[str, Any] = {FIRST_ACCESS_DATE: iso(now), LAST_ACCESS_DATE: iso(now)}
    if progress is not None:
        also[PROGRESS] = progress
    return status_changes(EnrollmentStatus.IN_PROGRESS, now, **also)


def access_changes(now: datetime, progress: int | None) -> dict[str, Any]:
    """What a later access sets (no status change: no status write)."""
    changes: dict[str, Any] = {LAST_ACCESS_DATE: iso(now)}
    if progress is not None:
        changes[PROGRESS] = progress
    return changes


def completed_changes(now: datetime) -> dict[str, Any]:
    return status_changes(EnrollmentStatus.COMPLETED, now, **{COMPLETED_DATE: iso(now)})


# -- conditions ------------------------------------------------------------------------------


def root_is_new() -> ConditionBase:
    return attr(PARTITION_KEY).not_exists()


def status_in(statuses: Collection[EnrollmentStatus]) -> ConditionBase:
    """The root item exists with one of ``statuses``."""
    return attr(STATUS).is_in([status.value for status in sorted(statuses)])


def status_in_for(statuses: Collection[EnrollmentStatus], tenant_id: Any) -> ConditionBase:
    """One of ``statuses``, and still the tenant's."""
    return status_in(statuses) & attr(TENANT_ID).eq(tenant_id)


def status_not(status: EnrollmentStatus) -> ConditionBase:
    """The root item exists and its status is not ``status``."""
    return item_exists() & attr(STATUS).ne(status.value)


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


def status_of(root: Mapping[str, Any]) -> EnrollmentStatus | None:
    """The stored status; ``None`` for a value enrollkit does not know."""
    try:
        return EnrollmentStatus(str(root.get(STATUS)))
    except ValueError:
        return None


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
    override = canceled_date.get(ADMIN_OVERRIDE)
    try:
        override_made = AdminOverride.model_validate(override) if override is not None else None
    except ValidationError:
        override_made = None
    return CancelRecord(
        request_token=token if isinstance(token, str) else "",
        idempotency_key=idempotency_key if isinstance(idempotency_key, str) else None,
        returned_seat=seat_returned,
        override=override_made,
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
    def certificate(self) -> Mapping[str, Any] | None:
        return self.by_sk.get(CERTIFICATE_SK)

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

    def scheduled(self) -> dict[LifecycleEvent, schedule.ScheduledEvent]:
        """The enrollment's scheduled events, as stored (foreign items left out)."""
        events = {}
        for sk, item in self.by_sk.items():
            if schedule.is_schedule(sk):
                parsed = schedule.parse_schedule_item(item)
                if parsed is not None:
                    events[parsed.event] = parsed
        return events
