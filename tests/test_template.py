"""deploy/template.yaml: cfn-lint clean, the settings enrollkit relies on, the same tables as
``create_tables()``, and deployed tables that enrollkit can use: a stack on moto, and the
template's table properties on DynamoDB Local."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from enrollkit import keys
from enrollkit.layout.indexes import DEFAULT_INDEXES
from enrollkit.persistence.dynamodb import attribute_definitions, index_definition
from enrollkit.persistence.streams import ttl_removal_record
from tests.conftest import NOW, Endpoint, engine_of

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "template.yaml"

cfnlint_api = pytest.importorskip(
    "cfnlint.api", reason="cfn-lint is not installed: pip install -e '.[dev]'"
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode

    decoded, problems = decode(str(TEMPLATE))
    assert not problems, problems
    assert decoded is not None
    return dict(decoded)


def _tables(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }


def test_cfn_lint_is_clean() -> None:
    config = cfnlint_api.ManualArgs(include_checks=["I"])  # informational checks too
    matches = cfnlint_api.lint_file(TEMPLATE, config=config)
    assert not matches, "\n".join(str(match) for match in matches)


def test_both_tables_have_the_layout_enrollkit_needs(template: dict[str, Any]) -> None:
    tables = _tables(template)
    assert set(tables) == {"EnrollmentsTable", "OrdersTable"}
    parameters = {"EnrollmentsTable": "TableName", "OrdersTable": "OrderTableName"}
    for name, table in tables.items():
        assert table["TableName"] == {"Ref": parameters[name]}
        assert table["KeySchema"] == [
            {"AttributeName": keys.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": keys.SORT_KEY, "KeyType": "RANGE"},
        ]
        indexes = (
            DEFAULT_INDEXES.enrollments if name == "EnrollmentsTable" else DEFAULT_INDEXES.orders
        )
        # The same key attributes and indexes as create_tables() makes.
        assert table["AttributeDefinitions"] == attribute_definitions(indexes)
        assert table.get("GlobalSecondaryIndexes", []) == [index_definition(i) for i in indexes]
        assert table["TimeToLiveSpecification"] == {
            "AttributeName": keys.TTL_ATTRIBUTE,
            "Enabled": True,
        }
        assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        resource = template["Resources"][name]
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    assert template["Parameters"]["TableName"]["Default"] == "enrollments"
    assert template["Parameters"]["OrderTableName"]["Default"] == "orders"


def test_the_access_policy_covers_what_enrollkit_calls(template: dict[str, Any]) -> None:
    policy = template["Resources"]["AccessPolicy"]["Properties"]["PolicyDocument"]
    statement = policy["Statement"][0]
    assert statement["Effect"] == "Allow"
    # DynamoDBPersistence calls GetItem, Query, PutItem and TransactWriteItems, which is
    # authorised per item by the actions of its operations.
    assert set(statement["Action"]) == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    }
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["EnrollmentsTable", "Arn"]},
        {"Fn::GetAtt": ["OrdersTable", "Arn"]},
    ]
    # list_enrollments() and the sweeper query the indexes, which IAM authorises per index.
    listings = policy["Statement"][1]
    assert (listings["Effect"], listings["Action"]) == ("Allow", ["dynamodb:Query"])
    assert listings["Resource"] == [{"Fn::Sub": "${EnrollmentsTable.Arn}/index/*"}]
    # The Scan is for the maintenance tool only, in a policy of its own.
    backfill = template["Resources"]["BackfillPolicy"]["Properties"]["PolicyDocument"]
    assert set(backfill["Statement"][0]["Action"]) == {"dynamodb:Scan", "dynamodb:DescribeTable"}


def test_the_lifecycle_functions_are_wired_as_enrollkit_needs(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    lifecycle = {name for name, r in resources.items() if r.get("Condition") == "DeployLifecycle"}
    assert lifecycle == {
        "LifecycleRole",
        "SweeperFunction",
        "SweeperSchedule",
        "SweeperSchedulePermission",
        "StreamConsumerFunction",
        "StreamConsumerMapping",
    }  # only with your handlers' code: the tables alone deploy without it
    schedule = resources["SweeperSchedule"]["Properties"]
    assert schedule["ScheduleExpression"] == "rate(1 minute)"  # within a minute of due
    assert schedule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["SweeperFunction", "Arn"]}
    permission = resources["SweeperSchedulePermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    mapping = resources["StreamConsumerMapping"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["EnrollmentsTable", "StreamArn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (pattern,) = mapping["FilterCriteria"]["Filters"]
    # The filter lets through exactly what handle_stream_batch acts on: TTL's deletions.
    record = ttl_removal_record("enrollments", {"id": "e", "sk": "schedules#x"}, NOW)
    assert json.loads(pattern["Pattern"]) == {
        "eventName": [record["eventName"]],
        "userIdentity": {
            "type": [record["userIdentity"]["type"]],
            "principalId": [record["userIdentity"]["principalId"]],
        },
    }
    role = resources["LifecycleRole"]["Properties"]
    assert {"Ref": "AccessPolicy"} in role["ManagedPolicyArns"]


@pytest.fixture
def stack(
    dynamodb_endpoint: Endpoint, template: dict[str, Any]
) -> Iterator[tuple[Endpoint, str, str]]:
    """The template's tables, with fresh names: deployed as a stack on moto; on DynamoDB
    Local (which has no CloudFormation) created from the template's own table properties."""
    import boto3

    suffix = uuid.uuid4().hex[:8]
    names = (f"cfn-enrollments-{suffix}", f"cfn-orders-{suffix}")
    if engine_of(dynamodb_endpoint) == "dynamodb_local":
        _create_from_template(dynamodb_endpoint, template, names)
        yield dynamodb_endpoint, *names
        return
    cloudformation = boto3.client(
        "cloudformation", endpoint_url=dynamodb_endpoint.endpoint_url, region_name="us-east-1"
    )
    stack_name = f"enrollkit-{suffix}"
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=TEMPLATE.read_text("utf-8"),
        Parameters=[
            {"ParameterKey": "TableName", "ParameterValue": names[0]},
            {"ParameterKey": "OrderTableName", "ParameterValue": names[1]},
        ],
        Capabilities=["CAPABILITY_IAM"],
    )
    described = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described["Outputs"]}
    assert (outputs["TableName"], outputs["OrderTableName"]) == names
    assert {"TableStreamArn", "OrderTableStreamArn", "AccessPolicyArn", "BackfillPolicyArn"} <= set(
        outputs
    )
    yield dynamodb_endpoint, *names


