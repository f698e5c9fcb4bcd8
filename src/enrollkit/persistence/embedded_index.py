"""The embedded backend's global secondary index: sorted (index sort key, table key)
entries per index partition, kept in step with every write of the table."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

from enrollkit.layout.table import PARTITION_KEY, SORT_KEY
from enrollkit.persistence.indexes import GlobalIndex, SortKeyRange

# (index sort key, table partition key, table sort key): the order DynamoDB returns them in.
Entry = tuple[str, str, str]


class EmbeddedIndex:
    """One index of one table. Stored items were checked when written, so reading their
    index keys never raises here."""

    def __init__(self, spec: GlobalIndex) -> None:
        self.spec = spec
        self._partitions: dict[str, list[Entry]] = {}

    def add(self, item: Mapping[str, Any]) -> None:
        keys = self.spec.keys_of(item)
        if keys is not None:
            bisect.insort(self._partitions.setdefault(keys[0], []), self._entry(keys[1], item))

    def remove(self, item: Mapping[str, Any]) -> None:
        keys = self.spec.keys_of(item)
        if keys is None:
            return
        entries = self._partitions[keys[0]]
        entry = self._entry(keys[1], item)
        del entries[bisect.bisect_left(entries, entry)]
        if not entries:
            del self._partitions[keys[0]]

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
        entries = self._partitions.get(partition_value, [])
        low, high = _bounds(entries, sort_range or SortKeyRange())
        if start_after is not None:
            start = self._entry(str(start_after[self.spec.sort_key]), start_after)
            if descending:
                high = min(high, bisect.bisect_left(entries, start))
            else:
                low = max(low, bisect.bisect_right(entries, start))
        selected = entries[low:high]
        if descending:
            selected.reverse()
        last = None
        if limit is not None and len(selected) >= limit:
            selected = selected[:limit]
            last = selected[-1]
        return [(pk, sk) for _, pk, sk in selected], last

    def last_key(self, entry: Entry, partition_value: str) -> dict[str, Any]:
        """DynamoDB's LastEvaluatedKey of an index Query: table key and index key."""
        sort_value, pk, sk = entry
        return {
            PARTITION_KEY: pk,
            SORT_KEY: sk,
            self.spec.partition_key: partition_value,
            self.spec.sort_key: sort_value,
        }

    @staticmethod
    def _entry(sort_value: str, item: Mapping[str, Any]) -> Entry:
        return (sort_value, str(item[PARTITION_KEY]), str(item[SORT_KEY]))


def _bounds(entries: list[Entry], sort_range: SortKeyRange) -> tuple[int, int]:
    """The slice of ``entries`` whose sort key satisfies ``sort_range``."""
    if sort_range.begins_with is not None:
        prefix = sort_range.begins_with
        # Sorted by sort key, the entries are sorted by its first len(prefix) characters too.
        return (
            bisect.bisect_left(entries, prefix, key=lambda e: e[0][: len(prefix)]),
            bisect.bisect_right(entries, prefix, key=lambda e: e[0][: len(prefix)]),
        )
    low = (
        0
        if sort_range.at_least is None
        else bisect.bisect_left(entries, sort_range.at_least, key=lambda e: e[0])
    )
    high = (
        len(entries)
        if sort_range.at_most is None
        else bisect.bisect_right(entries, sort_range.at_most, key=lambda e: e[0])
    )
    return low, high
