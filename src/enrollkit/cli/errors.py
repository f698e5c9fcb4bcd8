"""What a command fails with when the user can fix it, and the exit statuses.

``main()`` (in :mod:`enrollkit.cli`) prints a :class:`CommandError` as one line on stderr
and exits with :data:`EXIT_ERROR`; a command that succeeds returns :data:`EXIT_OK`.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1


class CommandError(Exception):
    """A mistake the user can fix: printed as one line, exit status 1."""
