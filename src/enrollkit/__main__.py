import sys

from enrollkit.cli import main

sys.exit(main())
