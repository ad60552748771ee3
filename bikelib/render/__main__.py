"""`python -m bikelib.render`: the command line of `bikelib.render.cli`."""

import sys

from .cli import main

sys.exit(main())
