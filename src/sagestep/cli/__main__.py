import sys

from sagestep.cli import main

sys.exit(main())
