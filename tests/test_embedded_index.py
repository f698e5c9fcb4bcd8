"""The embedded backend's index answers as a plain filter-and-sort would, whether its
partition is a small sorted list or a large SortedList, with the entries added since it
was last read held back or not (backend-specific: its storage)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollkit.persistence import embedded_index
from enrollkit.persistence.embedded_index import EmbeddedIndex
from enrollkit.persistence.indexes import GlobalIndex, SortKeyRange

SPEC = GlobalIndex("by_group", "grp", "rank")
# Few characters, including the lowest and the highest code point, so prefixes and bounds
# meet equal, longer and shorter keys.
TEXT = st.text(alphabet=["a", "b", "#", "\x00", "\U0010ffff"], max_size=3)
ITEMS = st.lists(st.tuples(st.integers(0, 30), TEXT), max_size=40)
RANGES = st.one_of(
    st.none(),
    st.builds(SortKeyRange, begins_with=TEXT),
    st.tuples(st.one_of(st.none(), TEXT), st.one_of(st.none(), TEXT)).map(
        lambda bounds: (
            SortKeyRange(at_least=min(bounds, key=str), at_most=max(bounds, key=str))
            if None not in bounds
            else SortKeyRange(at_least=bounds[0], at_most=bounds[1])
        )
    ),
)


LAYOUTS = ["list", "sorted-list", "sorted-list-holding-back-3", "sorted-list-holding-back-all"]


def use_layout(monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    """A partition's storage: a sorted list, or a SortedList from its first entry, which
    holds back the entries added, and those removed, since it was last read until 3 (or
    any number) of either."""
    large = layout != "list"
    monkeypatch.setattr(embedded_index, "_LARGE_PARTITION", 0 if large else 10_000)
    held_back = {"sorted-list": 1, "sorted-list-holding-back-3": 3}.get(layout, 10_000)
    monkeypatch.setattr(embedded_index, "_HELD_BACK", held_back)


def _pk(number: int) -> str:
    """A table key, some with U+0000 inside, at the start or at the end (an entry escapes
    it: the order must still be the keys' own)."""
    return ("i{}", "i\x00{}", "\x00{}\x00", "{}\U0010ffff")[number % 4].format(number)


def expected(
    items: dict[str, str], sort_range: SortKeyRange | None, descending: bool
) -> list[tuple[str, str, str]]:
    held = sorted((rank, pk, "0") for pk, rank in items.items())
    kept = [entry for entry in held if sort_range is None or sort_range.holds(entry[0])]
    return kept[::-1] if descending else kept


@pytest.mark.parametrize("layout", LAYOUTS)
# The monkeypatched threshold is the same for every example.
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    puts=ITEMS,
    removals=st.lists(st.integers(0, 30), max_size=10),
    sort_range=RANGES,
    descending=st.booleans(),
    limit=st.one_of(st.none(), st.integers(1, 5)),
)
def test_queries_match_a_plain_filter_and_sort(
    monkeypatch: pytest.MonkeyPatch,
    layout: str,
    puts: list[tuple[int, str]],
    removals: list[int],
    sort_range: SortKeyRange | None,
    descending: bool,
    limit: int | None,
) -> None:
    use_layout(monkeypatch, layout)
    index = EmbeddedIndex(SPEC)
    items: dict[str, str] = {}
    for number, rank in puts:
        pk = _pk(number)
        if pk in items:
            index.remove({"id": pk, "sk": "0", "grp": "g", "rank": items[pk]})
        index.add({"id": pk, "sk": "0", "grp": "g", "rank": rank})
        items[pk] = rank
    for number in removals:
        pk = _pk(number)
        if pk in items:
            index.remove({"id": pk, "sk": "0", "grp": "g", "rank": items.pop(pk)})
    want = expected(items, sort_range, descending)
    # Page through: each page starts after the last entry of the one before.
    got: list[tuple[str, str]] = []
    start_after = None
    for _ in range(len(want) + 2):
        keys, last = index.query(
            "g",
            sort_range=sort_range,
            descending=descending,
            limit=limit,
            start_after=start_after,
        )
        got.extend(keys)
        if last is None:
            break
        assert limit is not None and len(keys) == limit
        start_after = index.last_key(last, "g")
    assert got == [(pk, sk) for _, pk, sk in want]


