"""``python -m xcloudfree``: the same command line as ``xcloudfree``."""

import sys

from .cli import main

sys.exit(main())
