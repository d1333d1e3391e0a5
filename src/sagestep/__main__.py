"""`python -m sagestep` is the `sagestep` command."""

import sys

from sagestep.cli import main

sys.exit(main())
