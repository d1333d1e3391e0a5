"""The local runtime: the deployed state machines, Lambda handlers and ml/ jobs on one machine (moto inside)."""

from sagestep.local.runtime import ExecutionRecord, LocalRuntime

__all__ = ["ExecutionRecord", "LocalRuntime"]
