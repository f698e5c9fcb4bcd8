"""Delivery benchmark: N due lifecycle events delivered by the sweeper on the embedded
backend, with a fake clock. Prints figures, never pass/fail (the machine is shared).

    python -m benchmarks.delivery               # 100,000 events
    python -m benchmarks.delivery --events 20000

The events fall due evenly over a window (default two hours); the sweeper runs every minute
of the fake clock, as the template's schedule runs it. Reported: delivery throughput
(events/s of wall-clock time, claim transaction and handler included), index Queries per
sweep, and lateness (sweep time minus due time, in fake-clock seconds: the guarantee is
under one interval).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timedelta, timezone

from enrollkit import (
    Course,
    DueEvent,
    Enrollment,
    InMemoryPersistence,
    LifecycleEvent,
    SweepSettings,
    Tenant,
    User,
    deliver_due,
)
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.layout import schedule

START = datetime(2036, 1, 5, 9, 0, tzinfo=timezone.utc)
TENANT = Tenant(id="acme", name="Acme Training")
COURSE = Course(id="nr-10", name="NR-10 Electrical Safety", access_period=90)
EVENT = LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS


def seed(store: InMemoryPersistence, events: int, window: timedelta) -> None:
    """One enrollment per event, its reminder due at an even spacing over ``window``
    (written directly with the layout's builders: enroll() is measured elsewhere)."""
    for n in range(events):
        enrollment = Enrollment(
            id=f"bench-{n}",
            user=User(id=f"user-{n}", name=f"User {n}", email=f"user{n}@example.com"),
            course=COURSE,
        )
        store.put_item(enrollment_layout.root_item(enrollment, TENANT, START))
        due = START + window * (n + 1) / events
        store.put_item(
            schedule.scheduled_item(
                enrollment.id, schedule.Recipient.of(enrollment), EVENT, due, START
            )
        )


def bench_delivery(events: int = 100_000, window: timedelta = timedelta(hours=2)) -> None:
    store = InMemoryPersistence()
    began = time.perf_counter()
    seed(store, events, window)
    print(f"seeded {events:,} due events in {time.perf_counter() - began:.1f} s")

    lateness: list[float] = []
    clock = [START]

    def handler(event: DueEvent) -> None:
        lateness.append((clock[0] - event.due).total_seconds())

    settings = SweepSettings(first_run_lookback=timedelta(days=1))
    queries: list[int] = []
    delivered = 0
    elapsed = 0.0
    interval = timedelta(minutes=1)
    while clock[0] <= START + window + interval:
        began = time.perf_counter()
        report = deliver_due(
            persistence_layer=store, handlers={EVENT: handler}, now=clock[0], settings=settings
        )
        elapsed += time.perf_counter() - began
        queries.append(report.queries)
        delivered += report.delivered
        clock[0] += interval
    assert delivered == events == len(lateness), (delivered, events, len(lateness))
    lateness.sort()
    p99 = lateness[min(len(lateness) - 1, int(0.99 * len(lateness)))]
    print(f"delivered {delivered:,} events in {elapsed:.1f} s: {delivered / elapsed:,.0f} events/s")
    print(
        f"{len(queries)} sweeps, index Queries per sweep: median {statistics.median(queries):.0f}, "
        f"max {max(queries)} (16 shards; pages of 500)"
    )
    print(f"lateness (fake clock, sweep every 60 s): max {lateness[-1]:.0f} s, p99 {p99:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--window-minutes", type=int, default=120)
    args = parser.parse_args()
    bench_delivery(args.events, timedelta(minutes=args.window_minutes))


if __name__ == "__main__":
    main()
