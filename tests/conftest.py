"""Fixtures: the contract tests run once per backend (embedded, and DynamoDB on moto)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

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
from tests.support import moto_server

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

NOW = datetime(2026, 3, 2, 12, 30, 15, 123456, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def moto() -> Iterator[moto_server.MotoServer]:
    server = moto_server.start()
    yield server
    server.stop()


def new_dynamodb(server: moto_server.MotoServer) -> DynamoDBPersistence:
    """Fresh, uniquely named tables on the shared moto server."""
    suffix = uuid.uuid4().hex[:8]
    persistence = DynamoDBPersistence(
        f"enrollments-{suffix}",
        f"orders-{suffix}",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
    )
    persistence.create_tables()
    return persistence


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.moto)])
def persistence(request: pytest.FixtureRequest) -> BasePersistence:
    """Each contract test runs on both backends."""
    if request.param == "memory":
        return InMemoryPersistence()
    server: moto_server.MotoServer = request.getfixturevalue("moto")
    return new_dynamodb(server)


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
