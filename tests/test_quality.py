"""The repository passes its own linters: ruff (lint and format) and mypy --strict (on the
library and the benchmarks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy", "--strict", "src", "benchmarks"],  # benchmarks too: nothing else runs them
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_tool_passes(command: list[str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    output = f"$ {' '.join(command)}\n{completed.stdout}\n{completed.stderr}"
    assert completed.returncode == 0, output
