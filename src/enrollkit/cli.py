"""The ``enrollkit`` command line: a narrated demo, table provisioning, and a look at one
enrollment's items.

    enrollkit demo [--endpoint-url URL]
    enrollkit create-tables [--endpoint-url URL] [--region R] [--table-name T]
                            [--order-table-name O]
    enrollkit show ENROLLMENT_ID [--endpoint-url URL] [--region R] [--table-name T] ...

Errors a user can cause (an unreachable endpoint, a missing table, an unknown id) are one
line on stderr and exit status 1; usage errors exit with status 2.

This module imports neither boto3 nor the operations at import time, so
``enrollkit --help`` stays fast; each command imports what it uses.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from enrollkit.persistence.base import BasePersistence
    from enrollkit.persistence.dynamodb import DynamoDBPersistence

PROG = "enrollkit"
EXIT_OK = 0
EXIT_ERROR = 1
# Credentials for a local endpoint (DynamoDB Local, moto) when none are configured:
# they are signed with but never checked.
_LOCAL_KEY = "local"


class CommandError(Exception):
    """A mistake the user can fix: printed as one line, exit status 1."""


# -- plain-text output ---------------------------------------------------------------


def render_table(headers: Sequence[str], rows: Iterable[Sequence[object]], indent: int = 2) -> str:
    """A plain-text table: left-aligned columns, a rule under the header."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    pad = " " * indent

    def line(values: Sequence[str]) -> str:
        return (pad + "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=False))).rstrip()

    rule = [("-" * width) for width in widths]
    return "\n".join([line(list(headers)), line(rule), *(line(row) for row in cells)])


def _when(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _span(delta: timedelta) -> str:
    """A duration in words: '3 days', '2 h 5 min', 'now'."""
    seconds = int(delta.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86_400)
    if days and rest == 0:
        return f"{sign}{days} day{'s' if days != 1 else ''}"
    if days:
        return f"{sign}{days} d {rest // 3600} h"
    hours, minutes = divmod(rest // 60, 60)
    if hours:
        return f"{sign}{hours} h {minutes} min"
    return f"{sign}{minutes} min" if minutes else "now"


def _value(value: Any) -> str:
    """An attribute value, readable: maps as {k: v}, sets sorted, numbers as written."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(_value(v) for v in value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    if value is None:
        return "null"
    return str(value)


def _short(slot_id: str) -> str:
    return slot_id[:8]


# -- connecting ------------------------------------------------------------------------


def _has_configured_credentials() -> bool:
    """Credentials from the environment or the shared files, without asking any network
    service (the instance metadata service is never probed here)."""
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return True
    files = [
        os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        os.environ.get("AWS_CONFIG_FILE", "~/.aws/config"),
    ]
    return any(Path(name).expanduser().is_file() for name in files)


def connect(args: argparse.Namespace) -> DynamoDBPersistence:
    """A DynamoDB backend for the connection options, with a client that fails fast."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    from enrollkit.persistence.dynamodb import DynamoDBPersistence

    endpoint_url: str | None = args.endpoint_url
    # A local endpoint needs some region; for AWS it comes from --region or the environment.
    region = args.region or ("us-east-1" if endpoint_url else None)
    local = bool(endpoint_url) and not _has_configured_credentials()
    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "total_max_attempts": 2},
    )
    try:
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint_url,
            region_name=region,
            config=config,
            aws_access_key_id=_LOCAL_KEY if local else None,
            aws_secret_access_key=_LOCAL_KEY if local else None,
        )
    except BotoCoreError as error:
        if type(error).__name__ == "NoRegionError":
            raise CommandError(
                "no AWS region: pass --region or set AWS_REGION (or use --endpoint-url)"
            ) from None
        raise CommandError(f"cannot create a DynamoDB client: {error}") from None
    except ValueError as error:  # a malformed endpoint URL
        raise CommandError(f"cannot create a DynamoDB client: {error}") from None
    return DynamoDBPersistence(args.table_name, args.order_table_name, client=client)


def _where(args: argparse.Namespace) -> str:
    return args.endpoint_url or f"AWS ({args.region or 'default region'})"


