"""``enrollkit list``: a tenant's enrollments, newest first, a page at a time."""

from __future__ import annotations

import argparse
import shlex

from enrollkit.cli.connection import connect, connection_arguments, require_tables
from enrollkit.cli.errors import EXIT_OK
from enrollkit.cli.render import format_when, render_table
from enrollkit.models import EnrollmentStatus


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, metavar="TENANT", help="whose enrollments")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--user", metavar="USER", help="only this user's")
    which.add_argument("--course", metavar="COURSE", help="only this course's")
    parser.add_argument(
        "--status",
        choices=[status.value for status in EnrollmentStatus],
        help="only enrollments in this status",
    )
    parser.add_argument(
        "--limit", type=int, default=50, metavar="N", help="per page (default: %(default)s)"
    )
    parser.add_argument("--cursor", metavar="CURSOR", help="the next page, as printed")


def cmd_list(args: argparse.Namespace) -> int:
    from enrollkit.operations.reads import list_enrollments

    store = connect(args)
    require_tables(store, args)
    page = list_enrollments(
        persistence_layer=store,
        tenant_id=args.tenant,
        user_id=args.user,
        course_id=args.course,
        status=args.status,
        limit=args.limit,
        cursor=args.cursor,
    )
    if not page.items:
        print("No enrollments.")
    else:
        rows = [
            (
                summary.id,
                summary.user.id,
                summary.course.id,
                summary.status.value,
                format_when(summary.created_at),
            )
            for summary in page.items
        ]
        print(render_table(("enrollment", "user", "course", "status", "created"), rows))
    if page.cursor is not None:
        print(f"\nNext page:\n  enrollkit list{_filters(args)} --cursor {page.cursor}")
    return EXIT_OK


def _filters(args: argparse.Namespace) -> str:
    options = [
        ("--tenant", args.tenant),
        ("--user", args.user),
        ("--course", args.course),
        ("--status", args.status),
        ("--limit", str(args.limit) if args.limit != 50 else None),
    ]
    given = "".join(f" {option} {shlex.quote(value)}" for option, value in options if value)
    return given + connection_arguments(args)
