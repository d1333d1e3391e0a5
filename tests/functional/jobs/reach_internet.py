"""A job script that needs the internet (as a script that pip-installs at start would): it fails under network
isolation, locally as in SageMaker. pypi.org: a host this machine may reach, so nothing else is ever contacted."""

import socket
import sys

try:
    socket.create_connection(("pypi.org", 443), timeout=10).close()
except OSError as exc:
    print(f"no network: {exc}", file=sys.stderr)
    sys.exit(4)
print("reached pypi.org")
