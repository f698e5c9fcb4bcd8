"""Racing threads for the tests: released together by a barrier, results in order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from enrollkit.persistence.base import BasePersistence

T = TypeVar("T")


def race_width(persistence: BasePersistence) -> int:
    """Threads per race: 16 on the embedded backend and on DynamoDB Local (a threaded
    server), 8 on moto (served one request at a time)."""
    from tests.conftest import engine_of

    while hasattr(persistence, "inner"):  # a counting or fault-injecting wrapper
        persistence = persistence.inner
    return 8 if engine_of(persistence) == "moto" else 16


def race(width: int, action: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``action(0..width-1)`` on ``width`` threads released together by a barrier.

    Returns each thread's result, or the exception it raised, in thread order.
    """
    barrier = threading.Barrier(width)
    results: list[T | BaseException | None] = [None] * width

    def run(index: int) -> None:
        barrier.wait(timeout=60)
        try:
            results[index] = action(index)
        except BaseException as error:  # reported to the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(width)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a racing thread did not finish"
    return results  # type: ignore[return-value]
