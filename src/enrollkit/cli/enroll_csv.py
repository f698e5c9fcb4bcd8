"""``enrollkit enroll-csv FILE --tenant T --course C [--order O]``: enroll the users of a
CSV file (columns ``id``, ``name``, ``email``), with a progress bar and a result file.

- The whole file is checked first (columns, every row a valid user, no id twice): a
  malformed file is refused with its line numbers, before anything is written.
- Enrollment ids derive from the tenant (or the order), the course and the user: running
  the same file again, after a crash or an interruption, finds what was done
  (``ALREADY_ENROLLED``), takes no second seat, and does the rest.
- Each row's outcome goes to the result file (row, user id, outcome, enrollment id,
  detail) as soon as it is known, so the file shows how far a run got.
"""

from __future__ import annotations

import argparse
import csv
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from enrollkit.cli.connection import connect, require_tables
from enrollkit.cli.errors import EXIT_ERROR, EXIT_OK, CommandError
from enrollkit.errors import (
    DeduplicationConflictError,
    EnrollkitError,
    InvalidInput,
    PersistenceError,
    shorten,
)
from enrollkit.models import (
    CancelPolicy,
    Course,
    DeduplicationWindow,
    Enrollment,
    EnrollOutcome,
    Tenant,
    User,
)

if TYPE_CHECKING:
    from enrollkit.persistence.base import PersistenceLayer

COLUMNS = ("id", "name", "email")
RESULT_COLUMNS = ("row", "user_id", "outcome", "enrollment_id", "detail")
# Rows enrolled per enroll_many() call: the result file is written after each.
CHUNK_SIZE = 25
# At most this many problems of a malformed file are listed.
MAX_PROBLEMS_SHOWN = 10
_NAMESPACE = uuid.UUID("5d0c3a56-2f7e-4b9e-9a51-7f4c2f0e8d11")


@dataclass(frozen=True)
class CsvUser:
    """One row of the file: its line number and the user it names."""

    line: int
    user: User


@dataclass(frozen=True)
class RowResult:
    """What happened to one row; a line of the result file."""

    line: int
    user_id: str
    outcome: str
    enrollment_id: str | None
    detail: str = ""


@dataclass(frozen=True)
class BulkPlan:
    """What every row is enrolled into, and how."""

    tenant: Tenant
    course: Course
    order_id: str | None = None
    deduplication_window: DeduplicationWindow | None = None
    cancel_policy: CancelPolicy | None = None


# -- reading the file ---------------------------------------------------------------------


