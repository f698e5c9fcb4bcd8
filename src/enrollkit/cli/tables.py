"""``enrollkit create-tables``: create both tables (idempotent) and show how they are set up."""

from __future__ import annotations

import argparse

from enrollkit.cli.connection import connect, location
from enrollkit.cli.errors import EXIT_OK
from enrollkit.cli.render import render_table


def cmd_create_tables(args: argparse.Namespace) -> int:
    from enrollkit.persistence.dynamodb import describe_key_schema

    store = connect(args)
    store.create_tables()
    print(f"Tables ready at {location(args)}:")
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
                describe_key_schema(description),
                f"{ttl.get('AttributeName', 'ttl')} {ttl.get('TimeToLiveStatus', '?')}",
                stream.get("StreamViewType", "off") if stream.get("StreamEnabled") else "off",
            )
        )
    print(render_table(("role", "table", "status", "key", "ttl", "stream"), rows))
    return EXIT_OK
