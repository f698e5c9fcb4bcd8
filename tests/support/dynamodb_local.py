"""AWS's own DynamoDB Local, fetched, cached and started by the tests themselves.

The jar ships in the npm package ``amplify-dynamodb-simulator`` (``package/emulator``).
The first run fetches it with ``npm pack`` into a cache folder (``.cache/dynamodb-local`` in
the checkout, ignored by git; ``ENROLLKIT_DYNAMODB_LOCAL_CACHE`` overrides it) and later runs
reuse it. Each test session starts one in-memory instance on a free loopback port.

Where Java or npm is missing, :func:`unavailable` says why, and the tests skip with that one
reason; under ``CI=true`` they fail instead: CI must run AWS's engine, never skip it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

NPM_PACKAGE = "amplify-dynamodb-simulator@2.9.30"
ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90.0


def cache_dir() -> Path:
    configured = os.environ.get("ENROLLKIT_DYNAMODB_LOCAL_CACHE")
    return Path(configured) if configured else ROOT / ".cache" / "dynamodb-local"


def unavailable() -> str | None:
    """Why DynamoDB Local cannot run here, or ``None`` when it can."""
    if shutil.which("java") is None:
        return "DynamoDB Local needs Java 17+ ('java' is not on PATH)"
    if not (cache_dir() / "emulator" / "DynamoDBLocal.jar").exists() and not shutil.which("npm"):
        return "DynamoDB Local is not cached and 'npm' (needed to fetch it) is not on PATH"
    return None


def required() -> bool:
    """CI must run the DynamoDB Local tests: a missing Java there is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One fetch at a time, across processes (parallel test workers share the cache)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_installed() -> Path:
    """The emulator folder (``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib``), fetched once."""
    cache = cache_dir()
    emulator = cache / "emulator"
    with _exclusive(cache / ".fetch.lock"):
        if (emulator / "DynamoDBLocal.jar").exists():
            return emulator
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            subprocess.run(
                ["npm", "pack", NPM_PACKAGE, "--silent", "--pack-destination", scratch],
                check=True,
                capture_output=True,
                timeout=600,
            )
            (tarball,) = Path(scratch).glob("*.tgz")
            with tarfile.open(tarball) as archive:
                members = [
                    m for m in archive.getmembers() if m.name.startswith("package/emulator/")
                ]
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                    archive.extractall(scratch, members=members, filter="data")
                else:  # pragma: no cover
                    archive.extractall(scratch, members=members)
            Path(scratch, "package", "emulator").rename(emulator)
    return emulator


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class DynamoDBLocal:
    process: subprocess.Popen[bytes]
    endpoint_url: str
    workdir: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


# For the tests' servers, which live for minutes: the quick compiler alone and one GC
# thread leave the two cores to the tests (C2's compiling cost more CPU than it saved: the
# DynamoDB Local tests took 1 min 49 s and 3 min 13 s of CPU with it, 1 min 36 s and 2 min
# 45 s without). The benchmarks start the JVM as it comes, to time DynamoDB Local itself.
TEST_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


def start(jvm_options: Sequence[str] = ()) -> DynamoDBLocal:
    """Start an in-memory DynamoDB Local and wait until it answers a ListTables."""
    emulator = ensure_installed()
    port = _free_port()
    # It writes a metadata file into its working directory: give it a folder of its own.
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=cache_dir()))
    process = subprocess.Popen(
        [
            "java",
            *jvm_options,
            f"-Djava.library.path={emulator / 'DynamoDBLocal_lib'}",
            "-jar",
            str(emulator / "DynamoDBLocal.jar"),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(port),
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = DynamoDBLocal(process, f"http://127.0.0.1:{port}", workdir)
    try:
        _wait_until_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_ready(server: DynamoDBLocal) -> None:
    import boto3

    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            stderr = server.process.stderr.read().decode() if server.process.stderr else ""
            raise RuntimeError(f"DynamoDB Local exited with {server.process.returncode}: {stderr}")
        try:
            urllib.request.urlopen(server.endpoint_url, timeout=2).read()
        except urllib.error.HTTPError:
            break  # any HTTP answer: the server is up (GET / answers 400)
        except OSError:
            time.sleep(0.2)
    else:
        raise RuntimeError(f"DynamoDB Local did not answer within {READY_TIMEOUT:.0f} s")
    client = boto3.client(
        "dynamodb",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.list_tables()
