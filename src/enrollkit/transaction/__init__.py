"""The transaction builder and its operations."""

from enrollkit.transaction.builder import TransactionBuilder, TransactionExecutor, open_transaction
from enrollkit.transaction.operations import (
    BuiltOperations,
    ConditionCheck,
    Delete,
    Operation,
    Put,
    Update,
)
from enrollkit.transaction.retry import RetryPolicy

__all__ = [
    "BuiltOperations",
    "ConditionCheck",
    "Delete",
    "Operation",
    "Put",
    "RetryPolicy",
    "TransactionBuilder",
    "TransactionExecutor",
    "Update",
    "open_transaction",
]
