"""``python -m sb3_metarim.benchmark``: see :mod:`sb3_metarim.benchmark.cli`."""

import sys

from sb3_metarim.benchmark.cli import main

sys.exit(main())
