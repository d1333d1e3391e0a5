"""A job script for runtime tests: fails the way a broken ml/ script does."""

import sys


print("loading data", flush=True)
print("Traceback (most recent call last):\nValueError: column 'Income' has non-numeric value 'n/a' in row 17", file=sys.stderr)
sys.exit(3)