def _create_from_template(
    endpoint: Endpoint, template: dict[str, Any], names: tuple[str, str]
) -> None:
    """CreateTable and UpdateTimeToLive with exactly the template's table properties."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint.endpoint_url, region_name="us-east-1")
    tables = _tables(template)
    for logical, name in zip(("EnrollmentsTable", "OrdersTable"), names, strict=True):
        properties = tables[logical]
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": properties["KeySchema"],
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "BillingMode": properties["BillingMode"],
            "StreamSpecification": {"StreamEnabled": True, **properties["StreamSpecification"]},
        }
        if "GlobalSecondaryIndexes" in properties:
            request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        client.create_table(**request)
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"]
        )


def test_the_deployed_tables_match_create_tables_and_work(
    stack: tuple[Endpoint, str, str],
) -> None:
    from enrollkit import (
        Author,
        CancelPolicy,
        Course,
        DeduplicationWindow,
        DynamoDBPersistence,
        Enrollment,
        Tenant,
        User,
        cancel,
        enroll,
    )

    server, table_name, order_table_name = stack
    deployed = DynamoDBPersistence(
        table_name, order_table_name, endpoint_url=server.endpoint_url, region_name="us-east-1"
    )
    suffix = uuid.uuid4().hex[:8]
    created = DynamoDBPersistence(
        f"made-{suffix}", f"made-orders-{suffix}", endpoint_url=server.endpoint_url
    )
    created.create_tables()

    def shape(store: DynamoDBPersistence, name: str) -> tuple[Any, ...]:
        table = store.client.describe_table(TableName=name)["Table"]
        indexes = sorted(
            (
                index["IndexName"],
                index["KeySchema"],
                index["Projection"]["ProjectionType"],
                sorted(index["Projection"].get("NonKeyAttributes", [])),
            )
            for index in table.get("GlobalSecondaryIndexes", [])
        )
        return (
            table["KeySchema"],
            sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
            table["StreamSpecification"],
            table["BillingModeSummary"]["BillingMode"],
            indexes,
        )

    assert shape(deployed, table_name) == shape(created, created.table_name)
    assert shape(deployed, order_table_name) == shape(created, created.order_table_name)
    deployed.create_tables()  # checks the deployed tables, and finds nothing to refuse

    enrollment = Enrollment(
        user=User(id="ana", name="Ana Souza", email="ana@example.com"),
        course=Course(id="nr-10", name="NR-10", access_period=90),
    )
    now = NOW
    enroll(
        enrollment,
        tenant=Tenant(id="acme", name="Acme"),
        persistence_layer=deployed,
        deduplication_window=DeduplicationWindow(offset_days=10),
        cancel_policy=CancelPolicy(days=7),
        now=now,
    )
    cancel(
        enrollment.id, author=Author(id="admin", name="Admin"), persistence_layer=deployed, now=now
    )
    root = deployed.get_item(keys.enrollment_key(enrollment.id))
    assert root is not None and root["status"] == "CANCELED"
    # The deployed indexes serve the listing.
    from enrollkit import list_enrollments

    listed = list_enrollments(persistence_layer=deployed, tenant_id="acme", status="CANCELED")
    assert [summary.id for summary in listed.items] == [enrollment.id]
