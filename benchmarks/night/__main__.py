"""``python -m benchmarks.night``: the night benchmark (``bench.py``)."""

import sys

from .bench import main

sys.exit(main())