def read_users(path: Path) -> list[CsvUser]:
    """Every row of the file as a user; :class:`CommandError` listing each problem with its
    line number when anything is wrong."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return _parse(stream, path.name)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise CommandError(f"{path.name} is not UTF-8 text (byte {error.start})") from None
    except csv.Error as error:
        raise CommandError(f"{path.name} is not a valid CSV file: {error}") from None


def _parse(stream: TextIO, name: str) -> list[CsvUser]:
    reader = csv.DictReader(stream)
    header = [(column or "").strip().lower() for column in reader.fieldnames or []]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        columns = ", ".join(COLUMNS)
        raise CommandError(
            f"{name}: the header must name the columns {columns}; "
            f"missing: {', '.join(missing)} (line 1)"
        )
    reader.fieldnames = header
    users: list[CsvUser] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        try:
            user = User.from_untrusted({column: row.get(column) for column in COLUMNS})
        except InvalidInput as error:
            problems.append(f"line {line}: {error}")
            continue
        if user.id in first_line:
            problems.append(
                f"line {line}: user id {shorten(user.id)} is also on line {first_line[user.id]}"
            )
            continue
        first_line[user.id] = line
        users.append(CsvUser(line, user))
    if problems:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = len(problems) - MAX_PROBLEMS_SHOWN
        raise CommandError(
            f"{name} has {len(problems)} bad row{'s' if len(problems) > 1 else ''}, "
            f"nothing was enrolled: {shown}" + (f"; and {more} more" if more > 0 else "")
        )
    if not users:
        raise CommandError(f"{name} has no rows under its header")
    return users


# -- enrolling ----------------------------------------------------------------------------


def enrollment_id_for(plan: BulkPlan, user_id: str) -> str:
    """The same id on every run for one user of a plan without seats: a re-run finds its
    enrollments. (With an order, enroll_many() derives the ids.)"""
    return str(uuid.uuid5(_NAMESPACE, f"{plan.tenant.id}#{plan.course.id}#{user_id}"))


def enroll_rows(
    rows: Sequence[CsvUser],
    plan: BulkPlan,
    *,
    persistence_layer: PersistenceLayer,
    now: datetime,
    on_results: Callable[[Sequence[RowResult]], None],
) -> list[RowResult]:
    """Enroll every row, ``CHUNK_SIZE`` at a time, passing each chunk's results to
    ``on_results`` as soon as they are known. A failure of the store (unreachable, throttled
    past the retries) stops the run: what was done stays done, and running again resumes."""
    results: list[RowResult] = []
    for start in range(0, len(rows), CHUNK_SIZE):
        chunk = rows[start : start + CHUNK_SIZE]
        if plan.order_id is not None:
            done = _with_seats(chunk, plan, plan.order_id, persistence_layer, now)
        else:
            done = [_without_seat(row, plan, persistence_layer, now) for row in chunk]
        results.extend(done)
        on_results(done)
    return results


def _with_seats(
    chunk: Sequence[CsvUser],
    plan: BulkPlan,
    order_id: str,
    persistence_layer: PersistenceLayer,
    now: datetime,
) -> list[RowResult]:
    from enrollkit.operations.bulk import enroll_many

    outcomes = enroll_many(
        [row.user for row in chunk],
        course=plan.course,
        tenant=plan.tenant,
        order_id=order_id,
        persistence_layer=persistence_layer,
        deduplication_window=plan.deduplication_window,
        cancel_policy=plan.cancel_policy,
        now=now,
    )
    return [
        RowResult(
            row.line, row.user.id, result.outcome.value, result.enrollment_id, result.detail or ""
        )
        for row, result in zip(chunk, outcomes, strict=True)
    ]


def _without_seat(
    row: CsvUser, plan: BulkPlan, persistence_layer: PersistenceLayer, now: datetime
) -> RowResult:
    from enrollkit.operations.enroll import enroll

    enrollment_id = enrollment_id_for(plan, row.user.id)
    try:
        outcome = enroll(
            Enrollment(id=enrollment_id, user=row.user, course=plan.course),
            tenant=plan.tenant,
            persistence_layer=persistence_layer,
            deduplication_window=plan.deduplication_window,
            cancel_policy=plan.cancel_policy,
            now=now,
        )
    except DeduplicationConflictError as conflict:  # enrolled by other means
        return RowResult(row.line, row.user.id, "ALREADY_ENROLLED", None, str(conflict))
    except PersistenceError:
        raise
    except EnrollkitError as error:
        return RowResult(row.line, row.user.id, "FAILED", enrollment_id, str(error))
    name = "ENROLLED" if outcome is EnrollOutcome.CREATED else "ALREADY_ENROLLED"
    return RowResult(row.line, row.user.id, name, enrollment_id)


# -- the command ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", type=Path, help="CSV with columns id, name, email")
    parser.add_argument("--tenant", required=True, metavar="ID", help="the tenant's id")
    parser.add_argument("--tenant-name", metavar="NAME", help="default: the tenant's id")
    parser.add_argument("--course", required=True, metavar="ID", help="the course's id")
    parser.add_argument(
        "--course-name",
        metavar="NAME",
        help="default: from the order's seats, else the course's id",
    )
    parser.add_argument(
        "--access-period",
        metavar="DAYS",
        type=int,
        help="days of access; default: from the order's seats (required without --order)",
    )
    parser.add_argument(
        "--order", metavar="ID", help="take one of this order's seats for each user"
    )
    parser.add_argument(
        "--deduplication-offset",
        metavar="DAYS",
        type=int,
        help="take the (user, course) lock until DAYS before access ends",
    )
    parser.add_argument(
        "--cancel-days",
        metavar="DAYS",
        type=int,
        help="allow cancel for DAYS after enrollment (default: no cancel policy)",
    )
    parser.add_argument(
        "--results",
        metavar="PATH",
        type=Path,
        help="the result file (default: FILE's name with .results.csv)",
    )


def cmd_enroll_csv(args: argparse.Namespace) -> int:
    rows = read_users(args.file)  # before connecting: a bad file needs no network
    store = connect(args)
    require_tables(store, args)
    return run(args, rows, store, now=datetime.now(timezone.utc))


def run(
    args: argparse.Namespace, rows: Sequence[CsvUser], store: PersistenceLayer, *, now: datetime
) -> int:
    """The command after the file was read: plan, enroll with progress, write results."""
    plan = _plan(args, store)
    results_path: Path = args.results or args.file.with_name(f"{args.file.stem}.results.csv")
    with _result_file(results_path) as write, _progress(len(rows)) as advance:

        def record(done: Sequence[RowResult]) -> None:
            write(done)
            advance(len(done))

        results = enroll_rows(rows, plan, persistence_layer=store, now=now, on_results=record)
    counts = Counter(result.outcome for result in results)
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
    print(f"{len(results)} rows: {summary}. Results in {results_path}")
    not_enrolled = len(results) - counts["ENROLLED"] - counts["ALREADY_ENROLLED"]
    if not_enrolled:
        print(
            f"enrollkit: {not_enrolled} rows were not enrolled; see {results_path}", file=sys.stderr
        )
        return EXIT_ERROR
    return EXIT_OK


def _plan(args: argparse.Namespace, store: PersistenceLayer) -> BulkPlan:
    tenant = Tenant.from_untrusted({"id": args.tenant, "name": args.tenant_name or args.tenant})
    course_id: str = args.course
    known = _course_of_order(store, tenant.id, args.order, course_id) if args.order else None
    name = args.course_name or (known.name if known else course_id)
    access_period = args.access_period or (known.access_period if known else None)
    if access_period is None:
        raise CommandError(
            "--access-period is required"
            + (
                f" (no seat of order {args.order!r} names course {course_id!r})"
                if args.order
                else ""
            )
        )
    course = Course.from_untrusted({"id": course_id, "name": name, "access_period": access_period})
    if known is not None and known != course:
        raise CommandError(
            f"the order's seats are for {known.name!r} with {known.access_period} days of "
            f"access, not {course.name!r} with {course.access_period}"
        )
    window = policy = None
    if args.deduplication_offset is not None:
        window = DeduplicationWindow.from_untrusted({"offset_days": args.deduplication_offset})
    if args.cancel_days is not None:
        policy = CancelPolicy.from_untrusted({"days": args.cancel_days})
    return BulkPlan(tenant, course, args.order, window, policy)


def _course_of_order(
    store: PersistenceLayer, org_id: str, order_id: str, course_id: str
) -> Course | None:
    """The course as the order's seats record it: from an available seat, else from an
    enrollment that holds one (every seat may be taken when a finished run is re-run)."""
    from enrollkit.layout import enrollment as enrollment_layout
    from enrollkit.layout import seat as seat_layout
    from enrollkit.operations.seats import seat_ledger

    ledger = seat_ledger(order_id=order_id, persistence_layer=store, org_id=org_id)
    for seat in ledger.available(course_id):
        item = store.get_item(seat_layout.seat_key(seat))
        if item is not None:
            return Course.model_validate(item["course"])
    for record in ledger.seats:
        if record.course_id == course_id and record.enrollment_id is not None:
            item = store.get_item(enrollment_layout.root_key(record.enrollment_id))
            if item is not None:
                return Course.model_validate(item["course"])
    return None


@contextmanager
def _result_file(path: Path) -> Iterator[Callable[[Sequence[RowResult]], None]]:
    """A writer of result rows, flushed after each batch: a crash leaves what was known."""
    try:
        stream = path.open("w", encoding="utf-8", newline="")
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror or error}") from None
    with stream:
        writer = csv.writer(stream)
        writer.writerow(RESULT_COLUMNS)

        def write(results: Sequence[RowResult]) -> None:
            for result in results:
                writer.writerow(
                    (
                        result.line,
                        result.user_id,
                        result.outcome,
                        result.enrollment_id or "",
                        result.detail,
                    )
                )
            stream.flush()

        yield write


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    from tqdm import tqdm

    with tqdm(total=total, unit="row", desc="enrolling", file=sys.stderr, disable=None) as bar:

        def advance(rows: int) -> None:
            bar.update(rows)

        yield advance
