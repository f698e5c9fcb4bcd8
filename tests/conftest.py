"""Fixtures: the contract tests run once per backend: the embedded one, DynamoDB through a
moto server, and AWS's own DynamoDB Local (where moto and DynamoDB Local disagree, DynamoDB
Local is the reference)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, Protocol

import pytest
from hypothesis import HealthCheck, settings

from enrollkit import (
    Course,
    DynamoDBPersistence,
    Enrollment,
    InMemoryPersistence,
    Tenant,
    User,
)
from enrollkit.persistence.base import BasePersistence
from enrollkit.persistence.indexes import TableIndexes
from tests.support import dynamodb_local, moto_server
from tests.support.table_pool import TABLES

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.register_profile(
    "long", deadline=None, max_examples=2000, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Ten years ahead of the real clock: DynamoDB Local's TTL process really deletes items whose
# ttl has passed on the real clock, so every ttl the tests derive from NOW must lie in the
# future. (Items a test treats as expired are expired relative to NOW, not to the real clock,
# which is exactly DynamoDB's TTL lag: expired, still stored.)
NOW = datetime(2036, 3, 2, 12, 30, 15, 123456, tzinfo=timezone.utc)

# The DynamoDB engines the contract runs on, besides the embedded backend.
ENGINES = ("moto", "dynamodb_local")


# Where moto is not DynamoDB, pinned as strict xfails so a moto fix shows up.
MOTO_OVERSIZED_UPDATE = (
    "moto refuses the whole request (ValidationException) where DynamoDB cancels the "
    "transaction with a ValidationError reason for the update: AWS lists 'an item size to "
    "update has exceeded the maximum allowed size' among TransactWriteItems' cancellation "
    "causes, and DynamoDB Local answers so"
)


class Endpoint(Protocol):
    endpoint_url: str


# -- scheduling -------------------------------------------------------------------------------

# The slowest tests, slowest first (measured: `pytest --durations=30`). They are started
# before all others, so that none of them starts last and keeps one worker busy after the
# others have run dry; xdist then hands out the rest one at a time (`--maxschedchunk 1`).
SLOWEST_FIRST = tuple(
    f"tests/{test}"
    for test in (
        "test_faults.py::test_state_machine_under_faults[moto]",
        "test_state_machine.py::test_state_machine_dynamodb[moto]",
        "test_faults.py::test_state_machine_under_faults[dynamodb_local]",
        "test_lifecycle_state_machine.py::test_lifecycle_state_machine_dynamodb[moto]",
        "test_lifecycle_state_machine.py::test_lifecycle_state_machine_dynamodb[dynamodb_local]",
        "test_create_tables.py::test_an_existing_table_without_ttl_gets_it[dynamodb_local]",
        "test_state_machine.py::test_state_machine_dynamodb[dynamodb_local]",
        "test_delivery.py::test_nothing_is_delivered_for_a_canceled_enrollment[moto]",
        "test_lifecycle_state_machine.py::test_lifecycle_state_machine_embedded",
        "test_delivery.py::test_after_an_outage_of_any_length_everything_missed_is_delivered[moto]",
        "test_delivery.py::test_each_event_is_delivered_once[moto]",
        "test_state_machine.py::test_state_machine_embedded",
        "test_delivery.py::test_each_event_is_delivered_once[dynamodb_local]",
        "test_delivery.py::test_nothing_is_delivered_for_a_canceled_enrollment[dynamodb_local]",
    )
)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {nodeid: position for position, nodeid in enumerate(SLOWEST_FIRST)}
    slowest = sorted((item for item in items if item.nodeid in rank), key=lambda i: rank[i.nodeid])
    others = [item for item in items if item.nodeid not in rank]
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    items[:] = [*_balanced_start(slowest, workers), *others]


def _balanced_start(slowest: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """xdist's load scheduling hands each worker two tests to start with (worker k the k-th
    pair): pair the slowest with the least slow of the first 2 * workers tests."""
    first, rest = slowest[: 2 * workers], slowest[2 * workers :]
    pairs = [(first[k], first[len(first) - 1 - k]) for k in range(len(first) // 2)]
    ordered = [item for pair in pairs for item in pair]
    if len(first) % 2:
        ordered.append(first[len(first) // 2])
    return [*ordered, *rest]


@pytest.fixture(scope="session")
def moto() -> Iterator[moto_server.MotoServer]:
    server = moto_server.start()
    _ENGINE_BY_URL[server.endpoint_url] = "moto"
    TABLES.serve(server.endpoint_url, remake_written_tables=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dynamodb_local_server() -> Iterator[dynamodb_local.DynamoDBLocal]:
    reason = dynamodb_local.unavailable()
    if reason is not None:
        if dynamodb_local.required():
            pytest.fail(f"CI must run DynamoDB Local: {reason}", pytrace=False)
        pytest.skip(reason)
    server = dynamodb_local.start(dynamodb_local.TEST_JVM_OPTIONS)
    _ENGINE_BY_URL[server.endpoint_url] = "dynamodb_local"
    TABLES.serve(server.endpoint_url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def idle_dynamodb_local(
    dynamodb_local_server: dynamodb_local.DynamoDBLocal,
) -> Iterator[dynamodb_local.DynamoDBLocal]:
    """A second DynamoDB Local of the worker's own, for the few tests that wait on its
    background jobs (index creation, TTL deletion): it runs them on ten threads, and every
    table with TTL on holds one for ten seconds at a time, so on the shared instance they
    can wait minutes behind other tests' tables. (Requesting the shared one first makes it
    skip, or fail under CI, just as the shared one does.)"""
    server = dynamodb_local.start(dynamodb_local.TEST_JVM_OPTIONS)
    _ENGINE_BY_URL[server.endpoint_url] = "dynamodb_local"
    TABLES.serve(server.endpoint_url)
    yield server
    server.stop()


def engine_param(engine: str) -> Any:
    """A pytest param for one DynamoDB engine, with its marker."""
    return pytest.param(engine, marks=getattr(pytest.mark, engine))


@pytest.fixture(params=[engine_param(engine) for engine in ENGINES])
def dynamodb_endpoint(request: pytest.FixtureRequest) -> Endpoint:
    """A DynamoDB endpoint: each test using it runs on moto and on DynamoDB Local."""
    return endpoint_of(request, request.param)


def endpoint_of(request: pytest.FixtureRequest, engine: str) -> Endpoint:
    fixture = "moto" if engine == "moto" else "dynamodb_local_server"
    endpoint: Endpoint = request.getfixturevalue(fixture)
    return endpoint


def idle_if_dynamodb_local(request: pytest.FixtureRequest, endpoint: Endpoint) -> Endpoint:
    """``endpoint``, or on DynamoDB Local the worker's idle instance (``idle_dynamodb_local``),
    for a test that waits on DynamoDB Local's background jobs."""
    if engine_of(endpoint) != "dynamodb_local":
        return endpoint
    idle: Endpoint = request.getfixturevalue("idle_dynamodb_local")
    return idle