def _require_tables(store: DynamoDBPersistence, args: argparse.Namespace) -> None:
    """A missing table, said plainly (rather than DynamoDB's 'resource not found')."""
    from botocore.exceptions import ClientError

    from enrollkit.errors import PersistenceError

    for table in (store.table_name, store.order_table_name):
        try:
            store.client.describe_table(TableName=table)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                hint = f" --endpoint-url {args.endpoint_url}" if args.endpoint_url else ""
                raise CommandError(
                    f"table {table!r} does not exist at {_where(args)} "
                    f"(create it with: enrollkit create-tables{hint})"
                ) from None
            raise PersistenceError(_client_error_message(error)) from None


def _client_error_message(error: Exception) -> str:
    response = getattr(error, "response", {}) or {}
    details = response.get("Error", {})
    code, message = details.get("Code"), details.get("Message")
    return f"DynamoDB refused the request: {code}: {message}" if code else str(error)


# -- enrollkit create-tables -------------------------------------------------------------


def cmd_create_tables(args: argparse.Namespace) -> int:
    store = connect(args)
    store.create_tables()
    print(f"Tables ready at {_where(args)}:")
    rows = []
    for role, table in (("enrollments", store.table_name), ("orders", store.order_table_name)):
        description = store.client.describe_table(TableName=table)["Table"]
        ttl = store.client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        stream = description.get("StreamSpecification", {})
        rows.append(
            (
                role,
                table,
                description.get("TableStatus", "?"),
                "id (S) / sk (S)",
                f"{ttl.get('AttributeName', 'ttl')} {ttl.get('TimeToLiveStatus', '?')}",
                stream.get("StreamViewType", "off") if stream.get("StreamEnabled") else "off",
            )
        )
    print(render_table(("role", "table", "status", "key", "ttl", "stream"), rows))
    return EXIT_OK


# -- enrollkit show ------------------------------------------------------------------------

_DESCRIPTIONS = {
    "0": "the enrollment",
    "metadata#tenant": "its tenant",
    "metadata#lock": "the lock it holds",
    "metadata#deduplication_window": "its de-duplication window",
    "cancel_policy": "cancel allowed until ttl",
    "parent_vacancy": "the seat it took",
    "canceled_date": "who canceled it",
}


def _describe(sk: str) -> str:
    if sk in _DESCRIPTIONS:
        return _DESCRIPTIONS[sk]
    if sk.startswith("schedules#"):
        return "lifecycle event, due at ttl"
    return ""


def _ttl_text(value: Any, now: datetime) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        return _value(value)
    due = _from_epoch(value)
    if due <= now:
        state = f"expired {_span(now - due)} ago, awaiting DynamoDB's deletion"
    else:
        state = f"in {_span(due - now)}"
    return f"{value} = {_when(due)} ({state})"


