"""What every item of both tables shares: the key schema, the TTL attribute, DynamoDB's
key size limits (checked where keys are built), and condition helpers."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar, cast

from enrollkit.errors import InvalidInput, UnreadableItem
from enrollkit.models import KeyPair
from enrollkit.timing import ttl

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import Attr, ConditionBase

PARTITION_KEY = "id"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "ttl"
CREATE_DATE = "create_date"
UPDATE_DATE = "update_date"
# DynamoDB's key size limits (the builder checks them too, as a last line).
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024


def key(pk: str, sk: str) -> KeyPair:
    """An item key, its byte lengths checked (see :func:`key_attributes`)."""
    check_key_bytes(pk, sk)
    return KeyPair(pk, sk)


def key_attributes(pk: str, sk: str) -> dict[str, str]:
    """An item's key attributes, their byte lengths checked (item builders use these: a
    whole item needs no KeyPair)."""
    check_key_bytes(pk, sk)
    return {PARTITION_KEY: pk, SORT_KEY: sk}


def check_key_bytes(pk: str, sk: str) -> None:
    """Ids are limited in characters, DynamoDB's keys in bytes (a 4-byte character counts
    four), so a key built from valid ids can still be too long. InvalidInput here means
    nothing was written. (A character is at most 4 bytes: a short key needs no encoding to
    be sure.)"""
    if len(pk) * 4 > MAX_PARTITION_KEY_BYTES and len(pk.encode()) > MAX_PARTITION_KEY_BYTES:
        raise InvalidInput(
            f"the partition key {pk[:40]!r}... is over DynamoDB's {MAX_PARTITION_KEY_BYTES} "
            "bytes: use shorter ids"
        )
    if len(sk) * 4 > MAX_SORT_KEY_BYTES and len(sk.encode()) > MAX_SORT_KEY_BYTES:
        raise InvalidInput(
            f"the sort key {sk[:40]!r}... is over DynamoDB's {MAX_SORT_KEY_BYTES} bytes: "
            "use shorter ids"
        )


@functools.lru_cache(maxsize=256)
def attr(name: str) -> Attr:
    """A condition attribute; boto3's condition classes load on first use. (Cached per
    name: an Attr, like every boto3 condition, is immutable, so one serves every call.)"""
    from boto3.dynamodb.conditions import Attr

    return Attr(name)


_Build = TypeVar("_Build", bound=Callable[..., Any])


def kept_conditions(maxsize: int | None) -> Callable[[_Build], _Build]:
    """Decorates a layout function that builds a condition: the condition is built once per
    arguments and kept (the ``maxsize`` latest; ``None``: all), since a boto3 condition is
    immutable, and walked once for every operation given it (see
    ``condition_shape.walked_once``)."""

    def keep(build: _Build) -> _Build:
        @functools.lru_cache(maxsize=maxsize)
        @functools.wraps(build)
        def kept(*arguments: Any, **keywords: Any) -> Any:
            # (Imported here: the transaction package imports the layout.)
            from enrollkit.transaction.condition_shape import walked_once

            return walked_once(build(*arguments, **keywords))

        return cast(_Build, kept)

    return keep


@kept_conditions(maxsize=None)
def item_exists() -> ConditionBase:
    return attr(SORT_KEY).exists()


@kept_conditions(maxsize=None)
def item_absent() -> ConditionBase:
    return attr(SORT_KEY).not_exists()


def absent_or_expired(now: datetime) -> ConditionBase:
    """DynamoDB deletes expired items up to days late: an expired item counts as gone."""
    return _absent_or_expired_at(ttl(now))


@kept_conditions(maxsize=64)
def _absent_or_expired_at(cutoff: int) -> ConditionBase:
    # Cached per second (as item_exists is, once): the enrolls of one second share it.
    return attr(SORT_KEY).not_exists() | attr(TTL_ATTRIBUTE).lte(cutoff)


def present_and_live(now: datetime) -> ConditionBase:
    """The item exists and has no ttl, or one still ahead of ``now``."""
    return _present_and_live_at(ttl(now))


@kept_conditions(maxsize=64)
def _present_and_live_at(cutoff: int) -> ConditionBase:
    # Kept per second, as absent_or_expired is: the cancels of one second share it.
    return attr(SORT_KEY).exists() & (
        attr(TTL_ATTRIBUTE).not_exists() | attr(TTL_ATTRIBUTE).gt(cutoff)
    )


def expired(item: Mapping[str, Any], now: datetime) -> bool:
    """Whether the item's ttl has passed (an item without ttl never expires)."""
    deadline = item.get(TTL_ATTRIBUTE)
    return isinstance(deadline, int) and not isinstance(deadline, bool) and deadline <= ttl(now)


def key_of(item: Mapping[str, Any]) -> KeyPair:
    """The key of a stored item."""
    return KeyPair(pk=str(item[PARTITION_KEY]), sk=str(item[SORT_KEY]))


def read(item: Mapping[str, Any], name: str, kind: type[Any] = str) -> Any:
    """Attribute ``name`` of a stored item, of type ``kind``, or a clear error naming the
    item and the attribute (a foreign writer, a half-migrated table)."""
    value = item.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise UnreadableItem(
            f"item {item.get(PARTITION_KEY)!r}/{item.get(SORT_KEY)!r}: attribute {name!r} "
            f"is {'missing' if value is None else type(value).__name__}, "
            f"not {kind.__name__}"
        )
    return value


def read_instant(item: Mapping[str, Any], name: str) -> datetime:
    """An epoch-seconds attribute (a ``ttl``) as a UTC datetime, or a clear error: a value
    in milliseconds is past year 9999, which no datetime holds."""
    seconds = read(item, name, int)
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        raise UnreadableItem(
            f"item {item.get(PARTITION_KEY)!r}/{item.get(SORT_KEY)!r}: attribute {name!r} "
            f"is {seconds}, not an instant in epoch seconds"
        ) from None


def read_date(item: Mapping[str, Any], name: str) -> datetime:
    """An ISO-8601 date attribute (``create_date``) as a timezone-aware datetime, or a
    clear error naming the item and the attribute."""
    text = read(item, name)
    try:
        # Python 3.10's fromisoformat does not take the "Z" suffix other writers use.
        instant = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise UnreadableItem(
            f"item {item.get(PARTITION_KEY)!r}/{item.get(SORT_KEY)!r}: attribute {name!r} "
            f"is not an ISO-8601 date with a UTC offset: {text[:40]!r}"
        )
    return instant
