"""`python -m sluice` runs the `sluice` command line."""

import sys

from sluice.cli import main

sys.exit(main())
