"""``enrollkit create-tables``: create both tables (idempotent) and show how they are set up."""

from __future__ import annotations

import argparse

from enrollkit.cli.connection import connect, location
from enrollkit.cli.errors import EXIT_OK
from enrollkit.cli.render import render_table


def cmd_create_tables(args: argparse.Namespace) -> int:
    store = connect(args)
    store.create_tables()
    print(f"Tables ready at {location(args)}:")
    described = store.describe_tables()
    rows = [
        (
            role,
            table.name,
            table.status,
            table.key_schema,
            table.ttl,
            table.stream,
            len(table.indexes),
        )
        for role, table in zip(("enrollments", "orders"), described, strict=True)
    ]
    print(render_table(("role", "table", "status", "key", "ttl", "stream", "indexes"), rows))
    for table in described:
        if table.indexes:
            print(f"Indexes of {table.name}: {', '.join(table.indexes)}")
    return EXIT_OK
