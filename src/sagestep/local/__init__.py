"""The local cloud: the deployed state machines, Lambda handlers and ml/ jobs on one machine (moto inside).

`LocalRuntime` is loaded on first use: importing this package stays cheap for commands that only read the workspace.
"""

from typing import Any

__all__ = ["ExecutionRecord", "LocalRuntime"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sagestep.local import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'sagestep.local' has no attribute {name!r}")
