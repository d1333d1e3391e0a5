"""Local traffic for A/B tests and monitoring: real held-out rows through a local endpoint, labels later.

`Traffic` sends rows (features by name, JSON `{"instances": [...]}`) through the runtime's endpoint router with an
`InferenceId` each, at a steady rate (InvokeEndpoint, as a client application calls it), and PUTs each row's true
label as a ground-truth record (MONITORING_FORMATS.md) `labels_after` seconds later — for every row, or with
`labels="approved"` only for the rows the serving variant approved, as in lending, where only an approved applicant
can repay or default — to `s3://<artifacts bucket>/ground-truth/<endpoint>/yyyy/mm/dd/hh/` by the hour the label
arrived, as a labelling process would.

It runs in a thread beside an A/B execution (tests, the demo) or from `sagestep local traffic` on its own, against the
workspace's local cloud.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import math
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

UTC = dt.timezone.utc
LABEL_BATCH_SECONDS = 0.5


class TrafficInputError(ValueError):
    """The rows file cannot be used; the message names the file, the column and the fix."""


@dataclass(frozen=True)
class Rows:
    features: list[str]
    instances: list[dict[str, Any]]
    labels: list[int]


def load_rows(path: str | Path, target: str | None = None, dataset_config: str | Path | None = None) -> Rows:
    """Held-out rows with a 0/1 (or positive-label) target column: the run's preprocess/test/test.csv, or raw data
    with `dataset_config` telling the target, positive label and id column."""
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise TrafficInputError(f"{path}: the file is empty; pass a CSV with a header and one row per request") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise TrafficInputError(f"{path}: not a readable CSV ({type(exc).__name__}: {str(exc)[:120]}); pass a UTF-8 CSV "
                                "with a header and one row per request") from None
    if frame.empty:
        raise TrafficInputError(f"{path}: a header but no rows; add the rows to send")
    positive: Any = 1
    drop: list[str] = []
    inputs: list[str] | None = None
    regression = False
    if dataset_config is not None:
        from sagestep.training.config import load_dataset_config

        config = load_dataset_config(Path(dataset_config))
        target = target or config.target
        positive = config.positive_label
        regression = config.is_regression
        drop = [c for c in [getattr(config, "id_column", None)] if c]
        inputs = [c for c in config.input_columns if c in frame.columns]  # what a request carries (no target)
    if target is None:
        candidates = [c for c in frame.columns if c.lower() in ("target", "label", "status", "y")]
        if len(candidates) != 1:
            raise TrafficInputError(f"{path}: say which column holds the true label (--target or --dataset-config)")
        target = candidates[0]
    if target not in frame.columns:
        raise TrafficInputError(f"{path}: no column {target!r}; columns are {list(frame.columns)}")
    values = frame[target]
    missing = values.isna()
    if missing.any():
        first = int(missing.to_numpy().nonzero()[0][0]) + 2  # the file's line: header is line 1
        raise TrafficInputError(f"{path}: {int(missing.sum())} row(s) have no value in the label column {target!r} "
                                f"(first on line {first}); drop them or fill in their label")
    if regression:  # a regressor's ground truth is the true value itself
        labels: list[Any] = values.astype(float).tolist()
    elif set(values.dropna().unique()) <= {0, 1}:
        labels = values.astype(int).tolist()
    else:
        labels = (values.astype(str) == str(positive)).astype(int).tolist()
    features = inputs if inputs is not None else [c for c in frame.columns if c != target and c not in drop]
    instances = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame[features].to_dict(orient="records")
    ]
    return Rows(features, instances, labels)


def _approved(payload: bytes) -> bool:
    """Whether the endpoint's answer approved the applicant (JSON predictions or CSV `score,decision,...`)."""
    text = payload.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        return str(json.loads(text)["predictions"][0].get("decision", "")).lower() == "approve"
    cells = text.split(",")
    return len(cells) > 1 and cells[1].strip().lower() == "approve"


@dataclass
class TrafficReport:
    sent: int = 0
    errors: int = 0
    by_variant: dict[str, int] = field(default_factory=dict)
    errors_by_variant: dict[str, int] = field(default_factory=dict)
    client_errors_by_variant: dict[str, int] = field(default_factory=dict)
    server_errors_by_variant: dict[str, int] = field(default_factory=dict)
    labels_written: int = 0
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"Sent": self.sent, "Errors": self.errors, "ByVariant": self.by_variant,
                "ErrorsByVariant": self.errors_by_variant, "ClientErrorsByVariant": self.client_errors_by_variant,
                "ServerErrorsByVariant": self.server_errors_by_variant, "LabelsWritten": self.labels_written,
                "LastError": self.last_error}


