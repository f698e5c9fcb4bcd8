"""DynamoDB Streams records, as a Lambda function receives them, for the deletions the
embedded backend's TTL sweep makes: the same shape DynamoDB's own TTL produces (a REMOVE
whose ``userIdentity`` is the DynamoDB service, with the old image), so a stream consumer
is tested on the embedded backend exactly as it runs on AWS."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from enrollkit.layout.table import PARTITION_KEY, SORT_KEY
from enrollkit.persistence.marshal import serialize_item
from enrollkit.transaction.limits import item_size

TTL_PRINCIPAL = "dynamodb.amazonaws.com"
EMBEDDED_REGION = "local"
EMBEDDED_ACCOUNT = "000000000000"
_sequence = itertools.count(1)


def stream_arn(table_name: str, region: str = EMBEDDED_REGION) -> str:
    return f"arn:aws:dynamodb:{region}:{EMBEDDED_ACCOUNT}:table/{table_name}/stream/embedded"


def table_of_arn(arn: str) -> str | None:
    """The table a stream ARN (``...:table/<name>/stream/<label>``) belongs to."""
    _, found, rest = arn.partition(":table/")
    return rest.split("/", 1)[0] if found else None


def ttl_removal_record(table_name: str, item: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The stream record of DynamoDB's TTL deleting ``item`` at ``at``."""
    sequence = f"{next(_sequence):021d}"
    return {
        "eventID": sequence,
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": EMBEDDED_REGION,
        "dynamodb": {
            "ApproximateCreationDateTime": int(at.timestamp()),
            "Keys": serialize_item({name: item[name] for name in (PARTITION_KEY, SORT_KEY)}),
            "OldImage": serialize_item(item),
            "SequenceNumber": sequence,
            "SizeBytes": item_size(item),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "userIdentity": {"type": "Service", "principalId": TTL_PRINCIPAL},
        "eventSourceARN": stream_arn(table_name),
    }


def is_ttl_removal(record: Mapping[str, Any]) -> bool:
    """A REMOVE made by DynamoDB's TTL process (not by a caller's delete). Lambda spells
    the identity ``type``/``principalId``; the Streams API's GetRecords ``Type``/
    ``PrincipalId``: both are read."""
    identity = record.get("userIdentity")
    if record.get("eventName") != "REMOVE" or not isinstance(identity, Mapping):
        return False
    kind = identity.get("type", identity.get("Type"))
    principal = identity.get("principalId", identity.get("PrincipalId"))
    return bool(kind == "Service" and principal == TTL_PRINCIPAL)
