"""The global secondary indexes of enrollkit's tables: which exist, and which attributes
key them. Every backend maintains them (see :mod:`enrollkit.persistence.indexes`);
``create_tables()``, ``enrollkit create-tables`` and ``deploy/template.yaml`` create them."""

from __future__ import annotations

from enrollkit.layout.due import DUE_INDEX
from enrollkit.persistence.indexes import TableIndexes

DEFAULT_INDEXES = TableIndexes(
    enrollments=(
        # The lifecycle's due-time index (enrollkit.layout.due): what the sweeper delivers.
        DUE_INDEX,
    ),
)
