"""``enrollkit demo``: a narrated end-to-end run of the whole lifecycle, one numbered step
per function:

1. An order with seats                  :func:`_order_with_seats`
2. Users enrolled, each taking a seat   :func:`_users_enrolled`
3. A duplicate refused                  :func:`_duplicate_refused`
4. A cancel that returns the seat       :func:`_cancel_returns_the_seat`
5. The schedule of reminders            :func:`_schedule_of_reminders`
6. First access                         :func:`_first_access`

On the embedded backend unless --endpoint-url is given. The operations and the backends
are imported inside the functions that use them.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from enrollkit.cli.connection import connect
from enrollkit.cli.errors import EXIT_OK, CommandError
from enrollkit.cli.render import format_span, format_when, render_table, short_slot
from enrollkit.errors import DeduplicationConflictError
from enrollkit.layout import lock, schedule
from enrollkit.models import (
    Author,
    CancelPolicy,
    Course,
    DeduplicationWindow,
    Enrollment,
    SeatStatus,
    Tenant,
    User,
    Vacancy,
)

if TYPE_CHECKING:
    from enrollkit.operations.seats import SeatLedger
    from enrollkit.persistence.base import BasePersistence


class _Narrator:
    """Numbered headings, indented lines, and tables under them."""

    def __init__(self) -> None:
        self.step = 0

    def heading(self, text: str) -> None:
        self.step += 1
        print(f"\n{self.step}. {text}")

    @staticmethod
    def say(*lines: str) -> None:
        for line in lines:
            print(f"   {line}" if line else "")

    @staticmethod
    def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        print()
        print(render_table(headers, rows, indent=3))


@dataclass
class _Run:
    """What every step works with: the backend, the clock, and the cast of the story.

    ``tag`` ends every id of this run: empty in memory, a few random characters on
    DynamoDB, whose tables may hold earlier runs.
    """

    store: BasePersistence
    now: datetime
    tag: str
    say: _Narrator = field(default_factory=_Narrator)
    tenant: Tenant = field(init=False)
    course: Course = field(init=False)
    order_id: str = field(init=False)
    window: DeduplicationWindow = field(init=False)
    policy: CancelPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.tenant = Tenant(id=f"acme{self.tag}", name="Acme Training")
        self.course = Course(
            id=f"nr-10{self.tag}", name="NR-10 Electrical Safety", access_period=90
        )
        self.order_id = f"order-1001{self.tag}"
        self.window = DeduplicationWindow(offset_days=10)
        self.policy = CancelPolicy(days=7)


def cmd_demo(args: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    store, tag = _open_store(args)
    print("Each write below is ONE DynamoDB transaction (TransactWriteItems).")
    print(f"Now: {format_when(now)}")
    run = _Run(store=store, now=now, tag=tag)

    seats = _order_with_seats(run)
    ana, bruno = _users_enrolled(run, seats)
    _duplicate_refused(run, ana, seats[2])
    _cancel_returns_the_seat(run, seats, ana, bruno)
    _schedule_of_reminders(run, ana, bruno)
    _first_access(run, ana)

    print()
    _sign_off(args, store, ana)
    return EXIT_OK


def _open_store(args: argparse.Namespace) -> tuple[BasePersistence, str]:
    """The backend to run on, announced; and the tag that ends this run's ids."""
    from enrollkit import InMemoryPersistence

    if args.endpoint_url is None:
        memory = InMemoryPersistence(args.table_name, args.order_table_name)
        print("enrollkit demo: a narrated run on the embedded backend (in memory, no AWS).")
        return memory, ""
    store = connect(args)
    store.create_tables()
    print(f"enrollkit demo: a narrated run on DynamoDB at {args.endpoint_url}.")
    # The tables may hold earlier runs: this run's ids carry a tag of their own.
    tag = "-" + uuid.uuid4().hex[:4]
    print(
        f"Tables {store.table_name!r} and {store.order_table_name!r} are ready; "
        f"this run's ids end in {tag!r}."
    )
    return store, tag


