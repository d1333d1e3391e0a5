"""The socket guard of network-isolated jobs and model servers (local/isolation_guard): loopback only, no DNS."""

from __future__ import annotations

import subprocess
import sys

from sagestep.local import isolation

SCRIPT = """
import socket
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
socket.create_connection(server.getsockname(), timeout=5).close()
print("loopback ok")
try:
    socket.getaddrinfo("pypi.org", 443)
except socket.gaierror as exc:
    print("dns blocked:", exc)
try:
    socket.create_connection(("pypi.org", 443), timeout=5)
except OSError as exc:
    print("connect blocked:", exc)
"""


def test_guarded_process_reaches_its_loopback_and_nothing_else():
    # GIVEN a Python process started with the isolation environment (the unit tier's own guard is not inherited)
    env = isolation.guard_environment({"PATH": "/usr/bin:/bin"})
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    # THEN loopback works and a name outside it neither resolves nor connects
    assert result.returncode == 0, result.stderr
    assert "loopback ok" in result.stdout
    assert "dns blocked: " in result.stdout and "no DNS under network isolation" in result.stdout
    assert "connect blocked:" in result.stdout


def test_isolation_follows_the_request():
    assert isolation.job_isolated("processing", {"NetworkConfig": {"EnableNetworkIsolation": True}})
    assert isolation.job_isolated("training", {"EnableNetworkIsolation": True})
    assert not isolation.job_isolated("processing", {})