def format_items(title: str, items: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """Items as readable blocks: the sort key and what it is, then one attribute a line."""
    lines = [title]
    for item in items:
        sk = str(item.get("sk", ""))
        description = _describe(sk)
        lines.append("")
        lines.append(f"  {item.get('id')} / {sk}" + (f"  -- {description}" if description else ""))
        names = [name for name in item if name not in ("id", "sk")]
        width = max((len(name) for name in names), default=0)
        for name in names:
            text = _ttl_text(item[name], now) if name == "ttl" else _value(item[name])
            lines.append(f"    {name.ljust(width)}  {text}")
    return "\n".join(lines)


def show_enrollment(
    store: BasePersistence, enrollment_id: str, *, now: datetime | None = None
) -> str:
    """The item collection of one enrollment, and the items it points to, as text.

    Raises :class:`CommandError` when there is no such enrollment.
    """
    from enrollkit.models import KeyPair, validate_identifier

    try:
        validate_identifier(enrollment_id)
    except ValueError as error:
        raise CommandError(f"not an enrollment id: {enrollment_id!r} ({error})") from None
    now = now or datetime.now(timezone.utc)
    items = store.query(enrollment_id)
    if not any(item.get("sk") == "0" for item in items):
        raise CommandError(f"no enrollment {enrollment_id!r} in table {store.table_name!r}")
    sections = [
        format_items(
            f"Enrollment {enrollment_id}: {len(items)} items in table {store.table_name!r}",
            items,
            now,
        )
    ]
    related: list[Mapping[str, Any]] = []
    by_sk = {str(item["sk"]): item for item in items}
    lock = by_sk.get("metadata#lock")
    if lock is not None:
        found = store.get_item(KeyPair(pk="lock", sk=str(lock["hash"])))
        if found is not None:
            related.append(found)
    parent = by_sk.get("parent_vacancy")
    orders: list[Mapping[str, Any]] = []
    if parent is not None:
        order_id = str(parent["order_id"])
        for record in store.query(
            order_id, sk_prefix="generated_items#", table_name=store.order_table_name
        ):
            if record.get("enrollment_id") == enrollment_id:
                orders.append(record)
    if related:
        sections.append(format_items("Its lock item (partition 'lock'):", related, now))
    if orders:
        sections.append(
            format_items(f"Its seat in the order (table {store.order_table_name!r}):", orders, now)
        )
    return "\n\n".join(sections)


def cmd_show(args: argparse.Namespace) -> int:
    from enrollkit.models import validate_identifier

    try:  # checked before connecting: a typo needs no network
        validate_identifier(args.enrollment_id)
    except ValueError as error:
        raise CommandError(f"not an enrollment id: {args.enrollment_id!r} ({error})") from None
    store = connect(args)
    _require_tables(store, args)
    print(show_enrollment(store, args.enrollment_id))
    return EXIT_OK


# -- enrollkit demo ------------------------------------------------------------------------


class _Narrator:
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


def cmd_demo(args: argparse.Namespace) -> int:
    from enrollkit import (
        Author,
        CancelPolicy,
        Course,
        DeduplicationConflictError,
        DeduplicationWindow,
        Enrollment,
        InMemoryPersistence,
        LifecycleEvent,
        SeatStatus,
        Tenant,
        User,
        Vacancy,
        add_vacancies,
        cancel,
        enroll,
        seat_ledger,
    )

    store: BasePersistence
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if args.endpoint_url is None:
        store = InMemoryPersistence(args.table_name, args.order_table_name)
        tag = ""
        print("enrollkit demo: a narrated run on the embedded backend (in memory, no AWS).")
    else:
        dynamodb = connect(args)
        dynamodb.create_tables()
        store = dynamodb
        print(f"enrollkit demo: a narrated run on DynamoDB at {args.endpoint_url}.")
        # The tables may hold earlier runs: this run's ids carry a tag of their own.
        tag = "-" + uuid.uuid4().hex[:4]
        print(
            f"Tables {store.table_name!r} and {store.order_table_name!r} are ready; "
            f"this run's ids end in {tag!r}."
        )
    print("Each write below is ONE DynamoDB transaction (TransactWriteItems).")
    print(f"Now: {_when(now)}")
    say = _Narrator()

    tenant = Tenant(id=f"acme{tag}", name="Acme Training")
    course = Course(id=f"nr-10{tag}", name="NR-10 Electrical Safety", access_period=90)
    order_id = f"order-1001{tag}"
    window = DeduplicationWindow(offset_days=10)
    policy = CancelPolicy(days=7)

    # 1. An order with seats ------------------------------------------------------------
    say.heading("An order with seats")
    store.put_item(
        {"id": order_id, "sk": "0", "org_id": tenant.id, "create_date": now.isoformat()},
        table_name=store.order_table_name,
    )
    seats = add_vacancies(
        org_id=tenant.id,
        order_id=order_id,
        course=course,
        quantity=3,
        persistence_layer=store,
        now=now,
    )
    say.say(
        f"{tenant.name} bought order {order_id}: 3 seats of {course.name!r}",
        f"({course.access_period} days of access).",
        f"add_vacancies(org_id={tenant.id!r}, order_id={order_id!r}, course=..., quantity=3)",
    )
    say.table(
        ("seat", "slot id", "status"),
        [(n, seat.slot_id, SeatStatus.AVAILABLE.value) for n, seat in enumerate(seats, 1)],
    )

    # 2. Users enrolled, each taking a seat ----------------------------------------------
    say.heading("Users enrolled, each taking a seat")
    say.say(
        "enroll(enrollment, tenant=..., vacancy=seat,",
        f"       deduplication_window=DeduplicationWindow(offset_days={window.offset_days}),",
        f"       cancel_policy=CancelPolicy(days={policy.days}))",
    )
    people = [
        User(id=f"ana{tag}", name="Ana Souza", email="ana@example.com"),
        User(id=f"bruno{tag}", name="Bruno Lima", email="bruno@example.com"),
    ]
    enrollments: list[Enrollment] = []
    rows = []
    for user, seat in zip(people, seats, strict=False):
        enrollment = Enrollment(user=user, course=course)
        outcome = enroll(
            enrollment,
            tenant=tenant,
            persistence_layer=store,
            vacancy=seat,
            deduplication_window=window,
            cancel_policy=policy,
            now=now,
        )
        enrollments.append(enrollment)
        rows.append((user.name, enrollment.id, outcome.value, _short(seat.slot_id)))
    say.table(("user", "enrollment id", "outcome", "seat"), rows)
    ana, bruno = enrollments

    # 3. A duplicate refused -----------------------------------------------------------
    say.heading("A duplicate refused")
    say.say(
        f"Enroll {ana.user.name} in {course.name} again, with the third seat:",
    )
    try:
        enroll(
            Enrollment(user=ana.user, course=course),
            tenant=tenant,
            persistence_layer=store,
            vacancy=seats[2],
            deduplication_window=window,
            now=now,
        )
    except DeduplicationConflictError as refused:
        lock = refused.failed_item or {}
        until = _from_epoch(int(lock["ttl"])) if "ttl" in lock else None
        say.say(
            "refused: DeduplicationConflictError",
            f"  {refused}",
            f"The (user, course) lock belongs to enrollment {lock.get('enrollment_id')}",
            f"until {_when(until) if until else '?'} "
            f"(access period {course.access_period} days - window offset "
            f"{window.offset_days} days).",
            "Nothing of that transaction was written: the third seat is still available.",
        )
    else:  # pragma: no cover - would be a bug in enroll()
        raise CommandError("the duplicate enrollment was accepted: this is a bug")

    # 4. A cancel that returns the seat ---------------------------------------------------
    say.heading("A cancel that returns the seat")
    result = cancel(
        bruno.id,
        author=Author(id="admin", name="Demo Admin"),
        persistence_layer=store,
        now=now + timedelta(hours=2),
    )
    returned: Vacancy | None = result.returned_seat
    say.say(
        f"cancel({bruno.id!r}, author=...)",
        f"two hours later, inside the {policy.days}-day cancel policy: "
        f"{bruno.user.name}'s enrollment is",
        "CANCELED, its schedule and lock are deleted, and its seat goes back to the order",
        f"as a new slot, {_short(returned.slot_id)}." if returned else "",
    )
    ledger = seat_ledger(order_id=order_id, persistence_layer=store)
    holder_names = {e.id: e.user.name for e in enrollments}
    ledger_rows = []
    for record in sorted(
        ledger.seats, key=lambda r: (r.status.value != "USED", r.status.value, r.vacancy.slot_id)
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
        ledger_rows.append((_short(record.vacancy.slot_id), record.status.value, note))
    say.say("", f"The seat ledger of {order_id} (seat_ledger()):")
    say.table(("slot", "status", "note"), ledger_rows)
    counts = ledger.counts().get(course.id)
    available = counts[SeatStatus.AVAILABLE] if counts else 0
    used = counts[SeatStatus.USED] if counts else 0
    say.say(
        "",
        f"Seats: {len(seats)} added = {available} available + {used} held by active enrollments.",
    )

    # 5. The schedule of reminders -----------------------------------------------------------
    say.heading("The schedule of reminders")
    say.say(
        f"{ana.user.name}'s enrollment scheduled these lifecycle events: one item each, whose",
        "DynamoDB TTL is the due time; a stream consumer acts when TTL deletes the item.",
    )
    events = [
        item
        for item in store.query(ana.id, sk_prefix="schedules#")
        if isinstance(item.get("ttl"), int)
    ]
    names = {event.value: event.name for event in LifecycleEvent}
    say.table(
        ("event", "due", "after enrollment", "to"),
        [
            (
                names.get(str(item["sk"]), str(item["sk"])),
                _when(_from_epoch(int(item["ttl"]))),
                _span(_from_epoch(int(item["ttl"])) - now),
                item.get("email", ""),
            )
            for item in sorted(events, key=lambda item: int(item["ttl"]))
        ],
    )
    left = store.query(bruno.id, sk_prefix="schedules#")
    say.say(
        "",
        f"{bruno.user.name}'s schedule: {len(left)} items left (cancel deleted them all).",
        "DynamoDB deletes expired items up to days late: enrollkit treats an item whose",
        "ttl has passed as gone (an expired lock never blocks a new enrollment).",
    )

    print()
    if args.endpoint_url is None:
        print("Done. Everything above lived in memory and is gone now.")
        print("Run it against DynamoDB Local or a moto server: enrollkit demo --endpoint-url URL")
    else:
        options = ""
        if store.table_name != "enrollments":
            options += f" --table-name {store.table_name}"
        if store.order_table_name != "orders":
            options += f" --order-table-name {store.order_table_name}"
        print("Done. Look at one enrollment's items:")
        print(f"  enrollkit show {ana.id} --endpoint-url {args.endpoint_url}{options}")
    return EXIT_OK


# -- the parser --------------------------------------------------------------------------


def _add_connection_options(parser: argparse.ArgumentParser, *, demo: bool = False) -> None:
    group = parser.add_argument_group("DynamoDB")
    group.add_argument(
        "--endpoint-url",
        metavar="URL",
        help=(
            "run against this DynamoDB endpoint (DynamoDB Local, a moto server), "
            "creating the tables"
            if demo
            else "a DynamoDB endpoint (DynamoDB Local, a moto server); default: AWS"
        ),
    )
    group.add_argument("--region", help="AWS region (default: the environment's)")
    group.add_argument(
        "--table-name",
        metavar="NAME",
        default="enrollments",
        help="enrollments table (default: %(default)s)",
    )
    group.add_argument(
        "--order-table-name",
        metavar="NAME",
        default="orders",
        help="orders table (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    from enrollkit import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Enroll users into courses and cancel enrollments on DynamoDB, "
        "each as one transaction.",
        epilog="Start with: enrollkit demo",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="a narrated end-to-end run of the whole lifecycle",
        description="A narrated end-to-end run: an order with seats, users enrolled, a "
        "duplicate refused, a cancel that returns the seat, the schedule of reminders. "
        "On the embedded backend unless --endpoint-url is given.",
    )
    _add_connection_options(demo, demo=True)
    demo.set_defaults(run=cmd_demo)

    create = commands.add_parser(
        "create-tables",
        help="create both tables (idempotent)",
        description="Create the enrollments and orders tables if missing: key id (S) / "
        "sk (S), TTL on 'ttl', streams NEW_AND_OLD_IMAGES, on-demand billing.",
    )
    _add_connection_options(create)
    create.set_defaults(run=cmd_create_tables)

    show = commands.add_parser(
        "show",
        help="print one enrollment's items",
        description="Print the item collection of one enrollment, with its lock and seat.",
    )
    show.add_argument("enrollment_id", metavar="ENROLLMENT_ID")
    _add_connection_options(show)
    show.set_defaults(run=cmd_show)
    return parser


def _error_line(error: BaseException) -> str | None:
    """The one line to print for an error the user can act on, or None for a bug."""
    from enrollkit.errors import EnrollkitError

    if isinstance(error, (CommandError, EnrollkitError)):
        return str(error) or type(error).__name__
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        if isinstance(error, botocore.ClientError):
            return _client_error_message(error)
        if isinstance(error, botocore.NoCredentialsError):
            return (
                "no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE)"
            )
        if isinstance(error, (botocore.ConnectionError, botocore.HTTPClientError)):
            return f"DynamoDB could not be reached: {error}"
        if isinstance(error, botocore.BotoCoreError):  # e.g. a parameter boto3 refuses
            return str(error).replace("\n", " ")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
        sys.stdout.flush()  # a closed pipe surfaces here, not at interpreter exit
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `enrollkit demo | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit flush does not fail again
        return EXIT_OK
    except Exception as error:
        line = _error_line(error)
        if line is None:
            raise
        print(f"{PROG}: error: {line}", file=sys.stderr)
        return EXIT_ERROR
    return status


if __name__ == "__main__":
    sys.exit(main())
