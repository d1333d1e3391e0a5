"""What the local cloud and its clients share without loading the cloud: the stack's identity and execution records."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
DEFAULT_STACK_NAME = "sagestep-local"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
CONSOLE_PATH = "/_console"  # under the cloud's URL; S3 bucket names cannot start with "_", so no API path is shadowed


class CloudError(RuntimeError):
    """The local cloud cannot start (bad template, port in use, workspace held by another cloud, ...)."""


def iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat()
    return value


def json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: iso(v) if isinstance(v, dt.datetime) else str(v)))


def maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def failure_from_history(history: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    for event in reversed(history):
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict) and "error" in details:
                return details.get("error"), details.get("cause")
    return None, None