def _order_with_seats(run: _Run) -> list[Vacancy]:
    """1. The tenant's order, and three seats of the course added to it."""
    from enrollkit import add_vacancies, create_order

    run.say.heading("An order with seats")
    create_order(run.order_id, org_id=run.tenant.id, persistence_layer=run.store, now=run.now)
    seats = add_vacancies(
        org_id=run.tenant.id,
        order_id=run.order_id,
        course=run.course,
        quantity=3,
        persistence_layer=run.store,
        now=run.now,
    )
    run.say.say(
        f"{run.tenant.name} bought order {run.order_id}: 3 seats of {run.course.name!r}",
        f"({run.course.access_period} days of access).",
        f"create_order({run.order_id!r}, org_id={run.tenant.id!r})",
        f"add_vacancies(org_id={run.tenant.id!r}, order_id={run.order_id!r}, course=..., "
        "quantity=3)",
    )
    run.say.table(
        ("seat", "slot id", "status"),
        [(n, seat.slot_id, SeatStatus.AVAILABLE.value) for n, seat in enumerate(seats, 1)],
    )
    return seats


def _users_enrolled(run: _Run, seats: Sequence[Vacancy]) -> tuple[Enrollment, Enrollment]:
    """2. Ana and Bruno enrolled, each with a seat of the order."""
    from enrollkit import enroll

    run.say.heading("Users enrolled, each taking a seat")
    run.say.say(
        "enroll(enrollment, tenant=..., vacancy=seat,",
        f"       deduplication_window=DeduplicationWindow(offset_days={run.window.offset_days}),",
        f"       cancel_policy=CancelPolicy(days={run.policy.days}))",
    )
    people = [
        User(id=f"ana{run.tag}", name="Ana Souza", email="ana@example.com"),
        User(id=f"bruno{run.tag}", name="Bruno Lima", email="bruno@example.com"),
    ]
    enrollments: list[Enrollment] = []
    rows = []
    for user, seat in zip(people, seats, strict=False):
        enrollment = Enrollment(user=user, course=run.course)
        outcome = enroll(
            enrollment,
            tenant=run.tenant,
            persistence_layer=run.store,
            vacancy=seat,
            deduplication_window=run.window,
            cancel_policy=run.policy,
            now=run.now,
        )
        enrollments.append(enrollment)
        rows.append((user.name, enrollment.id, outcome.value, short_slot(seat.slot_id)))
    run.say.table(("user", "enrollment id", "outcome", "seat"), rows)
    ana, bruno = enrollments
    return ana, bruno


def _duplicate_refused(run: _Run, ana: Enrollment, third_seat: Vacancy) -> None:
    """3. Ana again, in the same course: the (user, course) lock refuses the transaction."""
    from enrollkit import enroll

    run.say.heading("A duplicate refused")
    run.say.say(
        f"Enroll {ana.user.name} in {run.course.name} again, with the third seat:",
    )
    try:
        enroll(
            Enrollment(user=ana.user, course=run.course),
            tenant=run.tenant,
            persistence_layer=run.store,
            vacancy=third_seat,
            deduplication_window=run.window,
            now=run.now,
        )
    except DeduplicationConflictError as refused:
        held = refused.failed_item or {}
        until = lock.held_until(held)
        run.say.say(
            "refused: DeduplicationConflictError",
            f"  {refused}",
            f"The (user, course) lock belongs to enrollment {lock.holder_enrollment(held)}",
            f"until {format_when(until) if until else '?'} "
            f"(access period {run.course.access_period} days - window offset "
            f"{run.window.offset_days} days).",
            "Nothing of that transaction was written: the third seat is still available.",
        )
    else:  # pragma: no cover - would be a bug in enroll()
        raise CommandError("the duplicate enrollment was accepted: this is a bug")


def _cancel_returns_the_seat(
    run: _Run, seats: Sequence[Vacancy], ana: Enrollment, bruno: Enrollment
) -> None:
    """4. Bruno's enrollment canceled: its seat goes back to the order; the seat ledger."""
    from enrollkit import cancel, seat_ledger

    run.say.heading("A cancel that returns the seat")
    result = cancel(
        bruno.id,
        author=Author(id="admin", name="Demo Admin"),
        persistence_layer=run.store,
        now=run.now + timedelta(hours=2),
    )
    returned = result.returned_seat
    run.say.say(
        f"cancel({bruno.id!r}, author=...)",
        f"two hours later, inside the {run.policy.days}-day cancel policy: "
        f"{bruno.user.name}'s enrollment is",
        "CANCELED, its schedule and lock are deleted, and its seat goes back to the order",
        f"as a new slot, {short_slot(returned.slot_id)}." if returned else "",
    )
    ledger = seat_ledger(order_id=run.order_id, persistence_layer=run.store)
    holder_names = {e.id: e.user.name for e in (ana, bruno)}
    run.say.say("", f"The seat ledger of {run.order_id} (seat_ledger()):")
    run.say.table(("slot", "status", "note"), _ledger_rows(ledger, holder_names, returned))
    counts = ledger.counts().get(run.course.id)
    available = counts[SeatStatus.AVAILABLE] if counts else 0
    used = counts[SeatStatus.USED] if counts else 0
    run.say.say(
        "",
        f"Seats: {len(seats)} added = {available} available + {used} held by active enrollments.",
    )


