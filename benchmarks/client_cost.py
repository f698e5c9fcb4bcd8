"""Goal 3: enrollkit's own client-side CPU on the DynamoDB path, against boto3's own cost
of sending the very same request. HTTP is short-circuited: a botocore ``before-send``
handler answers every request with a canned response, so only client-side work counts.
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from benchmarks.goals import Goal, micros
from benchmarks.workload import cancel_one, enroll_one, median, new_enrollments, per_call
from enrollkit import InMemoryPersistence

GOAL = Goal("<= 0.25x", maximum=0.25)
_FIGURES = (
    "enroll",
    "boto3 enroll",
    "boto3 enroll, in enroll()",
    "cancel",
    "boto3 cancel",
    "boto3 cancel, in cancel()",
)
# Parts of enrollkit's own cost that are the DynamoDB backend's (the rest is the operations,
# the layout and the transaction builder, shared with the embedded backend).
_PARTS = ("enroll request", "cancel request", "cancel response")


class _Body:
    """What botocore reads a response body from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._data


class CannedDynamoDB:
    """A boto3 client whose requests never leave the process."""

    def __init__(self) -> None:
        import boto3

        self.client = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:9",  # never contacted
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        self.bodies: dict[str, bytes] = {}
        self.sent: Counter[str] = Counter()
        self.captured: dict[str, dict[str, Any]] = {}
        events = self.client.meta.events
        events.register("before-send.dynamodb.*", self._answer)
        events.register("provide-client-params.dynamodb.*", self._capture)

    def stop_capturing(self) -> None:
        """Captured requests are replayed in the timing: the capture must not be timed."""
        self.client.meta.events.unregister("provide-client-params.dynamodb.*", self._capture)

    def _answer(self, request: Any, **_: object) -> Any:
        from botocore.awsrequest import AWSResponse

        operation = request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1]
        self.sent[operation] += 1
        from botocore.awsrequest import HTTPHeaders

        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["x-amzn-RequestId"] = "bench"
        body = self.bodies.get(operation, b"{}")
        return AWSResponse(request.url, 200, headers, _Body(body))

    def _capture(self, params: dict[str, Any], model: Any, **_: object) -> None:
        self.captured[model.name] = copy.deepcopy(params)


def _query_answer(items: list[dict[str, Any]]) -> bytes:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    wire = [{name: serializer.serialize(value) for name, value in item.items()} for item in items]
    return json.dumps({"Items": wire, "Count": len(wire), "ScannedCount": len(wire)}).encode()


class _RecordedOperations:
    """The operations each transaction of ``store`` carried, in order."""

    def __init__(self, store: Any) -> None:
        self.transactions: list[list[Any]] = []
        self._store = store
        self._execute = store.execute_transaction
        store.execute_transaction = self._record

    def _record(self, operations: Any, **arguments: Any) -> None:
        self.transactions.append(list(operations))
        self._execute(operations, **arguments)

    def stop(self) -> None:
        del self._store.execute_transaction


class _ClientTime:
    """CPU time spent inside the client's calls, as enrollkit makes them: the client's
    ``query`` and ``transact_write_items`` are timed where enrollkit calls them."""

    METHODS = ("query", "transact_write_items")

    def __init__(self, client: Any, clock: Callable[[], float]) -> None:
        self.seconds = 0.0
        self._client = client
        self._clock = clock
        for name in self.METHODS:
            setattr(client, name, self._timed(getattr(client, name)))

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(**request: Any) -> Any:
            start = self._clock()
            try:
                return method(**request)
            finally:
                self.seconds += self._clock() - start

        return timed

    def measure(
        self, run: Callable[[Any], object], arguments: Sequence[Any]
    ) -> tuple[float, float]:
        """Seconds per call of ``run`` over ``arguments`` (as ``per_call``), and of those
        the seconds inside the client."""
        self.seconds = 0.0
        total = per_call(run, arguments, self._clock)
        return total, self.seconds / len(arguments)

    def stop(self) -> None:
        for name in self.METHODS:
            delattr(self._client, name)  # the class's own method again


