"""``enrollkit deliver``: the sweeper from the command line, once or every N seconds.

It runs on the real clock, so its due events lie in the real past. DynamoDB Local's TTL
process deletes such items within seconds (before the command could sweep them: that is
the stream consumer's case), so these run on moto, which has no TTL process."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from enrollkit import DynamoDBPersistence, LifecycleEvent
from enrollkit.cli import main
from tests.support.lifecycle import enroll_one, status
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.moto


@pytest.fixture
def store(moto: MotoServer) -> DynamoDBPersistence:
    suffix = uuid.uuid4().hex[:8]
    persistence = DynamoDBPersistence(
        f"deliver-{suffix}", f"deliver-orders-{suffix}", endpoint_url=moto.endpoint_url
    )
    persistence.create_tables()
    return persistence


@pytest.fixture
def handlers_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "service_handlers.py").write_text(
        "from enrollkit import LifecycleEvent\n"
        "SENT = []\n"
        "HANDLERS = {LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS: SENT.append}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "service_handlers:HANDLERS"


def connection(store: DynamoDBPersistence) -> list[str]:
    return [
        "--endpoint-url",
        str(store.client.meta.endpoint_url),
        "--table-name",
        store.table_name,
        "--order-table-name",
        store.order_table_name,
    ]


def test_deliver_once_runs_the_handlers_then_finds_nothing_more(
    store: DynamoDBPersistence, handlers_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import service_handlers  # type: ignore[import-not-found]

    enroll_one(store, datetime.now(timezone.utc) - timedelta(days=5))  # the 3-day reminder: due
    assert main(["deliver", "--once", "--handlers", handlers_module, *connection(store)]) == 0
    out = capsys.readouterr().out
    assert f"Delivering due events from {store.table_name!r}" in out
    # the first run looks back 30 days (31 days of 16 shards); the next, at today only
    assert "delivered 1, failed 0, claimed 1, skipped 0 (496 queries" in out
    (sent,) = service_handlers.SENT
    assert sent.event is LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS and sent.enrollment_id == "enr-1"

    assert main(["deliver", "--handlers", handlers_module, *connection(store)]) == 0
    # (and yesterday's in the first hour of a day: the checkpoint's margin)
    assert re.search(
        r"delivered 0, failed 0, claimed 0, skipped 0 \((16|32) queries", capsys.readouterr().out
    )
    assert len(service_handlers.SENT) == 1


def test_deliver_every_runs_until_interrupted(
    store: DynamoDBPersistence, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    enroll_one(store, datetime.now(timezone.utc) - timedelta(days=95))  # expired 5 days ago
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("enrollkit.cli.deliver.time.sleep", sleep)
    assert main(["deliver", "--every", "60", "--no-handlers", *connection(store)]) == 130
    out = capsys.readouterr().out
    runs = [line for line in out.splitlines() if " delivered " in line]
    assert len(runs) == 2 and sleeps == [60, 60]
    assert "claimed 3" in runs[0] and "claimed 0" in runs[1]
    assert status(store, "enr-1") == "EXPIRED"


def test_deliver_wants_handlers_or_an_explicit_no(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["deliver", "--once"])
    assert exit_.value.code == 2
    assert "--handlers" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("nomodule", "MODULE:NAME"),
        ("no_such_module_here:HANDLERS", "cannot import"),
        ("enrollkit:__version__", "not a mapping"),
    ],
)
def test_deliver_refuses_handlers_it_cannot_use(
    reference: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deliver", "--handlers", reference, "--endpoint-url", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("enrollkit: error: ") and message in err and len(err.splitlines()) == 1