class Traffic:
    """Send rows through `endpoint` of a running LocalRuntime; write their labels `labels_after` seconds later."""

    def __init__(
        self,
        runtime: Any,
        endpoint: str,
        rows: Rows,
        *,
        rate: float = 50.0,
        labels_after: float = 1.0,
        seed: int = 0,
        run_id: str | None = None,
        labels: str = "all",
    ) -> None:
        if rate <= 0:
            raise TrafficInputError(f"rate must be positive, got {rate}")
        if labels not in ("all", "approved"):
            raise TrafficInputError(f"labels must be 'all' or 'approved', got {labels!r}")
        self.labels = labels
        self.runtime = runtime
        self.endpoint = endpoint
        self.rows = rows
        self.rate = rate
        self.labels_after = labels_after
        self.random = random.Random(seed)
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.report = TrafficReport()
        self.bucket = runtime.bucket("ArtifactsBucket")
        self.label_prefix = f"ground-truth/{endpoint}"
        self.invoker = runtime.client("sagemaker-runtime")
        self.s3 = runtime.client("s3")
        self._due: list[tuple[float, str, int]] = []
        self._bad_pending = 0
        self._lock = threading.Lock()
        self._last_delivery = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- sending
    def send(self, count: int | None = None, duration: float | None = None) -> TrafficReport:
        """Send `count` requests (or for `duration` seconds, or until stop()); then deliver the remaining labels."""
        order = list(range(len(self.rows.instances)))
        sent = 0
        started = time.monotonic()
        while not self._stop.is_set():
            if count is not None and sent >= count:
                break
            if duration is not None and time.monotonic() - started >= duration:
                break
            if sent % len(order) == 0:
                self.random.shuffle(order)
            index = order[sent % len(order)]
            with self._lock:
                bad, self._bad_pending = self._bad_pending > 0, max(0, self._bad_pending - 1)
            self._invoke(index, f"{self.run_id}-{sent:07d}", bad=bad)
            sent += 1
            self._deliver_labels(time.time())
            pause = started + sent / self.rate - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)
        while self._due:
            self._deliver_labels(time.time(), force=True)
            if self._due:
                time.sleep(min(0.2, max(0.0, self._due[0][0] - time.time())))
        return self.report

    def burst(self, count: int) -> None:
        """Make the next `count` requests client errors (an unknown field: the model answers 400), as a broken
        client would send them; they get no label."""
        with self._lock:
            self._bad_pending += int(count)

    def _invoke(self, index: int, inference_id: str, bad: bool = False) -> None:
        instance = {**self.rows.instances[index], "NotAFeature": 1} if bad else self.rows.instances[index]
        body = json.dumps({"instances": [instance]}, default=str).encode()
        payload = b""
        try:
            answer = self.invoker.invoke_endpoint(EndpointName=self.endpoint, Body=body, ContentType="application/json",
                                                  Accept="application/json", InferenceId=inference_id)
            status, variant, payload = 200, answer.get("InvokedProductionVariant", "-"), answer["Body"].read()
        except self.invoker.exceptions.ModelError as exc:  # the model answered 4xx/5xx
            error = exc.response
            status = int(error.get("OriginalStatusCode", 500))
            variant = str(error.get("LogStreamArn", "")).rsplit("/", 1)[-1] or "-"
            self.report.last_error = str(error.get("OriginalMessage", ""))[:300]
        except Exception as exc:  # the endpoint is updating or gone: a client sees an error and moves on
            status, variant = 503, "-"
            self.report.last_error = f"{type(exc).__name__}: {exc}"
        self.report.sent += 1
        self.report.by_variant[variant] = self.report.by_variant.get(variant, 0) + 1
        if status >= 400:
            self.report.errors += 1
            self.report.errors_by_variant[variant] = self.report.errors_by_variant.get(variant, 0) + 1
            key = "client_errors_by_variant" if status < 500 else "server_errors_by_variant"
            getattr(self.report, key)[variant] = getattr(self.report, key).get(variant, 0) + 1
            return  # no answer, no decision: nobody will ever see this applicant's outcome
        if self.labels == "approved" and not _approved(payload):
            return
        heapq.heappush(self._due, (time.time() + self.labels_after, inference_id, self.rows.labels[index]))

    def _deliver_labels(self, now: float, force: bool = False) -> None:
        # One file per half second at most: labels arrive in batches, as a labelling job would deliver them.
        if not force and now - self._last_delivery < LABEL_BATCH_SECONDS:
            return
        self._last_delivery = now
        batch = []
        while self._due and self._due[0][0] <= now:
            batch.append(heapq.heappop(self._due))
        if not batch:
            return
        arrived = dt.datetime.fromtimestamp(now, UTC)
        key = f"{self.label_prefix}/{arrived:%Y/%m/%d/%H}/labels-{arrived:%M%S%f}-{uuid.uuid4().hex[:8]}.jsonl"
        lines = [
            json.dumps({"groundTruthData": {"data": str(label), "encoding": "CSV"},
                        "eventMetadata": {"eventId": inference_id}, "eventVersion": "0"}, separators=(",", ":"))
            for _, inference_id, label in batch
        ]
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
        self.report.labels_written += len(batch)

    # -- in a thread
    def start(self, count: int | None = None, duration: float | None = None) -> Traffic:
        self._thread = threading.Thread(target=self.send, kwargs={"count": count, "duration": duration}, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> TrafficReport:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.report
