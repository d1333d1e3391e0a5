"""Where the console's facts come from: AWS APIs through boto3 clients pointed at the local cloud (the same calls
work against AWS), plus the workspace for what has no API there (what SNS would have sent, job logs, the event log).

Everything that cannot change once written is cached for the life of the process: a finished execution's
description and history, a state machine definition's graph, an S3 object by its ETag. What can change (running
executions, the registry, endpoints, listings) is read on every request.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime as dt
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sagestep.console.graph import Graph, definition_graph

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
STARTED_BY_EXECUTION = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"
JOB_KINDS = {"createProcessingJob": "processing", "createTrainingJob": "training", "createTransformJob": "transform"}
_JOB_NAME_FIELD = {"processing": "ProcessingJobName", "training": "TrainingJobName", "transform": "TransformJobName"}


@dataclasses.dataclass(frozen=True)
class ApiCall:
    service: str
    operation: str
    params: dict[str, Any]
    seconds: float


# The API calls made while serving one request. The console reports their count and time in a Server-Timing header;
# bench/console.py replays them to measure the floor a page cannot go below.
API_CALLS: contextvars.ContextVar[list[ApiCall] | None] = contextvars.ContextVar("api_calls", default=None)


def _before_parameters(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if API_CALLS.get() is not None:
        context["sagestep_params"] = dict(params)
        context["sagestep_started"] = time.perf_counter()


def _after_call(model: Any, context: dict[str, Any], **_: Any) -> None:
    calls = API_CALLS.get()
    started = context.get("sagestep_started")
    if calls is not None and started is not None:
        calls.append(ApiCall(model.service_model.service_name, model.name, context.get("sagestep_params", {}),
                             time.perf_counter() - started))


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: Any, value: Any) -> Any:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


@dataclasses.dataclass(frozen=True)
class StartCause:
    """Who started an execution. kind: client (StartExecution by a person or program), rule (an EventBridge rule on
    an event), schedule (an EventBridge schedule) or execution (a parent execution's startExecution task)."""

    kind: str
    label: str
    detail: str = ""
    execution_arn: str | None = None


CLIENT = StartCause("client", "client", "StartExecution by a person or program (CLI, SDK, console)")


@dataclasses.dataclass(frozen=True)
class EventRecord:
    """One line of the local cloud's event log: an event as EventBridge saw it and the rules it matched."""

    time: str
    source: str
    detail_type: str
    resources: tuple[str, ...]
    detail: Mapping[str, Any]
    matches: tuple[Mapping[str, Any], ...]  # {"rule", "target", "executionArn", "error"}: one per delivery
    origin: str = ""  # what emitted it locally: s3:PutObject, sagemaker:UpdateModelPackage, states, schedule, PutEvents


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class Sources:
    def __init__(self, clients: Callable[[str], Any] | Mapping[str, Any], workspace: Path | None,
                 names: Mapping[str, str] | None = None) -> None:
        self._factory = clients
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.workspace = Path(workspace) if workspace else None
        self.names = dict(names or {})
        self._executions = _LRU(5000)  # finished executions: describe output
        self._histories = _LRU(200)  # finished executions: history
        self._graphs = _LRU(100)  # definition sha -> Graph
        self._objects = _LRU(4000)  # (bucket, key, etag) -> bytes
        self._jobs = _LRU(500)  # finished jobs
        self._event_log: tuple[float, int, list[EventRecord]] | None = None

    # ------------------------------------------------------------------------------------------------ clients

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                factory = self._factory
                client = factory[service] if isinstance(factory, Mapping) else factory(service)
                client.meta.events.register("before-parameter-build.*.*", _before_parameters)
                client.meta.events.register("after-call.*.*", _after_call)
                self._clients[service] = client
            return self._clients[service]

    # ------------------------------------------------------------------------------------------------ Step Functions

    def state_machines(self) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        machines: list[dict[str, Any]] = []
        for page in sfn.get_paginator("list_state_machines").paginate():
            machines.extend(page["stateMachines"])
        return sorted(machines, key=lambda m: m["name"])

    def executions(self, machine_arn: str, status: str | None = None, next_token: str | None = None,
                   limit: int = 50) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {"stateMachineArn": machine_arn, "maxResults": limit}
        if status:
            kwargs["statusFilter"] = status
        if next_token:
            kwargs["nextToken"] = next_token
        page = self.client("stepfunctions").list_executions(**kwargs)
        return page["executions"], page.get("nextToken")

    def execution(self, arn: str) -> dict[str, Any]:
        cached = self._executions.get(arn)
        if cached is not None:
            return cached
        described = self.client("stepfunctions").describe_execution(executionArn=arn)
        described.pop("ResponseMetadata", None)
        if described.get("status") in TERMINAL:
            self._executions.put(arn, described)
        return described

    def history(self, arn: str, terminal: bool) -> list[dict[str, Any]]:
        cached = self._histories.get(arn)
        if cached is not None:
            return cached
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        if terminal:
            self._histories.put(arn, events)
        return events

    def machine(self, arn: str) -> dict[str, Any]:
        described = self.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
        described.pop("ResponseMetadata", None)
        return described

    def graph(self, definition: str) -> Graph:
        key = hashlib.sha256(definition.encode()).hexdigest()
        cached = self._graphs.get(key)
        return cached if cached is not None else self._graphs.put(key, definition_graph(definition))

    def start_cause(self, execution_arn: str, execution_input: Any = None) -> StartCause:
        """Who started an execution: the first resolver that knows wins, else a client. Resolvers, in order: the
        event log (an EventBridge rule or schedule started it), the input's AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID
        (a parent execution did). Another source of causes is one more function in `CAUSE_RESOLVERS`."""
        for resolve in CAUSE_RESOLVERS:
            cause = resolve(self, execution_arn, execution_input)
            if cause is not None:
                return cause
        return CLIENT

    # ------------------------------------------------------------------------------------------------ SageMaker

    def job(self, kind: str, name: str) -> dict[str, Any] | None:
        cached = self._jobs.get((kind, name))
        if cached is not None:
            return cached
        sagemaker = self.client("sagemaker")
        call = {"processing": sagemaker.describe_processing_job, "training": sagemaker.describe_training_job,
                "transform": sagemaker.describe_transform_job}[kind]
        try:
            described = call(**{_JOB_NAME_FIELD[kind]: name})
        except Exception:  # noqa: BLE001 - a job that no longer exists (or never started) is shown as such
            return None
        described.pop("ResponseMetadata", None)
        status = described.get({"processing": "ProcessingJobStatus", "training": "TrainingJobStatus",
                                 "transform": "TransformJobStatus"}[kind])
        if status in ("Completed", "Failed", "Stopped"):
            self._jobs.put((kind, name), described)
        return described

    def job_log_tail(self, name: str, lines: int = 60) -> str | None:
        """The last lines of a job's log: what CloudWatch Logs holds in AWS, the job's log file locally."""
        if self.workspace is None:
            return None
        path = self.workspace / "jobs" / name / "logs" / "stdout_stderr.log"
        if not path.is_file():
            return None
        return _tail_text(path, lines)

    def groups(self) -> list[dict[str, Any]]:
        sagemaker = self.client("sagemaker")
        groups: list[dict[str, Any]] = []
        for page in sagemaker.get_paginator("list_model_package_groups").paginate():
            groups.extend(page["ModelPackageGroupSummaryList"])
        return sorted(groups, key=lambda g: g["ModelPackageGroupName"])

    def packages(self, group: str) -> list[dict[str, Any]]:
        sagemaker = self.client("sagemaker")
        summaries: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime", "SortOrder": "Descending"}
        while True:
            page = sagemaker.list_model_packages(**kwargs)
            summaries.extend(page.get("ModelPackageSummaryList", []))
            if not page.get("NextToken"):
                return summaries
            kwargs["NextToken"] = page["NextToken"]

    def package(self, arn: str) -> dict[str, Any]:
        described = self.client("sagemaker").describe_model_package(ModelPackageName=arn)
        described.pop("ResponseMetadata", None)
        return described

    def endpoints(self) -> list[dict[str, Any]]:
        sagemaker = self.client("sagemaker")
        endpoints: list[dict[str, Any]] = []
        for page in sagemaker.get_paginator("list_endpoints").paginate():
            endpoints.extend(page["Endpoints"])
        return sorted(endpoints, key=lambda e: e["EndpointName"])

    def endpoint(self, name: str) -> dict[str, Any]:
        described = self.client("sagemaker").describe_endpoint(EndpointName=name)
        described.pop("ResponseMetadata", None)
        return described

    def endpoint_config(self, name: str) -> dict[str, Any] | None:
        try:
            described = self.client("sagemaker").describe_endpoint_config(EndpointConfigName=name)
        except Exception:  # noqa: BLE001 - a deleted config: the endpoint page says so
            return None
        described.pop("ResponseMetadata", None)
        return described

    def model(self, name: str) -> dict[str, Any] | None:
        try:
            described = self.client("sagemaker").describe_model(ModelName=name)
        except Exception:  # noqa: BLE001
            return None
        described.pop("ResponseMetadata", None)
        return described

    def model_package(self, model_name: str | None) -> str | None:
        """The model package a model serves: its container's ModelPackageName, else the `sagestep:model-package` tag
        the deployment, A/B test and batch machines put on the models they create."""
        if not model_name:
            return None
        cached = self._jobs.get(("model-package", model_name))
        if cached is not None:
            return cached or None
        model = self.model(model_name)
        if model is None:
            return None
        found = ""
        for container in [model.get("PrimaryContainer") or {}] + list(model.get("Containers") or []):
            if container.get("ModelPackageName"):
                found = str(container["ModelPackageName"])
        if not found and model.get("ModelArn"):
            try:
                tags = self.client("sagemaker").list_tags(ResourceArn=model["ModelArn"]).get("Tags", [])
            except Exception:  # noqa: BLE001 - a model without tags
                tags = []
            found = next((str(t["Value"]) for t in tags if t.get("Key") == "sagestep:model-package"), "")
        self._jobs.put(("model-package", model_name), found)  # a model never changes what it serves
        return found or None

    # ------------------------------------------------------------------------------------------------ CloudWatch

    def metric_statistics(self, endpoint: str, variant: str, metric: str, start: dt.datetime, end: dt.datetime,
                          period: int, statistics: list[str] | None = None, extended: list[str] | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"Namespace": "AWS/SageMaker", "MetricName": metric, "StartTime": start, "EndTime": end,
                                  "Period": period, "Dimensions": [{"Name": "EndpointName", "Value": endpoint},
                                                                   {"Name": "VariantName", "Value": variant}]}
        if statistics:
            kwargs["Statistics"] = statistics
        if extended:
            kwargs["ExtendedStatistics"] = extended
        return list(self.client("cloudwatch").get_metric_statistics(**kwargs).get("Datapoints", []))

    def metric_data(self, queries: list[dict[str, Any]], start: dt.datetime, end: dt.datetime) -> dict[str, dict[str, Any]]:
        """GetMetricData for up to 500 queries per call; returns id -> {"Timestamps", "Values", "Label"} oldest first."""
        cloudwatch = self.client("cloudwatch")
        out: dict[str, dict[str, Any]] = {}
        for offset in range(0, len(queries), 500):
            kwargs: dict[str, Any] = {"MetricDataQueries": queries[offset:offset + 500], "StartTime": start,
                                      "EndTime": end, "ScanBy": "TimestampAscending"}
            while True:
                page = cloudwatch.get_metric_data(**kwargs)
                for result in page["MetricDataResults"]:
                    entry = out.setdefault(result["Id"], {"Label": result.get("Label", ""), "Timestamps": [], "Values": []})
                    entry["Timestamps"].extend(result.get("Timestamps", []))
                    entry["Values"].extend(result.get("Values", []))
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        for entry in out.values():
            pairs = sorted(zip(entry["Timestamps"], entry["Values"]), key=lambda p: p[0])
            entry["Timestamps"] = [p[0] for p in pairs]
            entry["Values"] = [p[1] for p in pairs]
        return out

    # ------------------------------------------------------------------------------------------------ S3

    def list_keys(self, bucket: str, prefix: str, start_after: str | None = None) -> list[dict[str, Any]]:
        s3 = self.client("s3")
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
            items.extend(page.get("Contents", []))
        return items

    def list_prefixes(self, bucket: str, prefix: str) -> list[str]:
        s3 = self.client("s3")
        prefixes: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            prefixes.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return prefixes

    def object_bytes(self, bucket: str, key: str, etag: str | None = None) -> bytes | None:
        """An object's bytes; with its ETag (from a listing) they are cached, objects being immutable per ETag."""
        if etag is not None:
            cached = self._objects.get((bucket, key, etag))
            if cached is not None:
                return cached
        try:
            body = self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception:  # noqa: BLE001 - a missing object is shown as missing
            return None
        if etag is not None:
            self._objects.put((bucket, key, etag), body)
        return body

    def object_json(self, bucket: str, key: str, etag: str | None = None) -> Any:
        body = self.object_bytes(bucket, key, etag)
        if body is None:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    def uri_json(self, uri: str) -> Any:
        try:
            bucket, key = parse_s3_uri(uri)
        except ValueError:
            return None
        return self.object_json(bucket, key)

    def object_exists(self, uri: str) -> bool:
        try:
            bucket, key = parse_s3_uri(uri)
            self.client("s3").head_object(Bucket=bucket, Key=key)
            return True
        except Exception:  # noqa: BLE001
            return False

    def buckets(self) -> list[str]:
        return [b["Name"] for b in self.client("s3").list_buckets().get("Buckets", [])]

    def artifacts_bucket(self) -> str | None:
        """The bucket holding monitoring reports and A/B tests: named by the project, else found by its prefixes."""
        if self.names.get("ArtifactsBucket"):
            return self.names["ArtifactsBucket"]
        for bucket in self.buckets():
            if self.list_prefixes(bucket, "monitoring/") or self.list_prefixes(bucket, "ab-tests/"):
                self.names["ArtifactsBucket"] = bucket
                return bucket
        return None

    # ------------------------------------------------------------------------------------------------ workspace

    def notifications(self, limit: int = 200) -> list[dict[str, Any]]:
        """What SNS would have sent (newest first): the local cloud writes each published message to
        notifications.jsonl in the workspace, as {"TopicArn", "MessageId", "Subject", "Message"[, "Timestamp"]}."""
        if self.workspace is None:
            return []
        path = self.workspace / "notifications.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in _tail_lines(path, limit):
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        return rows[::-1]

    def event_log(self, limit: int = 500) -> list[EventRecord]:
        """Recent events (newest first) from `<workspace>/events.jsonl`, which the local cloud's EventBridge appends
        to: `{"type": "event", "received", "origin", "event": <the event as AWS shapes it>, "matched": [rule names]}`
        for each event, then `{"type": "delivery", "event_id", "rule", "target", "execution" | "error", "message"}`
        for each delivery to a target. No file: no events yet. Lines that are not JSON are skipped."""
        if self.workspace is None:
            return []
        path = self.workspace / "events.jsonl"
        try:
            stat = path.stat()
        except OSError:
            return []
        if self._event_log is not None and self._event_log[:2] == (stat.st_mtime, stat.st_size):
            return self._event_log[2][:limit]
        records = parse_event_log(_tail_lines(path, 20_000))
        self._event_log = (stat.st_mtime, stat.st_size, records)
        return records[:limit]

    def execution_causes(self) -> dict[str, StartCause]:
        causes: dict[str, StartCause] = {}
        for record in self.event_log(limit=20_000):
            for match in record.matches:
                arn = match.get("executionArn")
                if not arn or arn in causes:
                    continue
                scheduled = record.origin == "schedule" or record.detail_type == "Scheduled Event"
                what = "schedule" if scheduled else f"{record.detail_type} from {record.source}"
                causes[str(arn)] = StartCause("schedule" if scheduled else "rule", str(match.get("rule", "?")),
                                              f"{what} at {record.time}")
        return causes


def parse_event_log(lines: list[str]) -> list[EventRecord]:
    """EventRecords, newest first, each with its deliveries (`matches`: rule, target, executionArn or error)."""
    events: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    deliveries: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        if not isinstance(raw, dict):
            continue
        if raw.get("type") == "delivery":
            deliveries.setdefault(str(raw.get("event_id")), []).append(raw)
        elif isinstance(raw.get("event"), dict):
            key = str(raw["event"].get("id") or f"line-{len(order)}")
            events[key] = raw
            order.append(key)
    records = []
    for key in reversed(order):
        raw = events[key]
        event = raw["event"]
        delivered = deliveries.get(key, [])
        matches = [{"rule": d.get("rule"), "target": d.get("target"), "executionArn": d.get("execution"),
                    "error": " ".join(str(d[k]) for k in ("error", "message") if d.get(k)) or None} for d in delivered]
        delivered_rules = {d.get("rule") for d in delivered}
        matches += [{"rule": name, "target": None, "executionArn": None, "error": None}
                    for name in raw.get("matched") or [] if name not in delivered_rules]
        detail_type = str(event.get("detail-type") or ("Scheduled Event" if raw.get("origin") == "schedule" else ""))
        records.append(EventRecord(
            time=str(event.get("time") or raw.get("received") or ""),
            source=str(event.get("source") or ("schedule " + str(event.get("schedule", "")) if event.get("schedule") else "")),
            detail_type=detail_type,
            resources=tuple(str(r) for r in event.get("resources") or []),
            detail=event.get("detail") if isinstance(event.get("detail"), dict) else {},
            matches=tuple(matches),
            origin=str(raw.get("origin", "")),
        ))
    return records


def _cause_from_event_log(sources: Sources, execution_arn: str, _input: Any) -> StartCause | None:
    return sources.execution_causes().get(execution_arn)


def _cause_from_input(_sources: Sources, _arn: str, execution_input: Any) -> StartCause | None:
    if isinstance(execution_input, str):
        try:
            execution_input = json.loads(execution_input)
        except ValueError:
            return None
    if isinstance(execution_input, dict) and execution_input.get(STARTED_BY_EXECUTION):
        parent = str(execution_input[STARTED_BY_EXECUTION])
        return StartCause("execution", parent.rsplit(":", 1)[-1], f"started by execution {parent}", parent)
    return None


CAUSE_RESOLVERS: tuple[Callable[[Sources, str, Any], StartCause | None], ...] = (_cause_from_event_log, _cause_from_input)


def _tail_lines(path: Path, count: int, block: int = 1 << 16) -> list[str]:
    """The last `count` non-empty lines of a text file, read from its end (the file may be large)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        end = handle.tell()
        data = b""
        while end > 0 and data.count(b"\n") <= count:
            start = max(0, end - block)
            handle.seek(start)
            data = handle.read(end - start) + data
            end = start
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    if end > 0:
        lines = lines[1:]  # the first line may be cut
    return lines[-count:]


def _tail_text(path: Path, count: int) -> str:
    return "\n".join(_tail_lines(path, count))


def job_reference(resource: str, parameters: Any) -> tuple[str, str] | None:
    """(kind, job name) of a SageMaker job task, from its resource and the parameters it was scheduled with."""
    action = resource.rsplit(":", 1)[-1].split(".", 1)[0]
    action = re.sub(r"^arn.*sagemaker:", "", action)
    kind = JOB_KINDS.get(action)
    if kind is None or not isinstance(parameters, dict):
        return None
    name = parameters.get(_JOB_NAME_FIELD[kind])
    return (kind, str(name)) if name else None


def iter_status_transitions(job: Mapping[str, Any]) -> Iterator[tuple[str, Any, Any, str]]:
    """(status, start, end, message) rows of a job's timeline: training jobs have SecondaryStatusTransitions, other
    jobs only their creation, start and end times."""
    transitions = job.get("SecondaryStatusTransitions")
    if transitions:
        for item in transitions:
            yield item.get("Status", ""), item.get("StartTime"), item.get("EndTime"), item.get("StatusMessage", "")
        return
    prefix = "Processing" if "ProcessingJobName" in job else "Transform" if "TransformJobName" in job else "Training"
    created, started, ended = job.get("CreationTime"), job.get(f"{prefix}StartTime"), job.get(f"{prefix}EndTime")
    status = job.get(f"{prefix}JobStatus", "")
    yield "Created", created, started or created, ""
    if started:
        yield "InProgress", started, ended, ""
    if ended:
        yield status, ended, ended, job.get("FailureReason", "") or job.get("ExitMessage", "")