def _ledger_rows(
    ledger: SeatLedger, holder_names: dict[str, str], returned: Vacancy | None
) -> list[tuple[str, str, str]]:
    """The seat ledger, held seats first: slot, status, and whose seat it is or was."""
    rows = []
    for record in sorted(
        ledger.seats,
        key=lambda r: (r.status is not SeatStatus.USED, r.status.value, r.vacancy.slot_id),
    ):
        who = holder_names.get(record.enrollment_id or "", record.enrollment_id or "")
        note = {
            SeatStatus.USED: f"held by {who}",
            SeatStatus.ROLLBACK: f"was {who}'s; returned by cancel",
            SeatStatus.AVAILABLE: (
                "the seat returned"
                if returned and record.vacancy.slot_id == returned.slot_id
                else "never used"
            ),
        }[record.status]
        rows.append((short_slot(record.vacancy.slot_id), record.status.value, note))
    return rows


def _schedule_of_reminders(run: _Run, ana: Enrollment, bruno: Enrollment) -> None:
    """5. Ana's lifecycle events, due at their TTL; Bruno's, deleted by the cancel."""
    run.say.heading("The schedule of reminders")
    run.say.say(
        f"{ana.user.name}'s enrollment scheduled these lifecycle events: one item each, due at",
        "its TTL. `enrollkit deliver` (the sweeper, every minute) delivers each on time and",
        "exactly once; the TTL stream consumer is the safety net.",
    )
    _schedule_table(run, ana)
    left = run.store.query(bruno.id, sk_prefix=schedule.PREFIX)
    run.say.say(
        "",
        f"{bruno.user.name}'s schedule: {len(left)} items left (cancel deleted them all).",
        "DynamoDB deletes expired items up to days late: enrollkit treats an item whose",
        "ttl has passed as gone (an expired lock never blocks a new enrollment).",
    )


def _first_access(run: _Run, ana: Enrollment) -> None:
    """6. Ana opens the course: her enrollment is IN_PROGRESS, and her reminders follow."""
    from enrollkit import record_access

    run.say.heading("First access")
    result = record_access(
        ana.id,
        persistence_layer=run.store,
        tenant_id=run.tenant.id,
        now=run.now + timedelta(days=1),
    )
    run.say.say(
        f"{ana.user.name} opens the course a day later. record_access(), cheap and safe on",
        f"every page view, moves her enrollment to {result.status.value}, removes the no-access",
        "reminder, and schedules a no-activity one 7 days after her last access (each later",
        "access pushes it back).",
    )
    _schedule_table(run, ana)


def _schedule_table(run: _Run, enrollment: Enrollment) -> None:
    """The lifecycle events an enrollment has scheduled, soonest first."""
    events = [
        event
        for event in map(
            schedule.parse_schedule_item,
            run.store.query(enrollment.id, sk_prefix=schedule.PREFIX),
        )
        if event is not None
    ]
    run.say.table(
        ("event", "due", "after enrollment", "to"),
        [
            (
                event.event.name,
                format_when(event.due),
                format_span(event.due - run.now),
                event.email,
            )
            for event in sorted(events, key=lambda event: event.due)
        ],
    )


def _sign_off(args: argparse.Namespace, store: BasePersistence, ana: Enrollment) -> None:
    """What to run next: on DynamoDB, the `enrollkit show` command for Ana's enrollment."""
    if args.endpoint_url is None:
        print("Done. Everything above lived in memory and is gone now.")
        print("Run it against DynamoDB Local or a moto server: enrollkit demo --endpoint-url URL")
        return
    options = ""
    if store.table_name != "enrollments":
        options += f" --table-name {store.table_name}"
    if store.order_table_name != "orders":
        options += f" --order-table-name {store.order_table_name}"
    print("Done. Look at one enrollment's items:")
    print(f"  enrollkit show {ana.id} --endpoint-url {args.endpoint_url}{options}")