def engine_of(store: object) -> str:
    """``memory``, ``moto`` or ``dynamodb_local``: which engine a test's store (or endpoint)
    runs on."""
    if isinstance(store, (dynamodb_local.DynamoDBLocal, moto_server.MotoServer)):
        return _ENGINE_BY_URL[store.endpoint_url]
    if not isinstance(store, DynamoDBPersistence):
        return "memory"
    return _ENGINE_BY_URL[str(store.client.meta.endpoint_url).rstrip("/")]


def is_dynamodb_local(store: object) -> bool:
    return engine_of(store) == "dynamodb_local"


_ENGINE_BY_URL: dict[str, str] = {}


def new_dynamodb(server: Endpoint, indexes: TableIndexes | None = None) -> DynamoDBPersistence:
    """Two empty tables on a shared DynamoDB endpoint, for one test: the worker's pair for
    this layout, emptied after its last use, or a new one (tests/support/table_pool.py).
    They go back to the pool with drop_tables(), or when the test ends."""
    return TABLES.lease(server.endpoint_url, indexes)


def fresh_dynamodb(server: Endpoint, indexes: TableIndexes | None = None) -> DynamoDBPersistence:
    """Newly created, uniquely named tables: for tests about the tables themselves (their
    streams, indexes added later), which a reused pair would not show as new ones do."""
    suffix = uuid.uuid4().hex[:8]
    persistence = DynamoDBPersistence(
        f"enrollments-{suffix}",
        f"orders-{suffix}",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        indexes=indexes,
    )
    persistence.create_tables()
    return persistence


def drop_tables(persistence: DynamoDBPersistence) -> None:
    """Done with a test's tables: a pooled pair goes back to the pool (emptied); fresh tables
    are deleted (both engines slow down as tables pile up)."""
    if TABLES.owns(persistence.table_name):
        TABLES.give_back(persistence.table_name)
        return
    for table_name in (persistence.table_name, persistence.order_table_name):
        with contextlib.suppress(Exception):
            persistence.client.delete_table(TableName=table_name)


@pytest.fixture(autouse=True)
def _tables_back_to_the_pool() -> Iterator[None]:
    """When a test ends, the pooled tables it leased and did not give back go back, and the
    tables it created on the test servers are deleted (those of wider-scoped fixtures stay)."""
    held = TABLES.leased()
    made = TABLES.made()
    yield
    TABLES.give_back_all(keep=held)
    TABLES.delete_made_since(made)


@pytest.fixture(params=["memory", *(engine_param(engine) for engine in ENGINES)])
def persistence(request: pytest.FixtureRequest) -> Iterator[BasePersistence]:
    """Each contract test runs on every backend."""
    if request.param == "memory":
        yield InMemoryPersistence()
        return
    store = new_dynamodb(endpoint_of(request, request.param))
    yield store
    drop_tables(store)


@pytest.fixture
def now() -> datetime:
    return NOW


def make_user(user_id: str = "user-1") -> User:
    return User(id=user_id, name=f"Name {user_id}", email=f"{user_id}@example.com")


def make_course(course_id: str = "course-1", access_period: int = 90) -> Course:
    return Course(id=course_id, name=f"Course {course_id}", access_period=access_period)


def make_enrollment(
    user_id: str = "user-1", course_id: str = "course-1", access_period: int = 90
) -> Enrollment:
    return Enrollment(user=make_user(user_id), course=make_course(course_id, access_period))


TENANT = Tenant(id="tenant-1", name="Acme Training")
OTHER_TENANT = Tenant(id="tenant-2", name="Other Org")
