"""The (user, course) de-duplication lock: the lock item ``lock``/``<hash>`` shared by
every tenant, and the enrollment's ``metadata#lock`` and
``metadata#deduplication_window`` items."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from enrollkit.errors import InvalidInput
from enrollkit.layout.table import (
    CREATE_DATE,
    TTL_ATTRIBUTE,
    absent_or_expired,
    attr,
    key,
    key_attributes,
    read,
)
from enrollkit.models import (
    LOCK_PARTITION,
    DeduplicationWindow,
    Enrollment,
    KeyPair,
    validate_identifier,
)
from enrollkit.timing import iso, ttl

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

LOCK_METADATA_SK = "metadata#lock"
DEDUPLICATION_WINDOW_SK = "metadata#deduplication_window"
HOLDER = "enrollment_id"
HOLDER_TENANT = "tenant_id"
HASH = "hash"
OFFSET_DAYS = "offset_days"


def lock_hash(user_id: str, course_id: str) -> str:
    """The sort key of the (user, course) de-duplication lock.

    Ids never contain ``#``, so ``user_id#course_id`` is an injective encoding of
    the pair (unlike plain concatenation: ("ab", "c") and ("a", "bc") would meet);
    hashing it keeps the key short whatever the ids' lengths. An id breaking that rule
    (or any other id rule) is :class:`InvalidInput`, as ("a#b", "c") and ("a", "b#c")
    would meet. The ids are taken in NFC, as the models store them, so both spellings of an
    accented id give one hash.
    """
    normalized = []
    for name, value in (("user id", user_id), ("course id", course_id)):
        if not isinstance(value, str):
            raise InvalidInput(
                f"lock_hash: the {name} must be a string, not {type(value).__name__}"
            )
        try:
            normalized.append(validate_identifier(value))
        except ValueError as error:
            raise InvalidInput(f"lock_hash: not a valid {name}: {error}") from None
    return _digest(*normalized)


def _digest(user_id: str, course_id: str) -> str:
    return hashlib.sha256(f"{user_id}#{course_id}".encode()).hexdigest()


def lock_key(user_id: str, course_id: str) -> KeyPair:
    return lock_item_key(lock_hash(user_id, course_id))


def enrollment_lock_hash(enrollment: Enrollment) -> str:
    """The lock hash of a validated enrollment's (user, course) (``require_instance``):
    its models checked both ids and hold them in NFC, so they are not checked again."""
    return _digest(enrollment.user.id, enrollment.course.id)


def lock_item_key(hash_: str) -> KeyPair:
    return key(LOCK_PARTITION, hash_)


def lock_metadata_key(enrollment_id: str) -> KeyPair:
    return key(enrollment_id, LOCK_METADATA_SK)


def deduplication_window_key(enrollment_id: str) -> KeyPair:
    return key(enrollment_id, DEDUPLICATION_WINDOW_SK)


def lock_item(
    hash_: str, *, enrollment_id: str, tenant_id: str, now: datetime, until: datetime
) -> dict[str, Any]:
    return {
        **key_attributes(LOCK_PARTITION, hash_),  # lock_item_key's, without a KeyPair
        HOLDER: enrollment_id,
        # Lets a conflict show the holder to its own tenant only.
        HOLDER_TENANT: tenant_id,
        CREATE_DATE: iso(now),
        TTL_ATTRIBUTE: ttl(until),
    }


def lock_metadata_item(
    enrollment_id: str, hash_: str, *, now: datetime, until: datetime
) -> dict[str, Any]:
    return {
        **key_attributes(enrollment_id, LOCK_METADATA_SK),  # lock_metadata_key's
        HASH: hash_,
        CREATE_DATE: iso(now),
        TTL_ATTRIBUTE: ttl(until),
    }


def deduplication_window_item(
    enrollment_id: str, window: DeduplicationWindow, now: datetime
) -> dict[str, Any]:
    return {
        **key_attributes(enrollment_id, DEDUPLICATION_WINDOW_SK),  # deduplication_window_key's
        OFFSET_DAYS: window.offset_days,
        CREATE_DATE: iso(now),
    }


def lock_is_free(now: datetime) -> ConditionBase:
    """Absent or expired: an expired lock DynamoDB has not deleted yet blocks nobody."""
    return absent_or_expired(now)


def held_by(enrollment_id: str) -> ConditionBase:
    """The lock still belongs to ``enrollment_id`` (or names nobody)."""
    return attr(HOLDER).not_exists() | attr(HOLDER).eq(enrollment_id)


def holder_tenant(lock: Mapping[str, Any]) -> str | None:
    value = lock.get(HOLDER_TENANT)
    return value if isinstance(value, str) else None


def holder_enrollment(lock: Mapping[str, Any]) -> str | None:
    value = lock.get(HOLDER)
    return value if isinstance(value, str) else None


def held_until(lock: Mapping[str, Any]) -> datetime | None:
    """When the lock item expires (its ``ttl``), if it says."""
    value = lock.get(TTL_ATTRIBUTE)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return datetime.fromtimestamp(value, tz=timezone.utc)


def locked_hash(lock_metadata: Mapping[str, Any]) -> str:
    """The lock hash an enrollment's ``metadata#lock`` item names."""
    return str(read(lock_metadata, HASH))
