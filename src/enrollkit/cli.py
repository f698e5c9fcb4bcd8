"""The ``enrollkit`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime, timezone


def _demo(_: argparse.Namespace) -> int:
    from enrollkit import (
        Author,
        CancelPolicy,
        Course,
        DeduplicationConflictError,
        DeduplicationWindow,
        Enrollment,
        InMemoryPersistence,
        Tenant,
        User,
        cancel,
        enroll,
    )

    store = InMemoryPersistence()
    now = datetime.now(timezone.utc)
    tenant = Tenant(id="acme", name="Acme Training")
    course = Course(id="nr-10", name="NR-10 Electrical Safety", access_period=90)
    user = User(id="ana", name="Ana Souza", email="ana@example.com")
    enrollment = Enrollment(user=user, course=course)
    window = DeduplicationWindow(offset_days=10)
    print(f"enroll {user.name} in {course.name}:", end=" ")
    print(
        enroll(
            enrollment,
            tenant=tenant,
            persistence_layer=store,
            deduplication_window=window,
            cancel_policy=CancelPolicy(days=7),
            now=now,
        ).value
    )
    try:
        enroll(
            Enrollment(user=user, course=course),
            tenant=tenant,
            persistence_layer=store,
            deduplication_window=window,
            now=now,
        )
    except DeduplicationConflictError as error:
        print(f"enroll again: refused ({error})")
    cancel(enrollment.id, author=Author(id="admin", name="Admin"), persistence_layer=store, now=now)
    print("cancel: done")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="enrollkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="an end-to-end run on the embedded backend").set_defaults(
        run=_demo
    )
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
