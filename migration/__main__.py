"""`python -m migration`: the command-line entry point."""

import sys

from migration.cli import main

sys.exit(main())
