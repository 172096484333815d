"""`python -m arithmo.export`: see arithmo/export/cli.py."""

import sys

from arithmo.export.cli import main

if __name__ == "__main__":
    sys.exit(main())
