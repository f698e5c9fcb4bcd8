"""Keys of the items enrollkit writes: the table layout in one place (pure)."""

from __future__ import annotations

import hashlib
import unicodedata

from enrollkit.models import LOCK_PARTITION, KeyPair, LifecycleEvent

# Key attribute names of both tables.
PARTITION_KEY = "id"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "ttl"

# Sort keys inside an enrollment's item collection.
ENROLLMENT_SK = "0"
TENANT_SK = "metadata#tenant"
LOCK_METADATA_SK = "metadata#lock"
DEDUPLICATION_WINDOW_SK = "metadata#deduplication_window"
CANCEL_POLICY_SK = "cancel_policy"
PARENT_VACANCY_SK = "parent_vacancy"
CANCELED_DATE_SK = "canceled_date"
SCHEDULES_PREFIX = "schedules#"

# Orders table.
ORDER_SK = "0"
GENERATED_ITEMS_PREFIX = "generated_items#"
VACANCIES_PREFIX = "vacancies#"


def lock_hash(user_id: str, course_id: str) -> str:
    """The sort key of the (user, course) de-duplication lock.

    Ids never contain ``#``, so ``user_id#course_id`` is an injective encoding of
    the pair (unlike plain concatenation: ("ab", "c") and ("a", "bc") would meet);
    hashing it keeps the key short whatever the ids' lengths. The ids are taken in NFC, as
    the models store them, so both spellings of an accented id give one hash.
    """
    encoded = unicodedata.normalize("NFC", f"{user_id}#{course_id}").encode()
    return hashlib.sha256(encoded).hexdigest()


def enrollment_key(enrollment_id: str) -> KeyPair:
    return KeyPair(pk=enrollment_id, sk=ENROLLMENT_SK)


def enrollment_item_key(enrollment_id: str, sk: str) -> KeyPair:
    return KeyPair(pk=enrollment_id, sk=sk)


def schedule_key(enrollment_id: str, event: LifecycleEvent) -> KeyPair:
    return KeyPair(pk=enrollment_id, sk=event.value)


def lock_key(user_id: str, course_id: str) -> KeyPair:
    return lock_item_key(lock_hash(user_id, course_id))


def lock_item_key(hash_: str) -> KeyPair:
    return KeyPair(pk=LOCK_PARTITION, sk=hash_)


def seat_key(org_id: str, order_id: str, slot_id: str) -> KeyPair:
    return KeyPair(pk=f"{VACANCIES_PREFIX}{org_id}", sk=f"{order_id}#{slot_id}")


def order_key(order_id: str) -> KeyPair:
    return KeyPair(pk=order_id, sk=ORDER_SK)


def generated_item_key(order_id: str, slot_id: str) -> KeyPair:
    return KeyPair(pk=order_id, sk=f"{GENERATED_ITEMS_PREFIX}{slot_id}")
