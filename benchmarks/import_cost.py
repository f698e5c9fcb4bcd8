"""Goal 4: import cost in fresh interpreters, and whether boto3 gets imported."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATEMENTS = {
    "import enrollkit": "import enrollkit",
    "embedded path (InMemoryPersistence, enroll)": (
        "from enrollkit import InMemoryPersistence, enroll"
    ),
    "embedded path + first enroll()": (
        "from benchmarks.workload import enroll_one; from enrollkit import InMemoryPersistence; "
        "enroll_one(InMemoryPersistence())"
    ),
    "DynamoDB path (DynamoDBPersistence, enroll, cancel)": (
        "from enrollkit import DynamoDBPersistence, enroll, cancel"
    ),
    "import boto3 (for scale)": "import boto3",
}
_PROBE = (
    "import sys, time; t = time.perf_counter(); {statement}; "
    "print(time.perf_counter() - t, 'boto3' in sys.modules)"
)


def cost(statement: str, runs: int) -> tuple[float, bool]:
    samples, boto3_loaded = [], False
    for _ in range(runs):
        output = subprocess.check_output(
            [sys.executable, "-c", _PROBE.format(statement=statement)], text=True, cwd=ROOT
        ).split()
        samples.append(float(output[0]))
        boto3_loaded = output[1] == "True"
    return statistics.median(samples), boto3_loaded


def run(runs: int = 5) -> dict[str, tuple[float, bool]]:
    print(f"Import cost (fresh interpreter, median of {runs})")
    results = {}
    for label, statement in STATEMENTS.items():
        seconds, boto3_loaded = cost(statement, runs)
        results[label] = (seconds, boto3_loaded)
        loaded = "loads boto3" if boto3_loaded else "boto3 not loaded"
        print(f"  {label:52s} {seconds * 1e3:7.1f} ms  {loaded}")
    light = results["import enrollkit"][1]
    print(f"  import enrollkit free of boto3: {'met' if not light else 'NOT MET'}")
    return results
