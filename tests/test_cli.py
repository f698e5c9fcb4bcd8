"""The ``enrollkit`` command line: each command, on the embedded backend and on DynamoDB, and
its error messages (one line on stderr, exit status 1, never a traceback)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from enrollkit import (
    Author,
    CancelPolicy,
    Course,
    DeduplicationWindow,
    DynamoDBPersistence,
    Enrollment,
    InMemoryPersistence,
    Tenant,
    User,
    add_vacancies,
    cancel,
    enroll,
)
from enrollkit.cli import CommandError, main, render_table, show_enrollment, show_items
from tests.conftest import NOW, Endpoint

ROOT = Path(__file__).resolve().parents[1]
STEPS = [
    "1. An order with seats",
    "2. Users enrolled, each taking a seat",
    "3. A duplicate refused",
    "4. A cancel that returns the seat",
    "5. The schedule of reminders",
    "6. First access",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str, *fragments: str) -> None:
    assert status == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("enrollkit: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def tables() -> list[str]:
    suffix = uuid.uuid4().hex[:8]
    return ["--table-name", f"cli-enr-{suffix}", "--order-table-name", f"cli-ord-{suffix}"]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the parser, --help, --version -----------------------------------------------------------


def test_help_lists_the_commands_and_imports_neither_boto3_nor_the_operations() -> None:
    code = (
        "import sys\n"
        "from enrollkit.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')\n"
        "               or m.startswith('enrollkit.operations'))\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for command in ("demo", "create-tables", "show", "list", "backfill"):
        assert command in result.stdout


def test_python_dash_m_enrollkit_runs_the_same_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "enrollkit", "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"enrollkit \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize("command", ["demo", "create-tables", "show", "list", "backfill"])
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main([command, "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: enrollkit {command}" in out
    assert "--endpoint-url" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["show"],
        ["demo", "--nope"],
        ["create-tables", "extra"],
        ["list"],
        ["list", "--tenant", "t", "--user", "u", "--course", "c"],
        ["list", "--tenant", "t", "--status", "LOST"],
    ],
)
def test_usage_errors_exit_2_without_a_traceback(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "usage: enrollkit" in err
    assert "Traceback" not in err


# -- enrollkit demo ----------------------------------------------------------------------------


def test_demo_on_the_embedded_backend(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "demo")
    assert status == 0, err
    assert err == ""
    assert "embedded backend" in out
    positions = [out.index(step) for step in STEPS]
    assert positions == sorted(positions)
    # the order's seats, the enrollments, the refusal, the cancel, the schedule
    assert out.count("AVAILABLE") >= 3
    assert re.search(r"Ana Souza\s+[0-9a-f-]{36}\s+CREATED", out)
    assert re.search(r"Bruno Lima\s+[0-9a-f-]{36}\s+CREATED", out)
    assert "refused: DeduplicationConflictError" in out
    assert "ROLLBACK" in out and "the seat returned" in out
    assert "Seats: 3 added = 2 available + 1 held by active enrollments." in out
    for event in ("REMINDER_NO_ACCESS_3_DAYS", "ACCESS_PERIOD_REMINDER_30_DAYS", "COURSE_EXPIRED"):
        assert re.search(event + r"\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC", out), event
    assert "0 items left" in out
    # after the first access: IN_PROGRESS, the no-access reminder gone, a no-activity one due
    first_access = out.split("6. First access", 1)[1]
    assert "moves her enrollment to IN_PROGRESS" in first_access
    assert re.search(r"NO_ACTIVITY_7_DAYS\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+8 days", first_access)
    assert "REMINDER_NO_ACCESS_3_DAYS" not in first_access
    assert max(len(line) for line in out.splitlines()) <= 100


def test_demo_as_the_readme_runs_it() -> None:
    """The README's command ends in `enrollkit demo`: run the installed entry point."""
    script = Path(sys.executable).with_name("enrollkit")
    command = (
        [str(script), "demo"] if script.exists() else [sys.executable, "-m", "enrollkit", "demo"]
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert all(step in result.stdout for step in STEPS)


def test_the_documented_demo_output_matches_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    documented = (ROOT / "docs" / "cli.md").read_text("utf-8")
    _, out, _ = run(capsys, "demo")

    def skeleton(text: str) -> list[str]:
        return [line for line in text.splitlines() if re.match(r"^\d\. ", line)]

    assert skeleton(out) == STEPS
    for step in STEPS:
        assert step in documented
    # every line of the documented run that holds no date or id is printed as documented
    block = documented.split("$ enrollkit demo\n", 1)[1].split("```", 1)[0]
    variable = re.compile(r"\d{4}-\d\d-\d\d|[0-9a-f]{8}")
    for line in block.splitlines():
        if line.strip() and not variable.search(line):
            assert line in out, line


def test_demo_against_dynamodb_creates_the_tables_and_can_run_again(
    dynamodb_endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    names = tables()
    for _ in range(2):  # a second run on the same tables works too
        status, out, err = run(
            capsys, "demo", "--endpoint-url", dynamodb_endpoint.endpoint_url, *names
        )
        assert status == 0, err
        assert f"DynamoDB at {dynamodb_endpoint.endpoint_url}" in out
        assert all(step in out for step in STEPS)
        assert "Seats: 3 added = 2 available + 1 held by active enrollments." in out
    show_command = out.strip().splitlines()[-1].split()
    assert show_command[:2] == ["enrollkit", "show"]
    assert show_command[-4:] == names
    status, shown, err = run(capsys, *show_command[1:])
    assert status == 0, err
    assert shown.startswith(f"Enrollment {show_command[2]}\n")
    assert re.search(r"lock +[0-9a-f]{16}\.\.\. held until ", shown), shown
    assert re.search(r"seat +order \S+, slot ", shown), shown
    status, shown, err = run(capsys, *show_command[1:], "--items")
    assert status == 0, err
    assert "/ 0  -- the enrollment" in shown
    assert "Its lock item" in shown and "Its seat in the order" in shown


# -- enrollkit create-tables -----------------------------------------------------------------


def test_create_tables_creates_both_and_is_idempotent(
    dynamodb_endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    names = tables()
    for _ in range(2):
        status, out, err = run(
            capsys, "create-tables", "--endpoint-url", dynamodb_endpoint.endpoint_url, *names
        )
        assert status == 0, err
        assert f"Tables ready at {dynamodb_endpoint.endpoint_url}" in out
        for table in (names[1], names[3]):
            assert re.search(
                table + r"\s+ACTIVE\s+id \(S\) / sk \(S\)\s+ttl ENABLED\s+NEW_AND_OLD_IMAGES", out
            ), out
    store = DynamoDBPersistence(names[1], names[3], endpoint_url=dynamodb_endpoint.endpoint_url)
    description = store.client.describe_table(TableName=names[1])["Table"]
    assert [key["AttributeName"] for key in description["KeySchema"]] == ["id", "sk"]


# -- enrollkit show --------------------------------------------------------------------------


def _seeded(store: InMemoryPersistence | DynamoDBPersistence, now: datetime) -> tuple[str, str]:
    """An active enrollment with a seat and a lock, and a canceled one."""
    course = Course(id="nr-10", name="NR-10 Electrical Safety", access_period=90)
    store.put_item({"id": "order-1", "sk": "0"}, table_name=store.order_table_name)
    seats = add_vacancies(
        org_id="acme",
        order_id="order-1",
        course=course,
        quantity=2,
        persistence_layer=store,
        now=now,
    )
    ids = []
    for user_id, seat in zip(("ana", "bruno"), seats, strict=True):
        enrollment = Enrollment(
            user=User(id=user_id, name=user_id.title(), email=f"{user_id}@example.com"),
            course=course,
        )
        enroll(
            enrollment,
            tenant=Tenant(id="acme", name="Acme Training"),
            persistence_layer=store,
            vacancy=seat,
            deduplication_window=DeduplicationWindow(offset_days=10),
            cancel_policy=CancelPolicy(days=7),
            now=now,
        )
        ids.append(enrollment.id)
    cancel(ids[1], author=Author(id="admin", name="Admin"), persistence_layer=store, now=now)
    return ids[0], ids[1]


def test_show_prints_the_item_collection(
    dynamodb_endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    names = tables()
    store = DynamoDBPersistence(names[1], names[3], endpoint_url=dynamodb_endpoint.endpoint_url)
    store.create_tables()
    active, canceled = _seeded(store, datetime.now(timezone.utc))

    status, out, err = run(
        capsys, "show", active, "--items", "--endpoint-url", dynamodb_endpoint.endpoint_url, *names
    )
    assert status == 0, err
    assert out.startswith(f"Enrollment {active}: 9 items in table '{names[1]}'")
    for sk in (
        "0",
        "metadata#tenant",
        "metadata#lock",
        "metadata#deduplication_window",
        "cancel_policy",
        "parent_vacancy",
        "schedules#reminder_no_access_3_days",
        "schedules#access_period_reminder_30_days",
        "schedules#course_expired",
    ):
        assert f"  {active} / {sk}" in out
    assert "Its lock item (partition 'lock'):" in out
    assert f"enrollment_id  {active}" in out
    assert "status         USED" in out
    assert re.search(r"ttl\s+\d+ = \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in ", out)

    status, out, err = run(
        capsys,
        "show",
        canceled,
        "--items",
        "--endpoint-url",
        dynamodb_endpoint.endpoint_url,
        *names,
    )
    assert status == 0, err
    assert "status                 CANCELED" in out
    assert f"{canceled} / canceled_date  -- who canceled it" in out
    assert "author         {id: admin, name: Admin}" in out
    assert "schedules#" not in out and "Its lock item" not in out


def test_show_marks_expired_items_awaiting_deletion() -> None:
    store = InMemoryPersistence()
    enrolled_at = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    active, _ = _seeded(store, enrolled_at)
    text = show_items(store, active, now=enrolled_at + timedelta(days=4))
    assert re.search(
        r"schedules#reminder_no_access_3_days.*\n(.*\n)*?.*ttl .*2026-01-08 09:00 UTC "
        r"\(expired 1 day ago, awaiting DynamoDB's deletion\)",
        text,
    ), text
    assert "(in 86 days)" in text  # course_expired


def test_show_renders_a_ttl_written_in_milliseconds(
    persistence: InMemoryPersistence | DynamoDBPersistence,
) -> None:
    """A TTL in milliseconds is past year 9999 as seconds: no datetime holds it (it was
    a traceback). DynamoDB never expires such an item; show says so, and what it meant."""
    now = datetime(2026, 11, 29, tzinfo=timezone.utc)
    in_millis = int(datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc).timestamp()) * 1000
    persistence.put_item({"id": "enr-ms", "sk": "0", "status": "PENDING"})
    for sk, ttl in (("schedules#course_expired", in_millis), ("cancel_policy", -(10**15))):
        persistence.put_item({"id": "enr-ms", "sk": sk, "ttl": ttl})
    text = show_items(persistence, "enr-ms", now=now)
    assert (
        f"ttl  {in_millis} (not epoch seconds: after year 9999, so DynamoDB never expires it; "
        "as milliseconds it would be 2026-12-01 12:00 UTC)"
    ) in text, text
    assert f"ttl  {-(10**15)} (not epoch seconds: before year 1, so DynamoDB never" in text


def test_show_prints_the_typed_record() -> None:
    store = InMemoryPersistence()
    enrolled_at = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    active, canceled = _seeded(store, enrolled_at)
    text = show_enrollment(store, active, now=enrolled_at + timedelta(days=4))
    assert text.startswith(f"Enrollment {active}\n")
    assert "  tenant    acme\n" in text
    assert "  user      ana (Ana <ana@example.com>)" in text
    assert "  status    PENDING" in text
    assert re.search(
        r"lock +[0-9a-f]{16}\.\.\. held until 2026-03-26 09:00 UTC \(in 76 days\), 10 days", text
    )
    assert re.search(r"seat +order order-1, slot \S+ \(acme\)", text)
    # The cancel window (7 days) is open; the 3-day reminder is due already: left out.
    assert "cancel    allowed until 2026-01-12 09:00 UTC (in 3 days)" in text
    assert "reminder_no_access_3_days" not in text
    assert re.search(r"course_expired +2026-04-05 09:00 UTC \(in 86 days\)", text)
    text = show_enrollment(store, canceled, now=enrolled_at)
    assert "status    CANCELED" in text and "canceled  by Admin (admin)" in text
    assert "Schedule: nothing to come" in text and "seat      none" in text


def test_show_says_which_item_it_cannot_read_and_points_to_the_raw_items() -> None:
    store = InMemoryPersistence()
    _seeded(store, NOW)
    store.put_item({"id": "odd", "sk": "0", "status": "PENDING"})
    with pytest.raises(CommandError) as raised:
        show_enrollment(store, "odd", now=NOW)
    assert str(raised.value) == (
        "item 'odd'/'0': attribute 'metadata__tenant_id' is missing, not str "
        "(see the raw items: enrollkit show odd --items)"
    )


def test_list_pages_through_a_tenants_enrollments(
    dynamodb_endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    names = tables()
    store = DynamoDBPersistence(names[1], names[3], endpoint_url=dynamodb_endpoint.endpoint_url)
    store.create_tables()
    active, canceled = _seeded(store, NOW)
    enroll(
        Enrollment(
            user=User(id="ana", name="Ana", email="ana@example.com"),
            course=Course(id="other", name="Other", access_period=30),
        ),
        tenant=Tenant(id="globex", name="Globex"),
        persistence_layer=store,
        now=NOW,
    )
    endpoint = ["--endpoint-url", dynamodb_endpoint.endpoint_url, *names]
    status, out, err = run(capsys, "list", "--tenant", "acme", "--limit", "1", *endpoint)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["enrollment", "user", "course", "status", "created"]
    assert len(lines[2].split()) == 7 and lines[2].split()[0] in (active, canceled)
    assert lines[-2] == "Next page:"
    next_page = lines[-1].split()
    assert next_page[:6] == ["enrollkit", "list", "--tenant", "acme", "--limit", "1"]
    assert next_page[6:-2] == endpoint
    status, out, err = run(capsys, *next_page[1:])
    assert status == 0, err
    assert "Next page" not in out
    listed = {lines[2].split()[0], out.splitlines()[2].split()[0]}
    assert listed == {active, canceled}
    status, out, err = run(capsys, "list", "--tenant", "acme", "--status", "CANCELED", *endpoint)
    assert status == 0, err
    assert [line.split()[0] for line in out.splitlines()[2:]] == [canceled]
    status, out, err = run(capsys, "list", "--tenant", "acme", "--user", "nobody", *endpoint)
    assert (status, out) == (0, "No enrollments.\n")
    status, _, err = run(capsys, "list", "--tenant", "acme", "--cursor", "forged", *endpoint)
    assert_one_line_error(status, err, "not a cursor of this listing")


def test_show_refuses_an_unknown_id_on_the_embedded_backend() -> None:
    with pytest.raises(CommandError, match="no enrollment 'nope' in table 'enrollments'"):
        show_enrollment(InMemoryPersistence(), "nope")


# -- errors: one line, exit status 1 ------------------------------------------------------------


def test_show_an_unknown_id(
    dynamodb_endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    names = tables()
    assert (
        run(capsys, "create-tables", "--endpoint-url", dynamodb_endpoint.endpoint_url, *names)[0]
        == 0
    )
    status, out, err = run(
        capsys, "show", "no-such-id", "--endpoint-url", dynamodb_endpoint.endpoint_url, *names
    )
    assert out == ""
    assert_one_line_error(status, err, f"no enrollment 'no-such-id' in table '{names[1]}'")


def test_show_with_a_missing_table(
    dynamodb_endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    names = tables()
    status, _, err = run(
        capsys, "show", "some-id", "--endpoint-url", dynamodb_endpoint.endpoint_url, *names
    )
    # The hint is the command to type: with the table names given (it dropped them).
    assert_one_line_error(
        status,
        err,
        f"table '{names[1]}' does not exist at {dynamodb_endpoint.endpoint_url}",
        f"enrollkit create-tables --endpoint-url {dynamodb_endpoint.endpoint_url} "
        f"--table-name {names[1]} --order-table-name {names[3]})",
    )


def test_create_tables_refuses_an_existing_table_of_another_layout(
    dynamodb_endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    names = tables()
    store = DynamoDBPersistence(names[1], names[3], endpoint_url=dynamodb_endpoint.endpoint_url)
    store.client.create_table(
        TableName=names[1],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    status, out, err = run(
        capsys, "create-tables", "--endpoint-url", dynamodb_endpoint.endpoint_url, *names
    )
    assert out == ""
    assert_one_line_error(
        status,
        err,
        f"table '{names[1]}' exists with another layout",
        "key schema is pk (S), not id (S) / sk (S)",
        "streams are off, not NEW_AND_OLD_IMAGES",
    )


def test_show_an_invalid_id_needs_no_network(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{unused_port()}"
    status, _, err = run(capsys, "show", "a#b", "--endpoint-url", endpoint)
    assert_one_line_error(status, err, "not an enrollment id: must not contain '#'", "(got 'a#b')")


@pytest.mark.parametrize(
    "argv",
    [["demo"], ["create-tables"], ["show", "some-id"]],
    ids=["demo", "create-tables", "show"],
)
def test_an_unreachable_endpoint(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{unused_port()}"
    status, out, err = run(capsys, *argv, "--endpoint-url", endpoint)
    assert out == ""
    assert_one_line_error(status, err, "DynamoDB could not be reached", endpoint)


def test_a_malformed_endpoint_url(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "create-tables", "--endpoint-url", "not a url")
    assert_one_line_error(status, err, "cannot create a DynamoDB client", "not a url")


def test_no_region_for_aws(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    status, _, err = run(capsys, "create-tables")
    assert_one_line_error(status, err, "no AWS region", "--region")


def test_a_local_endpoint_needs_no_configured_credentials(
    dynamodb_endpoint: Endpoint,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    status, _, err = run(
        capsys, "create-tables", "--endpoint-url", dynamodb_endpoint.endpoint_url, *tables()
    )
    assert status == 0, err


def test_a_bug_is_not_hidden(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only errors a user can act on become one line; a bug keeps its traceback."""
    import enrollkit.cli as cli

    def broken(_: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "cmd_demo", broken)
    with pytest.raises(ZeroDivisionError):
        main(["demo"])


def test_render_table() -> None:
    table = render_table(("a", "long header"), [(1, "x"), ("wide cell", "")], indent=0)
    assert table.splitlines() == [
        "a          long header",
        "---------  -----------",
        "1          x",
        "wide cell",
    ]


def test_a_closed_pipe_is_not_an_error() -> None:
    """`enrollkit demo | head -3`: the reader leaves early; no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "enrollkit", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the command writes anything
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr


def test_show_refuses_the_locks_partition_as_an_id(capsys: pytest.CaptureFixture[str]) -> None:
    # 'lock' holds every (user, course) lock: reading it as an enrollment would read them all.
    endpoint = f"http://127.0.0.1:{unused_port()}"
    status, _, err = run(capsys, "show", "lock", "--endpoint-url", endpoint)
    assert_one_line_error(status, err, "not an enrollment id: 'lock'", "reserved")


# -- enrollkit backfill --------------------------------------------------------------------------


def unreadable_in_run(output: str) -> int:
    """The unreadable count of a backfill run's last progress line ("..., N unreadable")."""
    last = [line for line in output.splitlines() if line.startswith("scanned ")][-1]
    return int(last.rsplit(", ", 1)[1].split()[0])


def test_backfill_command_reports_progress_keeps_a_checkpoint_and_resumes(
    dynamodb_endpoint: Endpoint,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from enrollkit import list_enrollments
    from enrollkit.operations import backfill
    from tests.test_reads import seed_original

    names = tables()
    endpoint = ["--endpoint-url", dynamodb_endpoint.endpoint_url]
    assert run(capsys, "create-tables", *endpoint, *names)[0] == 0
    store = DynamoDBPersistence(names[1], names[3], endpoint_url=dynamodb_endpoint.endpoint_url)
    originals = [seed_original(store, n, tenant="acme", minute=n) for n in range(5)]
    store.put_item({"id": "broken", "sk": "0", "metadata__tenant_id": "acme"})
    checkpoint = tmp_path / "backfill.checkpoint"

    # The first run dies after its second page: the checkpoint file holds where it was.
    real = backfill.backfill_indexes

    def dies_after_two_pages(**kwargs: object) -> Iterator[backfill.BackfillProgress]:
        pages = real(**kwargs)  # type: ignore[arg-type]
        yield next(pages)
        yield next(pages)
        raise KeyboardInterrupt

    monkeypatch.setattr(backfill, "backfill_indexes", dies_after_two_pages)
    status, out, err = run(
        capsys, "backfill", "--checkpoint", str(checkpoint), "--page-size", "2", *endpoint, *names
    )
    assert status != 0 and "interrupted" in err
    assert "scanned 2 items" in out and "scanned 4 items" in out
    assert checkpoint.read_text("utf-8").strip()
    first_out = out

    monkeypatch.setattr(backfill, "backfill_indexes", real)
    status, out, err = run(
        capsys, "backfill", "--checkpoint", str(checkpoint), "--page-size", "2", *endpoint, *names
    )
    assert status == 0, err
    assert out.startswith(f"Resuming from {checkpoint}.")
    assert "Done: every readable enrollment is in the listing indexes." in out
    # The unreadable item is told once, on its page, and counted from then on.
    problems = [line for line in (first_out + out).splitlines() if "left as is:" in line]
    assert problems == ["  left as is: item 'broken'/'0': attribute 'user' is missing, not Mapping"]
    # Each run counts its own: the item was on a page of one of them.
    assert unreadable_in_run(first_out) + unreadable_in_run(out) == 1
    assert not checkpoint.exists()
    listed = list_enrollments(persistence_layer=store, tenant_id="acme").items
    assert sorted(s.id for s in listed) == sorted(originals)
