"""The global secondary indexes of enrollkit's tables: which exist, and which attributes
key them. Every backend maintains them (see :mod:`enrollkit.persistence.indexes`);
``create_tables()``, ``enrollkit create-tables`` and ``deploy/template.yaml`` create them.

Each index is one tuple entry on its own line, so that indexes added on different
branches merge without conflict.
"""

from __future__ import annotations

from enrollkit.layout.due import DUE_INDEX
from enrollkit.layout.enrollment import LISTING_INDEXES
from enrollkit.persistence.indexes import TableIndexes

DEFAULT_INDEXES = TableIndexes(
    enrollments=(
        *LISTING_INDEXES,  # list_enrollments(): one index per filter combination
        # The lifecycle's due-time index (enrollkit.layout.due): what the sweeper delivers.
        DUE_INDEX,
    ),
)
