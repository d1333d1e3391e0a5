"""Local traffic for A/B tests and monitoring: real held-out rows through a local endpoint, labels later.

`Traffic` sends rows (features by name, JSON `{"instances": [...]}`) through the runtime's endpoint router with an
`InferenceId` each, at a steady rate, and writes each row's true label as a ground-truth record
(MONITORING_FORMATS.md) `labels_after` seconds later, under
`<workspace>/s3/<artifacts bucket>/ground-truth/<endpoint>/yyyy/mm/dd/hh/` by the hour the label arrived. The
runtime loads those files into S3 before every Lambda invocation, so the merge sees them as in AWS.

It runs in a thread of the process that owns the runtime (tests and the demo run it beside an A/B execution), or
from `sagestep local traffic` on its own.
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
    frame = pd.read_csv(path)
    positive: Any = 1
    drop: list[str] = []
    inputs: list[str] | None = None
    if dataset_config is not None:
        from sagestep.training.config import load_dataset_config

        config = load_dataset_config(Path(dataset_config))
        target = target or config.target
        positive = config.positive_label
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
    if set(values.dropna().unique()) <= {0, 1}:
        labels = values.astype(int).tolist()
    else:
        labels = (values.astype(str) == str(positive)).astype(int).tolist()
    features = inputs if inputs is not None else [c for c in frame.columns if c != target and c not in drop]
    instances = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in frame[features].to_dict(orient="records")
    ]
    return Rows(features, instances, labels)


@dataclass
class TrafficReport:
    sent: int = 0
    errors: int = 0
    by_variant: dict[str, int] = field(default_factory=dict)
    errors_by_variant: dict[str, int] = field(default_factory=dict)
    labels_written: int = 0
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"Sent": self.sent, "Errors": self.errors, "ByVariant": self.by_variant,
                "ErrorsByVariant": self.errors_by_variant, "LabelsWritten": self.labels_written, "LastError": self.last_error}


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
    ) -> None:
        if rate <= 0:
            raise TrafficInputError(f"rate must be positive, got {rate}")
        self.runtime = runtime
        self.endpoint = endpoint
        self.rows = rows
        self.rate = rate
        self.labels_after = labels_after
        self.random = random.Random(seed)
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.report = TrafficReport()
        bucket = runtime.bucket("ArtifactsBucket")
        self.label_root = runtime.workspace.s3_dir / bucket / "ground-truth" / endpoint
        self._due: list[tuple[float, str, int]] = []
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
            self._invoke(index, f"{self.run_id}-{sent:07d}")
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

    def _invoke(self, index: int, inference_id: str) -> None:
        body = json.dumps({"instances": [self.rows.instances[index]]}, default=str).encode()
        try:
            status, _, _, variant = self.runtime.endpoints.invoke(
                self.endpoint, body, "application/json", "application/json", None, inference_id
            )
        except Exception as exc:  # the endpoint is updating or gone: a client sees an error and moves on
            status, variant = 503, "-"
            self.report.last_error = f"{type(exc).__name__}: {exc}"
        self.report.sent += 1
        self.report.by_variant[variant] = self.report.by_variant.get(variant, 0) + 1
        if status >= 400:
            self.report.errors += 1
            self.report.errors_by_variant[variant] = self.report.errors_by_variant.get(variant, 0) + 1
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
        directory = self.label_root / f"{arrived:%Y/%m/%d/%H}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"labels-{arrived:%M%S%f}-{uuid.uuid4().hex[:8]}.jsonl"
        lines = [
            json.dumps({"groundTruthData": {"data": str(label), "encoding": "CSV"},
                        "eventMetadata": {"eventId": inference_id}, "eventVersion": "0"}, separators=(",", ":"))
            for _, inference_id, label in batch
        ]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(path)
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