def run(calls: int = 100, rounds: int = 15) -> dict[str, float]:
    from enrollkit import DynamoDBPersistence
    from enrollkit.persistence.dynamodb import transact_items
    from enrollkit.persistence.marshal import deserialize_item

    print(
        f"DynamoDB path, client-side CPU only (canned responses at before-send): "
        f"CPU time, {rounds} rounds of {calls} calls, median of the rounds' ratios"
    )
    canned = CannedDynamoDB()
    store = DynamoDBPersistence(client=canned.client)
    client = canned.client

    # cancel() reads the enrollment's items: answer its Query with a real enrollment's.
    source = InMemoryPersistence()
    enrollment_id = enroll_one(source)
    canned.bodies["Query"] = _query_answer(source.query(enrollment_id))

    enroll_one(store)
    enroll_request = canned.captured["TransactWriteItems"]
    canned.sent.clear()
    recorded = _RecordedOperations(store)
    enroll_one(store)
    enroll_calls = dict(canned.sent)
    canned.sent.clear()
    cancel_one(store, enrollment_id)
    cancel_calls = dict(canned.sent)
    cancel_query, cancel_write = canned.captured["Query"], canned.captured["TransactWriteItems"]
    canned.stop_capturing()
    recorded.stop()
    enroll_operations, cancel_operations = recorded.transactions
    query_items = client.query(**cancel_query)["Items"]
    send_query, send_write = client.query, client.transact_write_items  # (not timed inside)

    # CPU time of this process (no server, no I/O), in short adjacent rounds: the ratio of
    # each round is taken, so load from other processes shifts both sides alike.
    clock = time.process_time
    inside = _ClientTime(client, clock)
    samples: dict[str, list[float]] = {name: [] for name in (*_FIGURES, *_PARTS)}
    for _ in range(rounds):
        enrollments = new_enrollments(calls)
        total, in_client = inside.measure(lambda e: enroll_one(store, e), enrollments)
        samples["enroll"].append(total)
        samples["boto3 enroll, in enroll()"].append(in_client)
        samples["boto3 enroll"].append(
            per_call(lambda _: send_write(**enroll_request), range(calls), clock)
        )
        total, in_client = inside.measure(lambda _: cancel_one(store, enrollment_id), range(calls))
        samples["cancel"].append(total)
        samples["boto3 cancel, in cancel()"].append(in_client)
        samples["boto3 cancel"].append(
            per_call(lambda _: send_query(**cancel_query), range(calls), clock)
            + per_call(lambda _: send_write(**cancel_write), range(calls), clock)
        )
        samples["enroll request"].append(
            per_call(lambda _: transact_items(enroll_operations), range(calls), clock)
        )
        samples["cancel request"].append(
            per_call(lambda _: transact_items(cancel_operations), range(calls), clock)
        )
        samples["cancel response"].append(
            per_call(lambda _: [deserialize_item(i) for i in query_items], range(calls), clock)
        )
    inside.stop()
    print(f"  requests per enroll(): {enroll_calls}; per cancel(): {cancel_calls}")
    print(
        "  (a) boto3's cost as the same requests sent alone, in a loop of their own; "
        "(b) as the CPU time inside the client's calls within enroll() and cancel()"
    )
    ratios = {}
    for op in ("enroll", "cancel"):
        for label, boto3_figure in (("a", f"boto3 {op}"), ("b", f"boto3 {op}, in {op}()")):
            totals, boto3_costs = samples[op], samples[boto3_figure]
            ratio = median([(t - b) / b for t, b in zip(totals, boto3_costs, strict=True)])
            ratios[f"{op} ({label})"] = ratio
            total, boto3_cost = median(totals), median(boto3_costs)
            print(
                f"  {op:7s} ({label}) total {micros(total)}  boto3 {micros(boto3_cost)}  "
                f"enrollkit's own {micros(total - boto3_cost)}  own/boto3 {ratio:5.2f}  "
                f"{GOAL.verdict(ratio)}"
            )
    parts = {name: median(samples[name]) * 1e6 for name in _PARTS}
    print(
        "  of enrollkit's own, the DynamoDB backend's: building the TransactWriteItems request "
        f"{parts['enroll request']:.1f} us per enroll, {parts['cancel request']:.1f} us per "
        f"cancel; reading the Query's items {parts['cancel response']:.1f} us per cancel"
    )
    return ratios
