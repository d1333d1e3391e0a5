"""The local cloud's default event bus: events in, the template's rules matched, state machines started.

Events come from what happens in the cloud, shaped as AWS emits them (S3 "Object Created"/"Object Deleted" for
buckets with EventBridge notifications on, "SageMaker Model Package State Change", "Step Functions Execution Status
Change", SageMaker job and endpoint state changes) and from clients' PutEvents. Each event is matched against the
enabled rules (`local/eventbridge.py`); a match delivers the target input to the target (StartExecution) in the
background, with the target's RetryPolicy and DeadLetterConfig. Schedules fire on a virtual clock that runs at the
cloud's time scale (at 0.01, `rate(1 hour)` fires every 36 s).

Every event is written to <workspace>/events.jsonl with the rules it matched, and every delivery with its result
(the execution it started, or the error): an event that matches no rule is recorded, not lost.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagestep.local.eventbridge import InputError, Rule, Target, aws_time, matching_rules, parse_schedule, target_input
from sagestep.local.files import JsonLog

DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 185
DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 86400
_RETRIABLE = {"ThrottlingException", "ExecutionLimitExceeded", "ServiceUnavailable", "InternalServerError",
              "TooManyRequestsException", "ConnectionError"}


class VirtualClock:
    """UTC time that runs `1 / time_scale` times faster than the wall clock, from the cloud's start."""

    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self._real_start = time.monotonic()
        self._virtual_start = dt.datetime.now(dt.timezone.utc)

    def now(self) -> dt.datetime:
        return self._virtual_start + dt.timedelta(seconds=(time.monotonic() - self._real_start) / self.time_scale)

    def real_seconds_until(self, when: dt.datetime) -> float:
        return max(0.0, (when - self.now()).total_seconds() * self.time_scale)


