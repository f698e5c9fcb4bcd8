"""The reads: one enrollment as a typed record (one Query of its partition), and a
tenant's enrollments, newest first, a page at a time (one Query of a listing index per
page, never a Scan)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from enrollkit.errors import EnrollmentNotFound, InvalidInput
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.layout.enrollment import EnrollmentItems
from enrollkit.layout.table import PARTITION_KEY, SORT_KEY
from enrollkit.models import EnrollmentStatus
from enrollkit.operations._validation import require_enrollment_id, require_identifier
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.persistence.indexes import GlobalIndex
from enrollkit.records import EnrollmentRecord, EnrollmentSummary, Page
from enrollkit.timing import require_aware

MAX_PAGE_SIZE = 1000
_CURSOR_VERSION = 1


def get_enrollment(
    enrollment_id: str,
    *,
    persistence_layer: PersistenceLayer,
    tenant_id: str | None = None,
    now: datetime | None = None,
) -> EnrollmentRecord:
    """Everything enrollkit stored about one enrollment, as a typed record: one Query of
    its partition (strongly consistent).

    Args:
        enrollment_id: The enrollment to read.
        persistence_layer: Where it lives.
        tenant_id: When given, the enrollment must belong to this tenant (else
            ``EnrollmentNotFound``, as cancel() answers, so one tenant cannot probe
            another's ids).
        now: The moment to read it as of, timezone-aware; default the current UTC time.
            Items whose ttl is at or before ``now`` (a due event, an expired lock, a
            passed cancel window) are left out: DynamoDB deletes them up to days late.

    Raises:
        EnrollmentNotFound: No such enrollment, or ``tenant_id`` given and different.
        UnreadableItem: An item of the enrollment is not in a shape enrollkit wrote.
        InvalidInput: A bad id, a naive ``now``.
    """
    now = require_aware(now)
    enrollment_id = require_enrollment_id(enrollment_id)
    if tenant_id is not None:
        tenant_id = require_identifier("tenant_id", tenant_id)
    items = EnrollmentItems.of(enrollment_id, persistence_layer.query(enrollment_id))
    root = items.root
    if root is None or (tenant_id is not None and enrollment_layout.tenant_of(root) != tenant_id):
        raise EnrollmentNotFound(f"no enrollment {enrollment_id!r}")
    return items.record(now)


@dataclass(frozen=True)
class _Listing:
    """Which index serves a filter, and the partition to read."""

    index: GlobalIndex
    partition: str


def list_enrollments(
    *,
    persistence_layer: PersistenceLayer,
    tenant_id: str,
    user_id: str | None = None,
    course_id: str | None = None,
    status: EnrollmentStatus | str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[EnrollmentSummary]:
    """A tenant's enrollments, newest first, one page at a time: each page is ONE Query of
    a listing index (never a Scan), and never shows another tenant's enrollments.

    Args:
        persistence_layer: Where the enrollments live.
        tenant_id: Whose enrollments.
        user_id: Only this user's (not together with ``course_id``).
        course_id: Only this course's.
        status: Only enrollments in this status.
        limit: At most this many per page (1 to 1000).
        cursor: The ``cursor`` of the previous page, as it was returned.

    Returns:
        A :class:`Page` of :class:`EnrollmentSummary`; its ``cursor`` is ``None`` on the
        last page. Index reads are eventually consistent on DynamoDB: an enrollment made
        a moment ago may show up a moment later.

    Raises:
        InvalidInput: A bad id, status or limit, both ``user_id`` and ``course_id``, or a
            cursor this listing did not return (tampered, or another listing's).
        UnreadableItem: An enrollment in the index is not in a shape enrollkit wrote.
    """
    listing = _listing(tenant_id, user_id, course_id, status)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be an int from 1 to {MAX_PAGE_SIZE}, not {limit!r}")
    start_after = _decode_cursor(cursor, listing) if cursor is not None else None
    # One more than asked: if it comes, there is a next page; if not, this is the last
    # page (DynamoDB returns a LastEvaluatedKey whenever a page stops at its Limit, even
    # when nothing follows, so that alone would end every full listing on an empty page).
    page = persistence_layer.query_index(
        listing.index.name,
        listing.partition,
        descending=True,
        limit=limit + 1,
        start_after=start_after,
    )
    items = page.items[:limit]
    more = len(page.items) > limit or page.last_key is not None
    # A page cut short by DynamoDB's 1 MB limit carries a last_key with fewer items.
    next_cursor = None
    if more:
        last = items[-1] if items else page.last_key
        if last is not None:
            next_cursor = _encode_cursor(last, listing)
    return Page(
        items=tuple(enrollment_layout.parse_summary(item) for item in items), cursor=next_cursor
    )


def _listing(tenant_id: Any, user_id: Any, course_id: Any, status: Any) -> _Listing:
    tenant_id = require_identifier("tenant_id", tenant_id)
    if user_id is not None and course_id is not None:
        raise InvalidInput("list by user_id or by course_id, not both")
    if status is not None:
        try:
            status = EnrollmentStatus(status)
        except ValueError:
            names = ", ".join(s.value for s in EnrollmentStatus)
            raise InvalidInput(f"status must be one of {names}, not {status!r}") from None
    keys: tuple[str, ...] = (tenant_id,)
    if user_id is not None:
        keys += (require_identifier("user_id", user_id),)
        index = (
            enrollment_layout.USER_INDEX if status is None else enrollment_layout.USER_STATUS_INDEX
        )
    elif course_id is not None:
        keys += (require_identifier("course_id", course_id),)
        index = (
            enrollment_layout.COURSE_INDEX
            if status is None
            else enrollment_layout.COURSE_STATUS_INDEX
        )
    else:
        index = enrollment_layout.TENANT_INDEX if status is None else enrollment_layout.STATUS_INDEX
    if status is not None:
        keys += (status.value,)
    return _Listing(index=index, partition="#".join(keys))


def _encode_cursor(item: Mapping[str, Any], listing: _Listing) -> str:
    """The cursor after ``item``: the listing it belongs to and the item's place in the
    index (``<instant>#<enrollment id>``, which names its table key too), as URL-safe
    base64 of JSON."""
    position = str(item[listing.index.sort_key])
    payload = json.dumps([_CURSOR_VERSION, listing.index.name, listing.partition, position])
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any, listing: _Listing) -> dict[str, str]:
    """The ExclusiveStartKey a cursor names; InvalidInput for anything but a cursor of this
    very listing (same tenant, filters and index)."""
    refused = InvalidInput(
        "not a cursor of this listing: pass back the cursor a page of the same listing "
        "(same tenant and filters) returned",
        field="cursor",
    )
    if not isinstance(cursor, str) or not cursor or len(cursor) > 8192:
        raise refused
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise refused from None
    if (
        not isinstance(payload, list)
        or len(payload) != 4
        or payload[:3] != [_CURSOR_VERSION, listing.index.name, listing.partition]
        or not isinstance(payload[3], str)
    ):
        raise refused
    position: str = payload[3]
    enrollment_id = enrollment_layout.enrollment_at(position)
    if enrollment_id is None:
        raise refused
    return {
        PARTITION_KEY: enrollment_id,
        SORT_KEY: enrollment_layout.ROOT_SK,
        listing.index.partition_key: listing.partition,
        listing.index.sort_key: position,
    }
