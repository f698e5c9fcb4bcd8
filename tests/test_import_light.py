"""``import enrollkit`` stays light: boto3 and botocore load only with the DynamoDB backend."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_import_enrollkit_does_not_load_boto3_or_botocore() -> None:
    result = run(
        """
        import json, sys
        import enrollkit
        from enrollkit import Course, Enrollment, User, lock_hash, EnrollkitError
        Enrollment(user=User(id="u", name="U", email="u@example.com"),
                   course=Course(id="c", name="C", access_period=30))
        lock_hash("u", "c")
        print(json.dumps({
            "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore")),
        }))
        """
    )
    assert result["loaded"] == []


def test_backends_and_operations_load_lazily_on_first_use() -> None:
    result = run(
        """
        import json, sys
        import enrollkit
        def loaded():
            return sorted({m.split(".")[0] for m in sys.modules} & {"boto3", "botocore"})
        before = loaded()
        from enrollkit import InMemoryPersistence
        memory = InMemoryPersistence()
        after_memory = "enrollkit.persistence.dynamodb" in sys.modules
        from enrollkit import DynamoDBPersistence, enroll, cancel
        print(json.dumps({
            "before": before,
            "dynamodb_module_after_memory": after_memory,
            "after": loaded(),
            "memory": type(memory).__name__,
            "dynamodb": DynamoDBPersistence.__name__,
            "callables": [callable(enroll), callable(cancel)],
            "same": enrollkit.DynamoDBPersistence is DynamoDBPersistence,
        }))
        """
    )
    assert result["before"] == []
    assert result["dynamodb_module_after_memory"] is False
    assert result["after"] == ["boto3", "botocore"]
    assert result["memory"] == "InMemoryPersistence"
    assert result["dynamodb"] == "DynamoDBPersistence"
    assert result["callables"] == [True, True]
    assert result["same"] is True


def test_every_public_name_resolves() -> None:
    result = run(
        """
        import json
        import enrollkit
        missing = [name for name in enrollkit.__all__ if getattr(enrollkit, name, None) is None]
        print(json.dumps({"missing": missing, "all": len(enrollkit.__all__)}))
        """
    )
    assert result["missing"] == []


def test_unknown_attribute_is_an_attribute_error() -> None:
    result = run(
        """
        import json
        import enrollkit
        try:
            enrollkit.no_such_name
        except AttributeError as error:
            print(json.dumps({"error": str(error)}))
        """
    )
    assert "no_such_name" in str(result["error"])


def test_embedded_path_imports_without_boto3() -> None:
    """The embedded backend and the operations load boto3 only when a call first builds a
    condition (conditions are boto3 objects): importing them does not."""
    result = run(
        """
        import json, sys
        from datetime import datetime, timezone
        from enrollkit import Course, Enrollment, InMemoryPersistence, Tenant, User, cancel, enroll
        def loaded():
            return sorted({m.split(".")[0] for m in sys.modules} & {"boto3", "botocore"})
        imported = loaded()
        store = InMemoryPersistence()
        enroll(
            Enrollment(user=User(id="u", name="U", email="u@example.com"),
                       course=Course(id="c", name="C", access_period=30)),
            tenant=Tenant(id="t", name="T"),
            persistence_layer=store,
            now=datetime(2026, 1, 1, tzinfo=timezone.utc),
        )
        print(json.dumps({"imported": imported, "after_enroll": loaded()}))
        """
    )
    assert result["imported"] == []
    assert result["after_enroll"] == ["boto3", "botocore"]
