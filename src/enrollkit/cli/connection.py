"""Connecting to DynamoDB: the connection options every command takes, a client that
fails fast (with throwaway credentials for a local endpoint), and the checks and messages
for what DynamoDB answers.

boto3 and botocore are imported inside the functions, when a command connects.
"""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING

from enrollkit.cli.errors import CommandError
from enrollkit.errors import one_line

if TYPE_CHECKING:
    from enrollkit.persistence.dynamodb import DynamoDBPersistence


def add_connection_options(parser: argparse.ArgumentParser, *, demo: bool = False) -> None:
    """--endpoint-url, --region, --table-name, --order-table-name: what connect() reads."""
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


def connect(args: argparse.Namespace) -> DynamoDBPersistence:
    """A DynamoDB backend for the connection options, with a client that fails fast.

    Endpoint, region and credentials follow the library's one rule
    (:func:`enrollkit.persistence.dynamodb.dynamodb_client`): throwaway credentials for a
    local endpoint when none are configured, ``us-east-1`` when no region is.
    """
    from botocore.config import Config

    from enrollkit.persistence.dynamodb import (
        DynamoDBPersistence,
        RegionMissing,
        dynamodb_client,
    )

    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "total_max_attempts": 2},
    )
    try:
        client = dynamodb_client(
            endpoint_url=args.endpoint_url, region_name=args.region, config=config
        )
    except RegionMissing:
        raise CommandError(
            "no AWS region: pass --region or set AWS_REGION (or use --endpoint-url)"
        ) from None
    return DynamoDBPersistence(args.table_name, args.order_table_name, client=client)


def location(args: argparse.Namespace) -> str:
    """Where the tables are, for messages: the endpoint URL, or AWS and its region."""
    return args.endpoint_url or f"AWS ({args.region or 'default region'})"


def connection_arguments(args: argparse.Namespace) -> str:
    """The connection options given, as they would be typed again (for a hint)."""
    from enrollkit.persistence.base import DEFAULT_ORDER_TABLE_NAME, DEFAULT_TABLE_NAME

    options = [
        ("--endpoint-url", args.endpoint_url, None),
        ("--region", args.region, None),
        ("--table-name", args.table_name, DEFAULT_TABLE_NAME),
        ("--order-table-name", args.order_table_name, DEFAULT_ORDER_TABLE_NAME),
    ]
    return "".join(
        f" {option} {shlex.quote(value)}"
        for option, value, default in options
        if value and value != default
    )


def require_tables(store: DynamoDBPersistence, args: argparse.Namespace) -> None:
    """A missing table, said plainly, with the command that creates it."""
    missing = store.missing_tables()
    if missing:
        raise CommandError(
            f"table {missing[0]!r} does not exist at {location(args)} "
            f"(create it with: enrollkit create-tables{connection_arguments(args)})"
        )


def client_error_message(error: Exception) -> str:
    """DynamoDB's refusal in one line: its error code and (the start of) its message; for
    an answer that is not DynamoDB's (an HTML page), the HTTP status and the page's title."""
    from enrollkit.persistence.dynamodb import describe_body

    response = getattr(error, "response", {}) or {}
    details = response.get("Error", {})
    code, message = str(details.get("Code") or ""), str(details.get("Message") or "")
    if code.isdigit() or message.lstrip().startswith("<"):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", code)
        return f"not a DynamoDB endpoint: it answered HTTP {status} with {describe_body(message)}"
    if code:
        return one_line(f"DynamoDB refused the request: {code}: {message}")
    return one_line(str(error))
