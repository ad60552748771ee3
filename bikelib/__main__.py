"""`python -m bikelib`: the command line (see bikelib.cli)."""

import sys

from .cli import main

sys.exit(main())
