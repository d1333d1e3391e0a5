"""Network isolation of local jobs and model servers, as SageMaker's EnableNetworkIsolation gives containers.

Every process of an isolated job or model gets the socket guard (`isolation_guard/sitecustomize.py` first on its
PYTHONPATH: only loopback is reachable, no name resolves but localhost). A job also runs in a network namespace of
its own when the local cloud runs as root and `unshare` works (nothing but its own loopback exists there, whatever
the language of the code). Model servers keep the host's loopback (the local cloud reaches them there), so they have
the guard only. A request without EnableNetworkIsolation runs unrestricted, as in AWS.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

GUARD_DIR = Path(__file__).with_name("isolation_guard")


def job_isolated(kind: str, request: dict[str, Any]) -> bool:
    if kind == "training":
        return bool(request.get("EnableNetworkIsolation"))
    if kind == "processing":
        return bool((request.get("NetworkConfig") or {}).get("EnableNetworkIsolation"))
    return False  # transform: the model's flag (see transform.py)


def guard_environment(env: dict[str, str]) -> dict[str, str]:
    """The environment with the socket guard first on PYTHONPATH."""
    existing = env.get("PYTHONPATH")
    return {**env, "PYTHONPATH": str(GUARD_DIR) + (os.pathsep + existing if existing else "")}


@functools.lru_cache(maxsize=1)
def namespaces_work() -> bool:
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return False
    try:
        return subprocess.run([unshare, "--net", "--", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def namespaced(command: list[str]) -> list[str]:
    """The command in a new network namespace (loopback only) where possible, else unchanged (the guard remains)."""
    if not namespaces_work():
        return command
    script = "ip link set lo up 2>/dev/null; exec \"$@\"" if shutil.which("ip") else "exec \"$@\""
    return [shutil.which("unshare") or "unshare", "--net", "--", "sh", "-c", script, "sh", *command]
