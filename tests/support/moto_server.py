"""A moto DynamoDB server that serves one request at a time, for the DynamoDB tests.

moto's threaded server corrupts its state under concurrent transactions
("dictionary changed size during iteration", HTTP 500), so this one is
single-threaded: concurrent clients queue at the socket, as they would at a
serializing store. Run as a subprocess: ``python -m tests.support.moto_server``;
it binds a free loopback port and prints it on its first line.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def serve() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=False, processes=1)
    print(server.server_port, flush=True)
    server.serve_forever()


@dataclass
class MotoServer:
    process: subprocess.Popen[str]
    endpoint_url: str

    def reset(self) -> None:
        """Forget every table (moto's reset endpoint)."""
        import urllib.request

        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start() -> MotoServer:
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.moto_server"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root,
    )
    assert process.stdout is not None
    port = int(process.stdout.readline().strip())
    endpoint_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    return MotoServer(process=process, endpoint_url=endpoint_url)


if __name__ == "__main__":
    serve()
