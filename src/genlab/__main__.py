"""``python -m genlab`` (and ``torchrun -m genlab train ...``) runs the command line."""

import sys

from genlab.cli import main

sys.exit(main())