TABLE_INDEXES = (SPEC, GlobalIndex("by_kind", "kind", "rank"))
WRITES = st.lists(
    st.tuples(
        st.sampled_from(["put", "set", "remove", "delete"]),
        st.integers(0, 5),  # which item
        st.sampled_from(["grp", "kind", "rank", "other"]),  # the attribute set or removed
        st.sampled_from(["a", "b"]),  # its value
    ),
    max_size=30,
)


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(writes=WRITES)
def test_the_backends_indexes_follow_every_write(
    monkeypatch: pytest.MonkeyPatch, layout: str, writes: list[tuple[str, int, str, str]]
) -> None:
    """Through the backend's writes (whole puts, updates that change an index key, keep it,
    or drop it, deletes), each index holds exactly the items that have both its keys."""
    from enrollkit import InMemoryPersistence, KeyPair
    from enrollkit.persistence.indexes import TableIndexes

    use_layout(monkeypatch, layout)
    store = InMemoryPersistence(indexes=TableIndexes(enrollments=TABLE_INDEXES))
    for kind, number, attribute, value in writes:
        key = KeyPair(f"i{number}", "0")
        with store.transact_writer() as tx:
            if kind == "put":
                tx.put(item={**key.as_key(), "grp": value, "rank": value, attribute: value})
            elif kind == "set":
                tx.update(key=key, set={attribute: value})
            elif kind == "remove":
                tx.update(key=key, set={"note": value}, remove=[attribute])
            else:
                tx.delete(key=key)
    items = store.scan()
    for spec in TABLE_INDEXES:
        for partition in ("a", "b"):
            held = sorted(
                (item[spec.sort_key], item["id"])
                for item in items
                if item.get(spec.partition_key) == partition and spec.sort_key in item
            )
            page = store.query_index(spec.name, partition)
            assert [(item[spec.sort_key], item["id"]) for item in page.items] == held


# Mostly increasing sort keys (as a service's clock gives them: the append fast path), with
# ties and some that go back (the insort path), and some removals.
RISING = st.lists(st.tuples(st.integers(-2, 12), st.integers(0, 40), st.booleans()), max_size=60)


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=RISING)
def test_a_partition_is_sorted_whether_entries_come_last_or_not(
    monkeypatch: pytest.MonkeyPatch, layout: str, steps: list[tuple[int, int, bool]]
) -> None:
    """add() appends an entry that sorts after the last one and inserts any other: the
    partition holds exactly the sorted entries either way."""
    use_layout(monkeypatch, layout)
    index = EmbeddedIndex(SPEC)
    clock = 0
    held: dict[str, str] = {}
    for step, (advance, number, drop) in enumerate(steps):
        clock += advance
        pk = f"i{number:02d}"
        if pk in held:
            index.remove({"id": pk, "sk": "0", "grp": "g", "rank": held.pop(pk)})
        if not drop:
            rank = f"{clock:04d}" if step % 7 else f"{clock:04d}#{number}"
            index.add({"id": pk, "sk": "0", "grp": "g", "rank": rank})
            held[pk] = rank
    entries = [embedded_index.parts_of(entry) for entry in index.entries("g")]
    assert entries == sorted((rank, pk, "0") for pk, rank in held.items())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=2, max_size=2))
def test_entries_compare_as_their_parts_and_read_back(pair: list[tuple[str, str, str]]) -> None:
    """An entry is one string that orders as its (sort key, pk, sk) tuple does, U+0000 and
    U+10FFFF inside the parts included, and gives its parts back."""
    first, second = pair
    a, b = embedded_index.entry_of(*first), embedded_index.entry_of(*second)
    assert (a < b, a == b) == (first < second, first == second)
    assert embedded_index.parts_of(a) == first
