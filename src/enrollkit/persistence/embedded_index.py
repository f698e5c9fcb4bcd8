"""The embedded backend's global secondary index: sorted (index sort key, table key)
entries per index partition, kept in step with every write of the table."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, MutableSequence
from typing import Any

from enrollkit.layout.table import PARTITION_KEY, SORT_KEY
from enrollkit.persistence.indexes import GlobalIndex, SortKeyRange

# An entry is (index sort key, table partition key, table sort key), the order DynamoDB
# returns items in, as one string: each part with U+0000 escaped as U+0000 U+0001, the
# parts joined by U+0000 U+0000. The separator sorts below every character of a part, so
# entries compare exactly as the tuples would. One string is compared without following a
# tuple's pointers (an insert into a partition of 10^5 entries missed the cache half as
# often), and the garbage collector does not track it.
Entry = str
_SEPARATOR = "\x00\x00"
_NUL = "\x00"
_ESCAPED_NUL = "\x00\x01"
# An index partition is a sorted list while small; past this many entries a SortedList,
# whose inserts and deletes do not move every entry (a tenant's partition holds all of
# its enrollments: a plain list made each write cost in proportion to the tenant).
_LARGE_PARTITION = 1_000
# A SortedList partition keeps the entries added, and those removed, since it was last read
# apart, until there are this many of either or it is read, then adds (and removes) them in
# order. An insert at random into 10^5 entries misses the cache all along its bisection;
# inserts in order follow one another's path (at 10^5 stored enrollments, where four of an
# enroll's index entries go into partitions that large, an enroll cost 1.22x what it cost
# at 10^3; with 64 held back, 1.16x). Removals likewise: a cancel takes five entries out
# of partitions that large (its status's two, its three reminders').
_HELD_BACK = 64


def entry_of(sort_value: str, pk: str, sk: str) -> Entry:
    if _NUL in sort_value or _NUL in pk or _NUL in sk:
        return _SEPARATOR.join((_escaped(sort_value), _escaped(pk), _escaped(sk)))
    return f"{sort_value}{_SEPARATOR}{pk}{_SEPARATOR}{sk}"  # (most: nothing to escape)


def parts_of(entry: Entry) -> tuple[str, str, str]:
    """The (index sort key, table partition key, table sort key) of an entry."""
    # No escaped part holds the separator, so the leftmost matches are the separators.
    sort_value, pk, sk = entry.split(_SEPARATOR)
    return _unescaped(sort_value), _unescaped(pk), _unescaped(sk)


def _table_key(entry: Entry) -> tuple[str, str]:
    _, pk, sk = parts_of(entry)
    return pk, sk


def _escaped(text: str) -> str:
    return text.replace(_NUL, _ESCAPED_NUL) if _NUL in text else text


def _unescaped(text: str) -> str:
    return text.replace(_ESCAPED_NUL, _NUL) if _NUL in text else text


class EmbeddedIndex:
    """One index of one table. Stored items were checked when written, so reading their
    index keys never raises here."""

    def __init__(self, spec: GlobalIndex) -> None:
        self.spec = spec
        self._key_attributes = (spec.partition_key, spec.sort_key)
        self._partitions: dict[str, MutableSequence[Entry]] = {}
        # Per SortedList partition, the entries added since it was last read (unsorted),
        # and those removed since then, added or not (unsorted).
        self._held_back: dict[str, list[Entry]] = {}
        self._held_out: dict[str, list[Entry]] = {}

    def add(self, item: Mapping[str, Any], made: dict[str, Entry] | None = None) -> None:
        """Add ``item``'s entry, if it is in this index. ``made``: the entries made for
        ``item`` so far, by sort key attribute; indexes sorted by the same attribute share
        one entry text (a root item's six listing indexes: one string, not six)."""
        # (spec.keys_of's test, without its call: every enroll adds nine entries. A stored
        # item's index key values are strings: the write was refused otherwise.)
        partition_attribute, sort_attribute = self._key_attributes
        partition_value, sort_value = item.get(partition_attribute), item.get(sort_attribute)
        if partition_value is None or sort_value is None:
            return  # sparse: not in this index
        entry = None if made is None else made.get(sort_attribute)
        if entry is None:
            # A stored item's table keys are strings already (checked when it was written).
            entry = entry_of(sort_value, item[PARTITION_KEY], item[SORT_KEY])
            if made is not None:
                made[sort_attribute] = entry
        entries = self._partitions.get(partition_value)
        if entries is None:
            self._partitions[partition_value] = [entry]
        elif type(entries) is list:
            # Services write with an increasing clock, so an entry often sorts last: one
            # comparison then, not a bisection (a SortedList's add has that path itself).
            if entries[-1] < entry:
                entries.append(entry)
            else:
                bisect.insort(entries, entry)
            if len(entries) > _LARGE_PARTITION:
                from sortedcontainers import SortedList  # type: ignore[import-untyped]

                self._partitions[partition_value] = SortedList(entries)
        else:  # a SortedList: held back, then added in order
            self._hold(self._held_back, partition_value, entry)

    def remove(self, item: Mapping[str, Any]) -> None:
        keys = self.spec.keys_of(item)
        if keys is None:
            return
        partition_value, sort_value = keys
        entries = self._partitions[partition_value]
        entry = entry_of(sort_value, item[PARTITION_KEY], item[SORT_KEY])
        if type(entries) is list:
            del entries[bisect.bisect_left(entries, entry)]
            if not entries:
                del self._partitions[partition_value]
            return
        # A SortedList: held out, then removed in order, after the held-back entries are
        # added (an entry removed is in one or the other).
        self._hold(self._held_out, partition_value, entry)

    def _hold(self, held: dict[str, list[Entry]], partition_value: str, entry: Entry) -> None:
        """Keep ``entry`` apart in ``held`` (the entries added, or removed, since the
        partition was last read) until the partition is read or there are _HELD_BACK."""
        waiting = held.get(partition_value)
        if waiting is None:
            held[partition_value] = [entry]
        else:
            waiting.append(entry)
            if len(waiting) >= _HELD_BACK:
                self.entries(partition_value)

    def entries(self, partition_value: str) -> MutableSequence[Entry]:
        """A partition's entries, in order (every change so far: the entries held back
        are added now, then those held out removed)."""
        entries = self._partitions.get(partition_value)
        if entries is None:
            return []
        held_back = self._held_back.pop(partition_value, None)
        if held_back:
            held_back.sort()
            entries.update(held_back)  # type: ignore[attr-defined]  # (in order: a SortedList)
        held_out = self._held_out.pop(partition_value, None)
        if held_out:
            held_out.sort()
            for entry in held_out:  # (by value: a positional delete rebuilds its index)
                entries.remove(entry)
            if not entries:
                del self._partitions[partition_value]
        return entries

    def query(
        self,
        partition_value: str,
        *,
        sort_range: SortKeyRange | None,
        descending: bool,
        limit: int | None,
        start_after: Mapping[str, Any] | None,
    ) -> tuple[list[tuple[str, str]], Entry | None]:
        """Table keys of the matching items, in order, and the entry a limited page ended
        on (``None`` when it did not stop at ``limit``)."""
        entries = self.entries(partition_value)
        low, high = _bounds(entries, sort_range or SortKeyRange())
        if start_after is not None:
            start = self._entry(str(start_after[self.spec.sort_key]), start_after)
            if descending:
                high = min(high, _position(entries, start))
            else:
                low = max(low, _position(entries, start, after=True))
        stops = limit is not None and high - low >= limit
        if limit is not None and stops:  # copy only the page, not the whole range
            low, high = (high - limit, high) if descending else (low, low + limit)
        selected = list(entries[low:high])
        if descending:
            selected.reverse()
        last = selected[-1] if stops else None
        return [_table_key(entry) for entry in selected], last

    def last_key(self, entry: Entry, partition_value: str) -> dict[str, Any]:
        """DynamoDB's LastEvaluatedKey of an index Query: table key and index key."""
        sort_value, pk, sk = parts_of(entry)
        return {
            PARTITION_KEY: pk,
            SORT_KEY: sk,
            self.spec.partition_key: partition_value,
            self.spec.sort_key: sort_value,
        }

    @staticmethod
    def _entry(sort_value: str, item: Mapping[str, Any]) -> Entry:
        return entry_of(sort_value, str(item[PARTITION_KEY]), str(item[SORT_KEY]))


def _position(entries: MutableSequence[Entry], probe: str, after: bool = False) -> int:
    """Where ``probe`` goes in ``entries`` (before equal entries, or ``after`` them): a
    partition's own bisection (a SortedList's is not stdlib's over its positions)."""
    if type(entries) is list:
        return (bisect.bisect_right if after else bisect.bisect_left)(entries, probe)
    sorted_list: Any = entries
    return int(sorted_list.bisect_right(probe) if after else sorted_list.bisect_left(probe))


def _bounds(entries: MutableSequence[Entry], sort_range: SortKeyRange) -> tuple[int, int]:
    """The slice of ``entries`` whose sort key satisfies ``sort_range``. A sort key's
    escaped text sorts before every entry of that sort key (they go on with the separator),
    and followed by U+0000 U+0001 after every one of them and before any greater sort key."""
    if sort_range.begins_with is not None:
        prefix = _escaped(sort_range.begins_with)
        if not prefix:
            return 0, len(entries)
        # Every entry whose sort key starts with the prefix starts with its escaped text,
        # which is below it with its last character bumped by one; every greater one is
        # at or above that.
        last = ord(prefix[-1])
        if last == 0x10FFFF:  # no next character: compare the prefixes themselves
            return (
                bisect.bisect_left(entries, prefix, key=lambda e: e[: len(prefix)]),
                bisect.bisect_right(entries, prefix, key=lambda e: e[: len(prefix)]),
            )
        return _position(entries, prefix), _position(entries, prefix[:-1] + chr(last + 1))
    low = 0 if sort_range.at_least is None else _position(entries, _escaped(sort_range.at_least))
    high = (
        len(entries)
        if sort_range.at_most is None
        else _position(entries, _escaped(sort_range.at_most) + _ESCAPED_NUL)
    )
    return low, high
