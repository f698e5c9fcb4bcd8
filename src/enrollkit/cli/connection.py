"""Connecting to DynamoDB: the connection options every command takes, a client that
fails fast (with throwaway credentials for a local endpoint), and the checks and messages
for what DynamoDB answers.

boto3 and botocore are imported inside the functions, when a command connects.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from enrollkit.cli.errors import CommandError
from enrollkit.errors import PersistenceError

if TYPE_CHECKING:
    from enrollkit.persistence.dynamodb import DynamoDBPersistence

# Credentials for a local endpoint (DynamoDB Local, moto) when none are configured:
# they are signed with but never checked.
_LOCAL_KEY = "local"


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
    """A missing table, said plainly (rather than DynamoDB's 'resource not found')."""
    from botocore.exceptions import ClientError

    for table in (store.table_name, store.order_table_name):
        try:
            store.client.describe_table(TableName=table)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise CommandError(
                    f"table {table!r} does not exist at {location(args)} "
                    f"(create it with: enrollkit create-tables{connection_arguments(args)})"
                ) from None
            raise PersistenceError(client_error_message(error)) from None


def client_error_message(error: Exception) -> str:
    """DynamoDB's refusal in one line: its error code and message."""
    response = getattr(error, "response", {}) or {}
    details = response.get("Error", {})
    code, message = details.get("Code"), details.get("Message")
    return f"DynamoDB refused the request: {code}: {message}" if code else str(error)
