"""The ``enrollkit`` command line: a narrated demo, table provisioning, and a look at one
enrollment's items.

    enrollkit demo [--endpoint-url URL]
    enrollkit create-tables [--endpoint-url URL] [--region R] [--table-name T]
                            [--order-table-name O]
    enrollkit show ENROLLMENT_ID [--items] [--endpoint-url URL] [--region R] ...
    enrollkit list --tenant T [--user U | --course C] [--status S] [--limit N] [--cursor X]
    enrollkit backfill [--checkpoint FILE] [--page-size N] [--endpoint-url URL] ...
    enrollkit enroll-csv FILE --tenant T --course C [--order O] [--endpoint-url URL] ...
    enrollkit deliver (--handlers MODULE:NAME | --no-handlers) [--once | --every 60] ...

Errors a user can cause (an unreachable endpoint, a missing table, an unknown id) are one
line on stderr and exit status 1; usage errors exit with status 2.

This package holds the parser, ``main()`` and the mapping of errors to that one line; each
command is a module of its own:

- :mod:`enrollkit.cli.demo`: ``enrollkit demo``, one function per narrated step
- :mod:`enrollkit.cli.tables`: ``enrollkit create-tables``
- :mod:`enrollkit.cli.show`: ``enrollkit show``
- :mod:`enrollkit.cli.listing`: ``enrollkit list``
- :mod:`enrollkit.cli.backfill`: ``enrollkit backfill``
- :mod:`enrollkit.cli.enroll_csv`: ``enrollkit enroll-csv``
- :mod:`enrollkit.cli.deliver`: ``enrollkit deliver``
- :mod:`enrollkit.cli.connection`: the connection options, the DynamoDB client, table checks
- :mod:`enrollkit.cli.render`: plain-text tables, instants, durations, attribute values
- :mod:`enrollkit.cli.errors`: :class:`CommandError` and the exit statuses

It imports neither boto3 nor the operations at import time, so ``enrollkit --help`` stays
fast; each command imports what it uses.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from enrollkit import __version__
from enrollkit.cli.backfill import add_arguments as add_backfill_arguments
from enrollkit.cli.backfill import cmd_backfill
from enrollkit.cli.connection import add_connection_options, client_error_message, connect
from enrollkit.cli.deliver import add_arguments as add_deliver_arguments
from enrollkit.cli.deliver import cmd_deliver
from enrollkit.cli.demo import cmd_demo
from enrollkit.cli.enroll_csv import add_arguments as add_enroll_csv_arguments
from enrollkit.cli.enroll_csv import cmd_enroll_csv
from enrollkit.cli.errors import EXIT_ERROR, EXIT_OK, CommandError
from enrollkit.cli.listing import add_arguments as add_list_arguments
from enrollkit.cli.listing import cmd_list
from enrollkit.cli.render import render_table
from enrollkit.cli.show import cmd_show, format_items, show_enrollment, show_items
from enrollkit.cli.tables import cmd_create_tables
from enrollkit.errors import EnrollkitError

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "PROG",
    "CommandError",
    "build_parser",
    "cmd_create_tables",
    "cmd_demo",
    "cmd_show",
    "connect",
    "format_items",
    "main",
    "render_table",
    "show_enrollment",
    "show_items",
]

PROG = "enrollkit"


def build_parser() -> argparse.ArgumentParser:
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
    add_connection_options(demo, demo=True)
    demo.set_defaults(run=cmd_demo)

    create = commands.add_parser(
        "create-tables",
        help="create both tables (idempotent)",
        description="Create the enrollments and orders tables if missing: key id (S) / "
        "sk (S), TTL on 'ttl', streams NEW_AND_OLD_IMAGES, on-demand billing.",
    )
    add_connection_options(create)
    create.set_defaults(run=cmd_create_tables)

    show = commands.add_parser(
        "show",
        help="print one enrollment: status, schedule, lock, seat, cancel policy",
        description="Print one enrollment as enrollkit reads it: its status, schedule, "
        "lock, seat and cancel policy. With --items, its raw item collection, with its "
        "lock item and its seat's record in the order.",
    )
    show.add_argument("enrollment_id", metavar="ENROLLMENT_ID")
    show.add_argument(
        "--items", action="store_true", help="print the stored items instead, as they are"
    )
    add_connection_options(show)
    show.set_defaults(run=cmd_show)

    listing = commands.add_parser(
        "list",
        help="list a tenant's enrollments, newest first",
        description="List a tenant's enrollments, newest first, a page at a time (one "
        "index Query per page), by user or course and by status.",
    )
    add_list_arguments(listing)
    add_connection_options(listing)
    listing.set_defaults(run=cmd_list)

    backfill = commands.add_parser(
        "backfill",
        help="bring items written before the indexes into them",
        description="Write the index attributes onto items written before the indexes (by "
        "an earlier enrollkit, or the original code): enrollments into the listing indexes, "
        "schedule items into the lifecycle's due-time index. Scans the enrollments table a "
        "page at a time, writes only items that lack them, and resumes from --checkpoint. "
        "Safe to run again.",
    )
    add_backfill_arguments(backfill)
    add_connection_options(backfill)
    backfill.set_defaults(run=cmd_backfill)

    bulk = commands.add_parser(
        "enroll-csv",
        help="enroll the users of a CSV file (id, name, email), resumably",
        description="Enroll every user of a CSV file (columns id, name, email) into a course "
        "for a tenant, taking a seat of --order when given. The file is checked whole "
        "before anything is written; each row's outcome goes to a result file; running "
        "the same file again resumes where a run stopped (enrollment ids are derived from "
        "the tenant or order, the course and the user).",
    )
    add_enroll_csv_arguments(bulk)
    add_connection_options(bulk)
    bulk.set_defaults(run=cmd_enroll_csv)

    deliver = commands.add_parser(
        "deliver",
        help="deliver due lifecycle events (the sweeper), once or every N seconds",
        description="Run the sweeper: every lifecycle event due now is claimed once (its "
        "status change applied) and handed to your handler; failed handlers are retried by "
        "later runs. With --every 60, each event is delivered within a minute of being due. "
        "Exits 1 when a handler failed (a --once run).",
    )
    add_deliver_arguments(deliver)
    add_connection_options(deliver)
    deliver.set_defaults(run=cmd_deliver)
    return parser


def _error_line(error: BaseException) -> str | None:
    """The one line to print for an error the user can act on, or None for a bug."""
    if isinstance(error, (CommandError, EnrollkitError)):
        return str(error) or type(error).__name__
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        if isinstance(error, botocore.ClientError):
            return client_error_message(error)
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
