"""``python -m finegrained``: the same as the ``finegrained`` command."""

import sys

from finegrained.cli import console_main

sys.exit(console_main())
