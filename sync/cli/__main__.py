"""``python -m sync.cli`` is ``c2m-sync``."""

import sys

from sync.cli import main

sys.exit(main())
