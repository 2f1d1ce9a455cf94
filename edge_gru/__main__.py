"""``python -m edge_gru`` is the converter."""

import sys

from .convert import main

sys.exit(main())
