"""Start AWS's DynamoDB Local for the benchmark (a minimal starter).

Looks for the extracted emulator (``DynamoDBLocal.jar`` and ``DynamoDBLocal_lib/``) in
``$DYNAMODB_LOCAL_DIR`` or ``/tmp/ddbl/package/emulator`` (``npm pack
amplify-dynamodb-simulator``, then ``tar xzf ... package/emulator``). Returns ``None`` with
the reason when Java or the emulator is missing, so the benchmark skips that backend.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EMULATOR_DIR = Path("/tmp/ddbl/package/emulator")
READY_TIMEOUT_SECONDS = 60.0


@dataclass
class DynamoDBLocal:
    process: subprocess.Popen[bytes]
    endpoint_url: str
    workdir: tempfile.TemporaryDirectory[str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.workdir.cleanup()


def unavailable_reason() -> str | None:
    """Why DynamoDB Local cannot start here, or ``None`` when it can."""
    if shutil.which("java") is None:
        return "Java is not installed (DynamoDB Local needs a JRE)"
    if not (_emulator_dir() / "DynamoDBLocal.jar").is_file():
        return f"DynamoDBLocal.jar not found in {_emulator_dir()} (set DYNAMODB_LOCAL_DIR)"
    return None


def start() -> DynamoDBLocal:
    emulator = _emulator_dir().resolve()
    port = _free_port()
    # It writes dynamodb-local-metadata.json into its working directory.
    workdir = tempfile.TemporaryDirectory(prefix="enrollkit-ddbl-")
    process = subprocess.Popen(
        [
            "java",
            f"-Djava.library.path={emulator / 'DynamoDBLocal_lib'}",
            "-jar",
            str(emulator / "DynamoDBLocal.jar"),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(port),
        ],
        cwd=workdir.name,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = DynamoDBLocal(process, f"http://127.0.0.1:{port}", workdir)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"DynamoDB Local exited with code {process.returncode}")
        try:
            urllib.request.urlopen(server.endpoint_url, timeout=1).read()
            return server
        except urllib.error.HTTPError:
            return server  # any HTTP answer (GET / says 400) means it is listening
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"DynamoDB Local did not answer within {READY_TIMEOUT_SECONDS:.0f} s")


def _emulator_dir() -> Path:
    return Path(os.environ.get("DYNAMODB_LOCAL_DIR", DEFAULT_EMULATOR_DIR))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
