"""``python -m enrollkit.cli``: the same command line as ``enrollkit``."""

import sys

from enrollkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
