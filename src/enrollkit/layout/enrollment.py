"""The enrollment's own items, in its partition ``<enrollment id>``: the root item ``0``,
``metadata#tenant``, ``cancel_policy`` and ``canceled_date``; the whole item collection as
one Query reads it; and the listing indexes, which the root item's ``index__*``
attributes key.

The listing indexes: one global secondary index per filter of ``list_enrollments()``,
each partitioned by the tenant (and the user or course, and the status) and sorted by
``index__created`` = ``<creation instant, fixed width>#<enrollment id>``, so a Query in
descending order is newest first. The status-keyed attributes change with the status:
every writer of ``status`` sets them through :func:`status_changes`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from enrollkit.errors import InvalidInput, UnreadableItem
from enrollkit.layout import lock, schedule, seat
from enrollkit.layout.table import (
    CREATE_DATE,
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
    UPDATE_DATE,
    attr,
    expired,
    item_exists,
    kept_conditions,
    key,
    key_attributes,
    present_and_live,
    read,
    read_date,
    read_instant,
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
    User,
    Vacancy,
    validate_enrollment_id,
    validate_identifier,
)
from enrollkit.persistence.indexes import (
    MAX_INDEX_PARTITION_KEY_BYTES,
    MAX_INDEX_SORT_KEY_BYTES,
    GlobalIndex,
)
from enrollkit.records import (
    CancellationRecord,
    CancelPolicyRecord,
    EnrollmentRecord,
    EnrollmentSummary,
    LockRecord,
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
USER = "user"
COURSE = "course"
# A retry of an enroll wrote the same of these (the rest is dates and status).
_IDENTITY = (USER, COURSE, TENANT_ID)

# -- the listing indexes -----------------------------------------------------------------

CREATED = "index__created"
BY_STATUS = "index__status"
BY_USER = "index__user"
BY_USER_STATUS = "index__user_status"
BY_COURSE = "index__course"
BY_COURSE_STATUS = "index__course_status"
# What a listing shows (EnrollmentSummary). Not progress nor update_date: a change of
# those alone then writes to no index.
_SUMMARY = (USER, COURSE, STATUS, CREATE_DATE, TENANT_ID)

# What the index attributes are computed from, as condition paths (a backfill writes them
# only while these are as it read them).
LISTING_SOURCES = (TENANT_ID, f"{USER}.id", f"{COURSE}.id", STATUS, CREATE_DATE)


def _listing_index(name: str, partition_key: str) -> GlobalIndex:
    # DynamoDB projects an index's own keys anyway: the summary's other attributes only.
    projected = tuple(name for name in _SUMMARY if name != partition_key)
    return GlobalIndex(name, partition_key, CREATED, projected)


TENANT_INDEX = _listing_index("enrollments_by_tenant", TENANT_ID)
STATUS_INDEX = _listing_index("enrollments_by_status", BY_STATUS)
USER_INDEX = _listing_index("enrollments_by_user", BY_USER)
USER_STATUS_INDEX = _listing_index("enrollments_by_user_status", BY_USER_STATUS)
COURSE_INDEX = _listing_index("enrollments_by_course", BY_COURSE)
COURSE_STATUS_INDEX = _listing_index("enrollments_by_course_status", BY_COURSE_STATUS)
LISTING_INDEXES = (
    TENANT_INDEX,
    STATUS_INDEX,
    USER_INDEX,
    USER_STATUS_INDEX,
    COURSE_INDEX,
    COURSE_STATUS_INDEX,
)


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
    item = stored_fields(enrollment)  # (a new dict: the rest is added to it, not merged)
    item[SORT_KEY] = ROOT_SK
    item[CREATE_DATE] = iso(now)
    item[TENANT_ID] = tenant.id
    item[RELATED_IDS] = {tenant.id, enrollment.user.id}
    item.update(
        listing_attributes(
            ListingKeys(tenant.id, enrollment.user.id, enrollment.course.id, enrollment.status),
            created_at=now,
            enrollment_id=enrollment.id,
        )
    )
    return item


def stored_fields(enrollment: Enrollment) -> dict[str, Any]:
    """The enrollment's fields as the root item stores them: ``model_dump(mode="json")``,
    written out (at a third of its cost) for a validated enrollment, whose fields have
    their declared types. (tests/test_properties.py checks the two equal for every field.)"""
    user, course = enrollment.user, enrollment.course
    return {
        PARTITION_KEY: enrollment.id,
        USER: {"id": user.id, "name": user.name, "email": user.email},
        COURSE: {"id": course.id, "name": course.name, "access_period": course.access_period},
        STATUS: enrollment.status.value,
        PROGRESS: enrollment.progress,
    }


# -- the listing indexes' attributes ---------------------------------------------------------


class ListingKeys(NamedTuple):
    """What partitions an enrollment in the listing indexes. (A named tuple: immutable,
    and built at half a frozen dataclass's cost.)"""

    tenant_id: str
    user_id: str
    course_id: str
    status: EnrollmentStatus

    def status_attributes(self) -> dict[str, str]:
        """The status-keyed index attributes: they change whenever the status does."""
        status = self.status.value
        return {
            BY_STATUS: _index_value(self.tenant_id, status),
            BY_USER_STATUS: _index_value(self.tenant_id, self.user_id, status),
            BY_COURSE_STATUS: _index_value(self.tenant_id, self.course_id, status),
        }


def listing_attributes(
    keys: ListingKeys, *, created_at: datetime, enrollment_id: str
) -> dict[str, str]:
    """Every listing index attribute of a root item (InvalidInput when one would be over
    DynamoDB's index key size, before anything is written)."""
    created = f"{created_order(created_at)}#{enrollment_id}"
    # (A character is at most 4 bytes: a short value needs no encoding to be sure.)
    if len(created) * 4 > MAX_INDEX_SORT_KEY_BYTES and (
        len(created.encode()) > MAX_INDEX_SORT_KEY_BYTES
    ):
        raise InvalidInput(
            f"the enrollment id makes an index sort key over DynamoDB's "
            f"{MAX_INDEX_SORT_KEY_BYTES} bytes: use a shorter id"
        )
    attributes = {
        CREATED: created,
        BY_USER: _index_value(keys.tenant_id, keys.user_id),
        BY_COURSE: _index_value(keys.tenant_id, keys.course_id),
    }
    attributes.update(keys.status_attributes())
    return attributes


_CREATED_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def created_order(instant: datetime) -> str:
    """An instant as a fixed-width UTC string, so that strings sort as instants do (an
    ISO string with an offset, or without microseconds, would not).

    Cut from :func:`iso`'s text, which the item's ``create_date`` has just made (it is
    cached): ``YYYY-MM-DDTHH:MM:SS`` and, when there are any, ``.ffffff`` microseconds."""
    text = iso(instant)
    return f"{text[:26]}Z" if text[19] == "." else f"{text[:19]}.000000Z"


def enrollment_at(created: str) -> str | None:
    """The enrollment id an ``index__created`` value names, or ``None`` when it is not
    one (``<instant>#<id>``)."""
    instant, _, enrollment_id = created.rpartition("#")
    try:
        datetime.strptime(instant, _CREATED_FORMAT)
        validate_enrollment_id(enrollment_id)
    except ValueError:
        return None
    return enrollment_id


def _index_value(*parts: str) -> str:
    # Ids and statuses never contain '#': the joined value names one combination.
    value = "#".join(parts)
    # (A character is at most 4 bytes: a short value needs no encoding to be sure.)
    if len(value) * 4 > MAX_INDEX_PARTITION_KEY_BYTES and (
        len(value.encode()) > MAX_INDEX_PARTITION_KEY_BYTES
    ):
        raise InvalidInput(
            f"the tenant, user and course ids make an index key over DynamoDB's "
            f"{MAX_INDEX_PARTITION_KEY_BYTES} bytes: use shorter ids"
        )
    return value


def listing_keys_of(root: Mapping[str, Any]) -> ListingKeys:
    """The listing keys of a stored root item, or :class:`UnreadableItem`."""
    return ListingKeys(
        tenant_id=read(root, TENANT_ID),
        user_id=_stored_id(root, USER),
        course_id=_stored_id(root, COURSE),
        status=status_of(root),
    )


def listing_attributes_of(root: Mapping[str, Any]) -> dict[str, str]:
    """The listing index attributes a stored root item should have (what the backfill
    writes), or :class:`UnreadableItem`."""
    return listing_attributes(
        listing_keys_of(root),
        created_at=read_date(root, CREATE_DATE),
        enrollment_id=read(root, PARTITION_KEY),
    )


def status_changes(
    root: Mapping[str, Any], status: EnrollmentStatus, now: datetime, **also: Any
) -> dict[str, Any]:
    """What a change of status sets on the root item (with ``also``): the status,
    ``update_date``, and the status-keyed index attributes, so the status indexes follow.
    Every writer of ``status`` uses this. (A root item enrollkit cannot read keys gets only
    the status; ``enrollkit backfill`` reports it.)"""
    changes: dict[str, Any] = {STATUS: status.value, UPDATE_DATE: iso(now), **also}
    try:
        keys = listing_keys_of(root)
    except UnreadableItem:
        return changes
    return {**changes, **keys._replace(status=status).status_attributes()}


def tenant_item(enrollment_id: str, tenant: Tenant, now: datetime) -> dict[str, Any]:
    return {
        **key_attributes(enrollment_id, TENANT_SK),  # tenant_key's, without a KeyPair
        "tenant_id": f"ORG#{tenant.id}",
        "name": tenant.name,
        CREATE_DATE: iso(now),
    }


def cancel_policy_item(enrollment_id: str, policy: CancelPolicy, now: datetime) -> dict[str, Any]:
    item: dict[str, Any] = {
        **key_attributes(enrollment_id, CANCEL_POLICY_SK),  # cancel_policy_key's
        CREATE_DATE: iso(now),
    }
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
        **key_attributes(enrollment_id, CANCELED_DATE_SK),  # canceled_date_key's, no KeyPair
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


# -- status changes (each through status_changes(), which keeps the status indexes right) -------


def canceled_changes(root: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """What cancel() sets on the root item."""
    return status_changes(root, EnrollmentStatus.CANCELED, now)


def first_access_changes(
    root: Mapping[str, Any], now: datetime, progress: int | None
) -> dict[str, Any]:
    """What the first access sets: IN_PROGRESS, the first (and last) access date."""
    also: dict[str, Any] = {FIRST_ACCESS_DATE: iso(now), LAST_ACCESS_DATE: iso(now)}
    if progress is not None:
        also[PROGRESS] = progress
    return status_changes(root, EnrollmentStatus.IN_PROGRESS, now, **also)


def access_changes(now: datetime, progress: int | None) -> dict[str, Any]:
    """What a later access sets (no status change: no status write)."""
    changes: dict[str, Any] = {LAST_ACCESS_DATE: iso(now)}
    if progress is not None:
        changes[PROGRESS] = progress
    return changes


def completed_changes(root: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return status_changes(root, EnrollmentStatus.COMPLETED, now, **{COMPLETED_DATE: iso(now)})


# -- conditions ------------------------------------------------------------------------------


@kept_conditions(maxsize=None)
def root_is_new() -> ConditionBase:
    return attr(PARTITION_KEY).not_exists()


def status_in(statuses: Collection[EnrollmentStatus]) -> ConditionBase:
    """The root item exists with one of ``statuses``."""
    return attr(STATUS).is_in([status.value for status in sorted(statuses)])


def status_in_for(statuses: Collection[EnrollmentStatus], tenant_id: Any) -> ConditionBase:
    """One of ``statuses``, and still the tenant's."""
    if type(tenant_id) is str:  # (a stored tenant id of another type: built for this call)
        return _status_in_for(frozenset(statuses), tenant_id)
    return status_in(statuses) & attr(TENANT_ID).eq(tenant_id)


@kept_conditions(maxsize=256)
def _status_in_for(statuses: frozenset[EnrollmentStatus], tenant_id: str) -> ConditionBase:
    # Kept per (statuses, tenant): each cancel and step of a tenant's enrollments uses one.
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


def known_status_of(root: Mapping[str, Any]) -> EnrollmentStatus | None:
    """The stored status; ``None`` for a value enrollkit does not know (where a step is then
    refused, rather than the item reported unreadable)."""
    try:
        return EnrollmentStatus(str(root.get(STATUS)))
    except ValueError:
        return None


def course_of(root: Mapping[str, Any]) -> Course:
    return _stored_model(root, COURSE, Course)


def user_of(root: Mapping[str, Any]) -> User:
    return _stored_model(root, USER, User)


_StoredModel = TypeVar("_StoredModel", bound=BaseModel)


def _stored_model(
    root: Mapping[str, Any], attribute: str, model: type[_StoredModel]
) -> _StoredModel:
    """The root item's map ``attribute`` as ``model``, or UnreadableItem naming both."""
    try:
        return model.model_validate(_fields_of(model, read(root, attribute, Mapping)))
    except ValidationError as error:
        raise UnreadableItem(
            f"item {root.get(PARTITION_KEY)!r}/{ROOT_SK!r}: attribute {attribute!r} is not a "
            f"{attribute}: {_first_error(error)}"
        ) from None


def _stored_id(root: Mapping[str, Any], attribute: str) -> str:
    """The id in the root item's map ``attribute`` (the user's, the course's), or
    UnreadableItem: only the id keys the indexes, so only it is checked (not the whole
    model, as :func:`user_of` does)."""
    stored = read(root, attribute, Mapping).get("id")
    try:
        if not isinstance(stored, str):
            raise ValueError(f"is {type(stored).__name__}, not a string")
        return validate_identifier(stored)
    except ValueError as error:
        raise UnreadableItem(
            f"item {root.get(PARTITION_KEY)!r}/{ROOT_SK!r}: attribute {attribute!r} is not a "
            f"{attribute}: id: {error}"
        ) from None


def status_of(root: Mapping[str, Any]) -> EnrollmentStatus:
    value = read(root, STATUS)
    try:
        return EnrollmentStatus(value)
    except ValueError:
        raise UnreadableItem(
            f"item {root.get(PARTITION_KEY)!r}/{ROOT_SK!r}: attribute 'status' is "
            f"{value[:40]!r}, not an enrollment status"
        ) from None


def _fields_of(model: type[BaseModel], stored: Mapping[str, Any]) -> dict[str, Any]:
    """The model's fields of a stored map: other writers (the original code) stored more."""
    return {name: value for name, value in stored.items() if name in model.model_fields}


def _first_error(error: ValidationError) -> str:
    """pydantic's first complaint, on one line: where, and what."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "value"
    return f"{where}: {first['msg']}"


def parse_summary(item: Mapping[str, Any]) -> EnrollmentSummary:
    """A root item (as a listing index carries it) as an :class:`EnrollmentSummary`."""
    return EnrollmentSummary(
        id=read(item, PARTITION_KEY),
        tenant_id=read(item, TENANT_ID),
        user=user_of(item),
        course=course_of(item),
        status=status_of(item),
        created_at=read_date(item, CREATE_DATE),
    )


def _progress_of(root: Mapping[str, Any]) -> int:
    if PROGRESS not in root:  # the model's default
        return 0
    value: int = read(root, PROGRESS, int)
    return value


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

    def scheduled(self) -> dict[LifecycleEvent, schedule.ScheduledEvent]:
        """The enrollment's scheduled events, as stored (foreign items left out)."""
        events = {}
        for sk, item in self.by_sk.items():
            if schedule.is_schedule(sk):
                parsed = schedule.parse_schedule_item(item)
                if parsed is not None:
                    events[parsed.event] = parsed
        return events

    def scheduled_event(self, event: LifecycleEvent) -> schedule.ScheduledEvent | None:
        """One scheduled event, as stored (``None``: not scheduled, or unreadable)."""
        item = self.by_sk.get(event.value)
        return None if item is None else schedule.parse_schedule_item(item)

    def record(self, now: datetime) -> EnrollmentRecord:
        """The collection as an :class:`EnrollmentRecord` as of ``now``: items whose ttl has
        passed left out. Raises :class:`UnreadableItem` for an item it cannot read, and
        ``LookupError`` without a root item."""
        root = self.root
        if root is None:
            raise LookupError(self.enrollment_id)
        live = {sk: item for sk, item in self.by_sk.items() if not expired(item, now)}
        return EnrollmentRecord(
            id=read(root, PARTITION_KEY),
            tenant_id=read(root, TENANT_ID),
            user=user_of(root),
            course=course_of(root),
            status=status_of(root),
            progress=_progress_of(root),
            created_at=read_date(root, CREATE_DATE),
            updated_at=read_date(root, UPDATE_DATE) if UPDATE_DATE in root else None,
            schedule=_schedule_of(live.values()),
            lock=_lock_of(live.get(lock.LOCK_METADATA_SK)),
            deduplication_window=_window_of(live.get(lock.DEDUPLICATION_WINDOW_SK)),
            cancel_policy=_policy_of(live.get(CANCEL_POLICY_SK)),
            seat=self.taken_seat,
            canceled=_cancellation_of(live.get(CANCELED_DATE_SK)),
        )


def _schedule_of(items: Iterable[Mapping[str, Any]]) -> dict[LifecycleEvent, datetime]:
    events = (
        schedule.parse_schedule_item(item)
        for item in items
        if schedule.is_schedule(str(item[SORT_KEY]))
    )
    return {event.event: event.due for event in events if event is not None}


def _lock_of(item: Mapping[str, Any] | None) -> LockRecord | None:
    if item is None:
        return None
    return LockRecord(hash=lock.locked_hash(item), until=read_instant(item, TTL_ATTRIBUTE))


def _window_of(item: Mapping[str, Any] | None) -> int | None:
    if item is None:
        return None
    offset_days: int = read(item, lock.OFFSET_DAYS, int)
    return offset_days


def _policy_of(item: Mapping[str, Any] | None) -> CancelPolicyRecord | None:
    if item is None:
        return None
    deadline = read_instant(item, TTL_ATTRIBUTE) if TTL_ATTRIBUTE in item else None
    return CancelPolicyRecord(deadline=deadline)


def _cancellation_of(item: Mapping[str, Any] | None) -> CancellationRecord | None:
    if item is None:
        return None
    try:
        author = Author.model_validate(read(item, "author", Mapping))
    except ValidationError as error:
        raise UnreadableItem(
            f"item {item.get(PARTITION_KEY)!r}/{CANCELED_DATE_SK!r}: attribute 'author' is "
            f"not an author: {_first_error(error)}"
        ) from None
    return CancellationRecord(author=author, at=read_date(item, CREATE_DATE))