class EventBus:
    def __init__(self, rules: list[Rule], log_path: Path, account: str, region: str, time_scale: float,
                 start_execution: Callable[[str, str], str], on_change: Callable[[str], None]) -> None:
        self.rules = rules
        self.log = JsonLog(log_path)
        self.account = account
        self.region = region
        self.clock = VirtualClock(time_scale)
        self.start_execution = start_execution  # (state machine ARN, input) -> execution ARN
        self.on_change = on_change
        self._queue: queue.Queue[tuple[Rule, Target, dict[str, Any], float, int] | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._deliveries, "eventbridge-delivery"), (self._schedules, "eventbridge-scheduler")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    # -- events in

    def event(self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str],
              when: dt.datetime | None = None) -> dict[str, Any]:
        """An event in AWS's envelope (version, id, detail-type, source, account, time, region, resources, detail)."""
        return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
                "account": self.account, "time": aws_time(when or dt.datetime.now(dt.timezone.utc)),
                "region": self.region, "resources": resources, "detail": detail}

    def put(self, event: dict[str, Any], origin: str) -> list[str]:
        """Match `event` against the rules; queue a delivery per enabled rule's target. Returns the rule names."""
        matched = list(matching_rules(self.rules, event))
        enabled = [rule for rule in matched if rule.enabled]
        self.log.append({"type": "event", "received": dt.datetime.now(dt.timezone.utc).isoformat(), "origin": origin,
                         "event": event, "matched": [r.name for r in enabled],
                         "matched_disabled": [r.name for r in matched if not r.enabled]})
        for rule in enabled:
            self.on_change(f"event {event['detail-type']} ({event['source']}) matched rule {rule.name}")
            for target in rule.targets:
                self._queue.put((rule, target, event, time.monotonic(), 0))
        return [rule.name for rule in enabled]

    # -- delivery

    def _deliveries(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                return
            rule, target, event, first_try, attempts = item
            self._deliver(rule, target, event, first_try, attempts)

    def _deliver(self, rule: Rule, target: Target, event: dict[str, Any], first_try: float, attempts: int) -> None:
        try:
            if rule.scheduler:
                payload = target.input if target.input is not None else "{}"
            else:
                payload = target_input(target.as_mapping(), event, rule.name, rule.arn,
                                       dt.datetime.now(dt.timezone.utc).isoformat())
            json.loads(payload)  # a state machine's input must be JSON: AWS refuses the invocation otherwise
            execution_arn = self.start_execution(target.arn, payload)
        except Exception as exc:  # noqa: BLE001 - any failure of an invocation is the delivery's result
            code = _error_code(exc)
            retriable = code in _RETRIABLE
            policy = target.retry_policy or {}
            max_attempts = int(policy.get("MaximumRetryAttempts", DEFAULT_MAXIMUM_RETRY_ATTEMPTS))
            max_age = float(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAXIMUM_EVENT_AGE_SECONDS))
            age = (time.monotonic() - first_try) / self.clock.time_scale
            if retriable and attempts < max_attempts and age < max_age and not self._stop.is_set():
                backoff = min(60.0, 2.0 ** attempts) * self.clock.time_scale
                threading.Timer(backoff, self._queue.put, args=((rule, target, event, first_try, attempts + 1),)).start()
                return
            exhausted = ("MaximumRetryAttempts" if attempts >= max_attempts else "MaximumEventAgeInSeconds") if retriable else None
            self.log.append({"type": "delivery", "event_id": event.get("id"), "rule": rule.name, "target": target.arn,
                             "error": code, "message": str(exc)[:500], "attempts": attempts + 1,
                             "dead_letter": target.dead_letter_arn, "exhausted": exhausted})
            self.on_change(f"rule {rule.name}: delivery to {target.arn.rsplit(':', 1)[-1]} failed: {code}: {str(exc)[:160]}"
                           + (f" (sent to {target.dead_letter_arn})" if target.dead_letter_arn else ""))
            return
        self.log.append({"type": "delivery", "event_id": event.get("id"), "rule": rule.name, "target": target.arn,
                         "execution": execution_arn, "attempts": attempts + 1})
        self.on_change(f"rule {rule.name} started {execution_arn.rsplit(':', 2)[-2]} execution {execution_arn.rsplit(':', 1)[-1]}")

    # -- schedules

    def _schedules(self) -> None:
        upcoming: dict[str, tuple[dt.datetime, Rule, Any]] = {}
        for rule in self.rules:
            if rule.schedule and rule.enabled:
                next_fire = parse_schedule(rule.schedule)
                when = next_fire(self.clock.now())
                if when is not None:
                    upcoming[rule.name] = (when, rule, next_fire)
        while upcoming and not self._stop.is_set():
            name, (when, rule, next_fire) = min(upcoming.items(), key=lambda item: item[1][0])
            if self._stop.wait(min(1.0, self.clock.real_seconds_until(when))):
                return
            if self.clock.now() < when:
                continue
            if rule.scheduler:  # EventBridge Scheduler sends the target its Input, not an event
                event = {"id": str(uuid.uuid4()), "schedule": rule.name, "time": aws_time(when)}
            else:
                event = self.event("aws.events", "Scheduled Event", {}, [rule.arn], when)
            self.log.append({"type": "event", "received": dt.datetime.now(dt.timezone.utc).isoformat(), "origin": "schedule",
                             "event": event, "matched": [rule.name], "matched_disabled": []})
            self.on_change(f"schedule {rule.name} fired ({rule.schedule}, virtual time {aws_time(when)})")
            for target in rule.targets:
                self._queue.put((rule, target, event, time.monotonic(), 0))
            following = next_fire(when)
            if following is None:
                del upcoming[name]
            else:
                upcoming[name] = (following, rule, next_fire)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    if isinstance(exc, InputError):
        return "InvalidInput"
    if isinstance(exc, json.JSONDecodeError):
        return "InvalidExecutionInput"
    if isinstance(exc, OSError):
        return "ConnectionError"
    return type(exc).__name__


def read_events(path: Path, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent events with the deliveries each caused (for `sagestep local events` and the console)."""
    events: list[dict[str, Any]] = []
    deliveries: dict[str, list[dict[str, Any]]] = {}
    for record in JsonLog(path).read():
        if record.get("type") == "event":
            events.append(record)
        elif record.get("type") == "delivery":
            deliveries.setdefault(str(record.get("event_id")), []).append(record)
    recent = events[-limit:]
    for record in recent:
        record["deliveries"] = deliveries.get(str(record["event"].get("id")), [])
    return recent


def read_deliveries(path: Path) -> list[dict[str, Any]]:
    """Every delivery of a rule's target, oldest first, each with the event that caused it: {"rule", "target",
    "execution" or "error", "event"}. An event delivered several times (same id) appears once per delivery."""
    events: dict[str, dict[str, Any]] = {}
    found: list[dict[str, Any]] = []
    for record in JsonLog(path).read():
        if record.get("type") == "event":
            events.setdefault(str(record["event"].get("id")), record["event"])
        elif record.get("type") == "delivery":
            found.append({**record, "event": events.get(str(record.get("event_id")), {})})
    return found
