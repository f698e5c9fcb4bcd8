"""Connecting to DynamoDB: what was reached and what came back, in one line; a missing
table by name; and one credentials rule for the library and the command line."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from enrollkit import (
    DynamoDBPersistence,
    KeyPair,
    PersistenceError,
    TransientFailure,
    enroll,
)
from enrollkit.cli import main
from enrollkit.persistence.dynamodb import dynamodb_client
from tests.conftest import NOW, TENANT, make_enrollment
from tests.support.moto_server import MotoServer

PAGE = (
    "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>"
    + "<p>If you see this page, the web server works.</p>" * 200
    + "</body></html>"
)
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2)


class _Answer(http.server.BaseHTTPRequestHandler):
    """Answers every request with the server's status and body, as an HTML page."""

    server: _WebServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = self.server.body.encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _WebServer(http.server.ThreadingHTTPServer):
    status = 200
    body = PAGE

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def web_server() -> Iterator[_WebServer]:
    """A tiny local web server that is not DynamoDB."""
    server = _WebServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _store(endpoint_url: str, *names: str) -> DynamoDBPersistence:
    client = dynamodb_client(endpoint_url=endpoint_url, config=NO_RETRIES)
    return DynamoDBPersistence(*names, client=client)


def _assert_one_short_line(text: str) -> None:
    assert "\n" not in text
    assert len(text) < 200, text
    assert "<p>" not in text


@pytest.mark.parametrize("status", [200, 404, 403])
def test_an_endpoint_answering_html_is_named_with_its_status_and_title(
    web_server: _WebServer, status: int
) -> None:
    web_server.status = status
    with pytest.raises(PersistenceError) as raised:
        _store(web_server.url).get_item(KeyPair(pk="a", sk="b"))
    text = str(raised.value)
    assert text.startswith(f"not a DynamoDB endpoint: {web_server.url} answered HTTP {status}")
    assert "HTML" in text
    if status != 200:  # botocore keeps the body of an error only
        assert "'Welcome to nginx!'" in text
    _assert_one_short_line(text)
    assert raised.value.http_status == 500


def test_an_empty_404_says_what_answered(web_server: _WebServer) -> None:
    web_server.status, web_server.body = 404, ""
    with pytest.raises(PersistenceError) as raised:
        _store(web_server.url).query("a")
    assert str(raised.value) == (
        f"not a DynamoDB endpoint: {web_server.url} answered HTTP 404 with an empty body"
    )


def test_a_gateway_error_page_is_worth_a_retry(web_server: _WebServer) -> None:
    web_server.status = 502
    with pytest.raises(TransientFailure) as raised:
        _store(web_server.url).put_item({"id": "a", "sk": "b"})
    assert "answered HTTP 502 with an HTML page titled 'Welcome to nginx!'" in str(raised.value)
    assert raised.value.http_status == 503


def test_the_command_line_shows_one_line_for_an_html_endpoint(
    web_server: _WebServer, capsys: pytest.CaptureFixture[str]
) -> None:
    web_server.status = 404
    status = main(["show", "some-id", "--endpoint-url", web_server.url])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1
    assert "not a DynamoDB endpoint" in err and "answered HTTP 404" in err
    assert "Welcome to nginx!" in err
    assert "<p>" not in err


def test_an_unreachable_endpoint_names_it() -> None:
    store = _store("http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(TransientFailure) as raised:
        store.get_item(KeyPair(pk="a", sk="b"))
    text = str(raised.value)
    assert text.startswith("DynamoDB could not be reached at http://127.0.0.1:9")
    assert "\n" not in text


@pytest.mark.moto
def test_a_missing_table_is_named(moto: MotoServer) -> None:
    name = f"missing-{uuid.uuid4().hex[:8]}"
    store = DynamoDBPersistence(name, f"{name}-orders", endpoint_url=moto.endpoint_url)
    with pytest.raises(PersistenceError) as raised:
        store.get_item(KeyPair(pk="a", sk="b"))
    assert str(raised.value).startswith(
        f"table '{name}' does not exist at {moto.endpoint_url} (create it with"
    )
    assert store.missing_tables() == [name, f"{name}-orders"]


@pytest.mark.moto
def test_a_transaction_on_a_missing_table_names_that_table(moto: MotoServer) -> None:
    suffix = uuid.uuid4().hex[:8]
    store = DynamoDBPersistence(
        f"enrollments-{suffix}", f"orders-{suffix}", endpoint_url=moto.endpoint_url
    )
    store.create_tables()
    with pytest.raises(PersistenceError) as raised, store.transact_writer() as transaction:
        transaction.put(item={"id": "a", "sk": "0"})
        transaction.put(item={"id": "a", "sk": "0"}, table_name=f"gone-{suffix}")
    assert str(raised.value).startswith(f"table 'gone-{suffix}' does not exist")
    assert store.missing_tables() == []


# -- credentials: one rule ----------------------------------------------------------------


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    _fresh_boto3_session(monkeypatch)


def _fresh_boto3_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's default session caches the credentials it found first: start anew."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.mark.moto
@pytest.mark.usefixtures("no_credentials")
def test_the_library_needs_no_credentials_for_a_local_endpoint_as_the_cli(
    moto: MotoServer,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    store = DynamoDBPersistence(
        f"enrollments-{suffix}", f"orders-{suffix}", endpoint_url=moto.endpoint_url
    )
    store.create_tables()
    enrollment = make_enrollment()
    enroll(enrollment, tenant=TENANT, persistence_layer=store, now=NOW)
    assert store.get_item(KeyPair(pk=enrollment.id, sk="0")) is not None


@pytest.mark.usefixtures("no_credentials")
def test_aws_endpoints_never_get_throwaway_credentials() -> None:
    local = dynamodb_client(endpoint_url="http://localhost:8000")
    aws = dynamodb_client(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com")
    local_credentials = local._request_signer._credentials  # type: ignore[attr-defined]
    assert local_credentials is not None and local_credentials.access_key == "local"
    assert aws._request_signer._credentials is None  # type: ignore[attr-defined]
    assert local.meta.region_name == "us-east-1"


def test_configured_credentials_and_region_win_over_the_local_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    _fresh_boto3_session(monkeypatch)
    client = dynamodb_client(endpoint_url="http://localhost:8000")
    assert client._request_signer._credentials.access_key == "mine"  # type: ignore[attr-defined]
    assert client.meta.region_name == "eu-west-1"
