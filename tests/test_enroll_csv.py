"""``enrollkit enroll-csv``: a malformed file refused before anything is written, a result
file row by row, and a re-run after a crash that finishes the job without a second seat."""

from __future__ import annotations

import argparse
import csv
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from enrollkit import (
    Course,
    DynamoDBPersistence,
    InMemoryPersistence,
    Tenant,
    add_vacancies,
    seat_ledger,
)
from enrollkit.cli import build_parser, main
from enrollkit.cli.enroll_csv import read_users, run
from enrollkit.cli.errors import CommandError
from enrollkit.persistence.base import BasePersistence
from tests.conftest import NOW
from tests.support.invariants import snapshot
from tests.support.moto_server import MotoServer
from tests.support.seats import CrashingPersistence, SimulatedCrash

TENANT = Tenant(id="acme", name="Acme Training")
COURSE = Course(id="nr-10", name="NR-10 Electrical Safety", access_period=90)
ORDER = "order-1"


def write_csv(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def users_file(tmp_path: Path, count: int) -> Path:
    rows = [f"u{n},User {n},u{n}@example.com" for n in range(1, count + 1)]
    return write_csv(tmp_path / "users.csv", "id,name,email", *rows)


def results(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def with_order(store: BasePersistence, seats: int) -> None:
    store.put_item({"id": ORDER, "sk": "0", "org_id": TENANT.id}, table_name=store.order_table_name)
    add_vacancies(
        org_id=TENANT.id,
        order_id=ORDER,
        course=COURSE,
        quantity=seats,
        persistence_layer=store,
        now=NOW,
    )


def args_for(file: Path, *options: str) -> argparse.Namespace:
    return build_parser().parse_args(
        ["enroll-csv", str(file), "--tenant", TENANT.id, "--course", COURSE.id, *options]
    )


def run_on(store: BasePersistence, file: Path, *options: str, now: datetime = NOW) -> int:
    return run(args_for(file, *options), read_users(file), store, now=now)


# -- a malformed file ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "fragments"),
    [
        (["id,name", "u1,Ana"], ["missing: email", "line 1"]),
        (
            ["id,name,email", "u1,Ana,ana@example.com", "u#2,Bruno,b@example.com"],
            ["line 3: user id: must not contain '#'"],
        ),
        (
            ["id,name,email", "u1,Ana,not-an-email", "u2,Bruno,b@example.com"],
            ["line 2: user email: not an email address"],
        ),
        (
            ["id,name,email", "u1,Ana,a@example.com", "u2,B,b@example.com", "u1,A,c@example.com"],
            ["line 4: user id 'u1' is also on line 2"],
        ),
        (
            ["id,name,email", "u\u200b1,Ana,a@example.com"],
            ["line 2: user id: must not contain invisible characters"],
        ),
        (["id,name,email", "u1,Ana"], ["line 2: user email"]),
        (["id,name,email"], ["no rows"]),
    ],
)
def test_a_malformed_file_is_refused_before_anything_is_written(
    tmp_path: Path, lines: list[str], fragments: list[str]
) -> None:
    store = InMemoryPersistence()
    with_order(store, 3)
    before = snapshot(store)
    file = write_csv(tmp_path / "users.csv", *lines)
    with pytest.raises(CommandError) as raised:
        run_on(store, file, "--order", ORDER)
    text = str(raised.value)
    assert "\n" not in text
    for fragment in fragments:
        assert fragment in text
    assert snapshot(store) == before
    assert not (tmp_path / "users.results.csv").exists()


def test_every_bad_line_is_listed(tmp_path: Path) -> None:
    file = write_csv(
        tmp_path / "users.csv",
        "ID, Name ,EMAIL",
        "u1,Ana,a@example.com",
        "a#b,X,x@example.com",
        "u3,,c@example.com",
        "u1,Ana again,d@example.com",
    )
    with pytest.raises(CommandError) as raised:
        read_users(file)
    text = str(raised.value)
    assert text.startswith("users.csv has 3 bad rows, nothing was enrolled: line 3:")
    assert "line 4: user name" in text and "line 5: user id 'u1' is also on line 2" in text


# -- enrolling ------------------------------------------------------------------------------


def test_enrolls_every_row_with_a_seat_and_writes_the_results(tmp_path: Path) -> None:
    store = InMemoryPersistence()
    with_order(store, 5)
    file = users_file(tmp_path, 4)
    assert run_on(store, file, "--order", ORDER) == 0
    rows = results(tmp_path / "users.results.csv")
    assert [(r["row"], r["user_id"], r["outcome"]) for r in rows] == [
        ("2", "u1", "ENROLLED"),
        ("3", "u2", "ENROLLED"),
        ("4", "u3", "ENROLLED"),
        ("5", "u4", "ENROLLED"),
    ]
    ledger = seat_ledger(order_id=ORDER, persistence_layer=store)
    assert set(ledger.holders()) == {r["enrollment_id"] for r in rows}
    root = store.query(rows[0]["enrollment_id"])[0]
    assert root["course"] == COURSE.model_dump()  # name and access period from the seats


def test_rows_beyond_the_seats_are_reported_and_fail_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = InMemoryPersistence()
    with_order(store, 2)
    file = users_file(tmp_path, 3)
    assert run_on(store, file, "--order", ORDER) == 1
    outcomes = [r["outcome"] for r in results(tmp_path / "users.results.csv")]
    assert sorted(outcomes) == ["ENROLLED", "ENROLLED", "NO_SEAT"]
    out, err = capsys.readouterr()
    assert "3 rows: 2 ENROLLED, 1 NO_SEAT" in out
    assert "1 rows were not enrolled" in err


def test_without_an_order_the_course_comes_from_the_options(tmp_path: Path) -> None:
    store = InMemoryPersistence()
    file = users_file(tmp_path, 2)
    with pytest.raises(CommandError, match="--access-period is required"):
        run_on(store, file)
    result_file = tmp_path / "out.csv"
    options = ("--access-period", "30", "--course-name", "NR-10", "--results", str(result_file))
    assert run_on(store, file, *options) == 0
    assert run_on(store, file, *options) == 0  # a re-run writes nothing new
    rows = results(result_file)
    assert [r["outcome"] for r in rows] == ["ALREADY_ENROLLED", "ALREADY_ENROLLED"]
    root = store.query(rows[0]["enrollment_id"])[0]
    assert root["course"] == {"id": "nr-10", "name": "NR-10", "access_period": 30}


def test_options_that_contradict_the_orders_seats_are_refused(tmp_path: Path) -> None:
    store = InMemoryPersistence()
    with_order(store, 2)
    with pytest.raises(CommandError, match="the order's seats are for"):
        run_on(store, users_file(tmp_path, 1), "--order", ORDER, "--access-period", "30")


def test_a_rerun_after_a_crash_finishes_without_a_second_seat(tmp_path: Path) -> None:
    inner = InMemoryPersistence()
    with_order(inner, 40)
    file = users_file(tmp_path, 30)
    crashing = CrashingPersistence(inner, crash_after=12)
    with pytest.raises(SimulatedCrash):
        run_on(crashing, file, "--order", ORDER)
    assert len(seat_ledger(order_id=ORDER, persistence_layer=inner).holders()) == 12

    assert run_on(inner, file, "--order", ORDER) == 0
    rows = results(tmp_path / "users.results.csv")
    outcomes = [r["outcome"] for r in rows]
    assert outcomes.count("ALREADY_ENROLLED") == 12
    assert outcomes.count("ENROLLED") == 18
    ledger = seat_ledger(order_id=ORDER, persistence_layer=inner)
    assert set(ledger.holders()) == {r["enrollment_id"] for r in rows}
    assert len(ledger.available(COURSE.id)) == 10

    assert run_on(inner, file, "--order", ORDER) == 0  # all seats for the file are taken
    assert len(seat_ledger(order_id=ORDER, persistence_layer=inner).available(COURSE.id)) == 10


@pytest.mark.moto
def test_the_command_on_dynamodb(
    moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suffix = uuid.uuid4().hex[:8]
    names = ("--table-name", f"enrollments-{suffix}", "--order-table-name", f"orders-{suffix}")
    store = DynamoDBPersistence(names[1], names[3], endpoint_url=moto.endpoint_url)
    store.create_tables()
    with_order(store, 3)
    file = users_file(tmp_path, 3)
    argv = ["enroll-csv", str(file), "--tenant", TENANT.id, "--course", COURSE.id]
    argv += ["--order", ORDER, "--endpoint-url", moto.endpoint_url, *names]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "3 rows: 3 ENROLLED" in out
    assert err == ""  # not a terminal: no progress bar
    assert len(seat_ledger(order_id=ORDER, persistence_layer=store).holders()) == 3
    assert main(argv) == 0
    assert "3 rows: 3 ALREADY_ENROLLED" in capsys.readouterr().out


def test_a_bad_file_needs_no_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write_csv(tmp_path / "users.csv", "id,name", "u1,Ana")
    argv = ["enroll-csv", str(file), "--tenant", "acme", "--course", "c"]
    assert main([*argv, "--endpoint-url", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing: email" in err
