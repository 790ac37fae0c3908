"""``python -m zoo``: the ``zoo`` command (what ``zoo train --nproc-per-node N`` runs under
torchrun)."""

import sys

from zoo.cli import main

sys.exit(main())
