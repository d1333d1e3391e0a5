"""What the local cloud and its clients share without loading the cloud: the stack's identity and execution records."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
DEFAULT_STACK_NAME = "sagestep-local"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
CONSOLE_PATH = "/_console"  # under the cloud's URL; S3 bucket names cannot start with "_", so no API path is shadowed


_SESSION: Any = None
_SESSION_LOCK = threading.Lock()  # boto3's session, which makes clients, is not thread-safe


class Clients:
    """boto3 clients of one local cloud, one per service: making a client costs 2.5-11 ms of CPU even with its service
    model loaded (the cloud, its tests and the console ask for them all the time) and a client is thread-safe. All
    come from one session per process: a session parses each service's model (JSON, up to 0.4 CPU-s for SageMaker's)
    the first time it makes that service's client, and the process makes clients for many clouds (the test suite)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: dict[str, Any] = {}

    def get(self, service: str) -> Any:
        global _SESSION
        with _SESSION_LOCK:
            client = self._clients.get(service)
            if client is None:
                if _SESSION is None:
                    import boto3

                    _SESSION = boto3.session.Session()
                client = _SESSION.client(service, region_name=REGION, endpoint_url=self.url,
                                         aws_access_key_id="testing", aws_secret_access_key="testing")
                self._clients[service] = client
            return client


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
