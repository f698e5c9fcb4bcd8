"""A DynamoDB client wrapper that fails calls, as DynamoDB and networks do.

It wraps the boto3 client's ``transact_write_items``, ``query`` and ``get_item`` (every
other method passes through) and, at a configurable rate drawn from a seeded
``random.Random``, makes a call fail instead of (or after) reaching DynamoDB:

- ``throttling``: ``ThrottlingException`` (400), nothing applied;
- ``transaction_conflict``: ``TransactionConflictException``, nothing applied;
- ``conflict_cancellation``: ``TransactionCanceledException`` whose only failed reason is
  ``TransactionConflict`` (another transaction touched an item), nothing applied;
- ``in_progress``: ``TransactionInProgressException``, nothing applied;
- ``internal_error``: ``InternalServerError`` (500), nothing applied;
- ``connection``: ``EndpointConnectionError``, the request never left;
- ``lost_response``: the call IS applied, then the caller gets a read timeout, a closed
  connection or a 500: the case where a retry must not apply it twice.

Why a wrapper and not botocore event hooks: the wrapper sits outside botocore's own
retries (the ``standard`` mode of ``DEFAULT_CLIENT_CONFIG``), so every injected fault
reaches enrollkit as it would once botocore has given up, and what is tested is
enrollkit's handling (its retries with the same ClientRequestToken, its conditions that
recognise an applied commit), not botocore's. A ``before-send`` hook would be retried by
botocore first, hiding most faults, and cannot model a lost response (the request would
not be sent at all).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

FAULT_KINDS: tuple[str, ...] = (
    "throttling",
    "transaction_conflict",
    "conflict_cancellation",
    "in_progress",
    "internal_error",
    "connection",
    "lost_response",
)
FAULTED_METHODS = frozenset({"transact_write_items", "query", "get_item"})
_ENDPOINT = "http://dynamodb.fault-injection.invalid"


def client_error(code: str, operation: str, status: int = 400, **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


class FaultInjectingClient:
    """Wraps a boto3 DynamoDB client; see the module docstring for the faults."""

    def __init__(
        self,
        client: Any,
        *,
        rng: random.Random,
        rate: float = 0.3,
        kinds: Sequence[str] = FAULT_KINDS,
    ) -> None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self._client = client
        self.rng = rng
        self.rate = rate
        self.kinds = tuple(kinds)
        self.enabled = True
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        """Fault kind -> how many were injected."""
        self.injected_by_method: Counter[tuple[str, str]] = Counter()
        self._forced: dict[str, list[str]] = {}

    def force(self, method: str, *kinds: str) -> None:
        """Make the next calls of ``method`` fail with ``kinds``, in order, whatever the rate."""
        self._forced.setdefault(method, []).extend(kinds)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in FAULTED_METHODS:
            return attribute
        return lambda **request: self._call(name, attribute, request)

    @property
    def lost_commits(self) -> int:
        """Transactions applied whose response the caller never got."""
        return self.injected_by_method["transact_write_items", "lost_response"]

    def _call(self, name: str, method: Callable[..., Any], request: dict[str, Any]) -> Any:
        self.calls[name] += 1
        forced = self._forced.get(name)
        if forced:
            kind = forced.pop(0)
        elif not self.enabled or self.rng.random() >= self.rate:
            return method(**request)
        else:
            kind = self.rng.choice(
                [
                    kind
                    for kind in self.kinds
                    if kind != "conflict_cancellation" or name == "transact_write_items"
                ]
            )
        operation = "".join(part.title() for part in name.split("_"))
        if kind == "lost_response":
            method(**request)  # applied (a real error raised here is the true answer)
            self._count(name, kind)
            raise self.rng.choice(
                [
                    ReadTimeoutError(endpoint_url=_ENDPOINT),
                    ConnectionClosedError(endpoint_url=_ENDPOINT),
                    client_error("InternalServerError", operation, 500),
                ]
            )
        self._count(name, kind)
        if kind == "throttling":
            raise client_error("ThrottlingException", operation)
        if kind == "transaction_conflict":
            raise client_error("TransactionConflictException", operation)
        if kind == "in_progress":
            raise client_error("TransactionInProgressException", operation)
        if kind == "internal_error":
            raise client_error("InternalServerError", operation, 500)
        if kind == "connection":
            raise EndpointConnectionError(endpoint_url=_ENDPOINT)
        # conflict_cancellation: one operation collided with another transaction.
        size = len(request.get("TransactItems", [])) or 1
        reasons = [{"Code": "None"} for _ in range(size)]
        reasons[self.rng.randrange(size)] = {
            "Code": "TransactionConflict",
            "Message": "Transaction is ongoing for the item",
        }
        raise client_error("TransactionCanceledException", operation, CancellationReasons=reasons)

    def _count(self, name: str, kind: str) -> None:
        self.injected[kind] += 1
        self.injected_by_method[name, kind] += 1
