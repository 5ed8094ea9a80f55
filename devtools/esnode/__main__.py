"""``python3 -m devtools.esnode``: what scripts/es-node.sh runs."""

import sys

from .cli import main

sys.exit(main())
