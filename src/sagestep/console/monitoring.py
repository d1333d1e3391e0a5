"""Monitoring over time, from the reports the monitoring state machine writes (Model Monitor formats, see
MONITORING_FORMATS.md): `s3://<artifacts>/monitoring/<endpoint>/<schedule>/yyyy/mm/dd/hh/<execution>/` holds
`data-quality/` (statistics, constraints, constraint_violations, drift_report, summary), `model-quality/` and
`bias/` (each with summary.json) of one run. A run's files never change once written, so what is read from them is
cached by ETag. Keys sort by window hour, and a run writes into the hour folder of its window, which only moves
forward: after one full listing, a refresh lists only the newest hour folder and what sorts after it (a few keys,
whatever the history), and a full listing every few minutes catches a backfill into an older hour.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from sagestep.console.sources import Sources, _LRU

CHECKS = {"data_quality": "data-quality", "model_quality": "model-quality", "bias_attribution": "bias"}
_RUN = re.compile(r"^monitoring/(?P<endpoint>[^/]+)/(?P<schedule>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
                  r"(?P<h>\d{2})/(?P<execution>[^/]+)/(?P<rest>.+)$")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
LISTING_TTL_SECONDS = 2.0  # re-list at most this often (a page polled by several tabs lists once)
FULL_LISTING_SECONDS = 300.0
SCHEDULES_TTL_SECONDS = 30.0


@dataclasses.dataclass
class Run:
    endpoint: str
    schedule: str
    hour: dt.datetime
    execution: str
    prefix: str
    files: dict[str, tuple[str, str, dt.datetime]] = dataclasses.field(default_factory=dict)  # rest -> (key, etag, modified)
    label: str = ""

    @property
    def finished_at(self) -> dt.datetime:
        return max((f[2] for f in self.files.values()), default=self.hour)



@dataclasses.dataclass
class _Listing:
    items: dict[str, dict[str, Any]]
    full_at: float
    checked: float = 0.0
    runs: list[Run] = dataclasses.field(default_factory=list)


def _hour_prefix(key: str) -> str:
    match = _RUN.match(key)
    return key[: len(key) - len(match["rest"]) - len(match["execution"]) - 1] if match else ""


def _runs(items: Any) -> list[Run]:
    runs: dict[str, Run] = {}
    for item in items:
        match = _RUN.match(item["Key"])
        if not match:
            continue
        prefix = item["Key"][: len(item["Key"]) - len(match["rest"])]
        run = runs.get(prefix)
        if run is None:
            hour = dt.datetime(int(match["y"]), int(match["m"]), int(match["d"]), int(match["h"]), tzinfo=dt.timezone.utc)
            run = runs[prefix] = Run(match["endpoint"], match["schedule"], hour, match["execution"], prefix)
        modified = item["LastModified"]
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=dt.timezone.utc)
        run.files[match["rest"]] = (item["Key"], item["ETag"].strip('"'), modified)
    ordered = sorted((r for r in runs.values() if any(f.endswith("summary.json") for f in r.files)),
                     key=lambda r: (r.hour, r.finished_at, r.execution))
    # A run is named by its window (the hour folder); runs sharing a window (re-runs, tests) by when they ended.
    shared = len({r.hour for r in ordered}) < len(ordered)
    for run in ordered:
        run.label = run.finished_at.strftime("%m-%d %H:%M:%S") if shared else run.hour.strftime("%m-%d %H:00")
    return ordered


class Monitoring:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self._listing: dict[tuple[str, str, str], _Listing] = {}
        self._schedules: tuple[float, list[tuple[str, str]]] | None = None
        self._digests = _LRU(20_000)
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------------------------- discovery

    def schedules(self) -> list[tuple[str, str]]:
        with self._lock:
            if self._schedules is not None and time.monotonic() - self._schedules[0] < SCHEDULES_TTL_SECONDS:
                return self._schedules[1]
        bucket = self.sources.artifacts_bucket()
        if bucket is None:
            return []
        found = []
        for endpoint_prefix in self.sources.list_prefixes(bucket, "monitoring/"):
            endpoint = endpoint_prefix.split("/")[1]
            for schedule_prefix in self.sources.list_prefixes(bucket, endpoint_prefix):
                schedule = schedule_prefix.split("/")[2]
                if schedule != "merged":
                    found.append((endpoint, schedule))
        with self._lock:
            self._schedules = (time.monotonic(), found)
        return found

    def runs(self, endpoint: str, schedule: str) -> list[Run]:
        bucket = self.sources.artifacts_bucket()
        if bucket is None:
            return []
        key = (bucket, endpoint, schedule)
        base = f"monitoring/{endpoint}/{schedule}/"
        with self._lock:
            listing = self._listing.get(key)
            now = time.monotonic()
            if listing is not None and now - listing.checked < LISTING_TTL_SECONDS:
                return listing.runs
        if listing is None or now - listing.full_at > FULL_LISTING_SECONDS:
            items = {item["Key"]: item for item in self.sources.list_keys(bucket, base)}
            listing = _Listing(items=items, full_at=now)
        else:
            newest_hour = max((_hour_prefix(k) for k in listing.items), default="")
            fresh = self.sources.list_keys(bucket, base, start_after=newest_hour) if newest_hour else self.sources.list_keys(bucket, base)
            items = {k: v for k, v in listing.items.items() if _hour_prefix(k) < newest_hour}
            items.update({item["Key"]: item for item in fresh})
            listing = _Listing(items=items, full_at=listing.full_at)
        listing.runs = _runs(listing.items.values())
        listing.checked = time.monotonic()
        with self._lock:
            self._listing[key] = listing
        return listing.runs

    def warm(self) -> int:
        """Read every run's summaries and feature statistics once (into the caches), e.g. in a background thread when
        the console starts, so the first look at a long history is as fast as the next. Returns the runs read."""
        count = 0
        for endpoint, schedule in self.schedules():
            for run in self.runs(endpoint, schedule):
                self.summaries(run)
                self.feature_digest(run)
                count += 1
        return count

    # ---------------------------------------------------------------------------------------------- reading

    def _json(self, run: Run, rest: str) -> Any:
        entry = run.files.get(rest)
        if entry is None:
            return None
        bucket = self.sources.artifacts_bucket()
        assert bucket is not None
        return self.sources.object_json(bucket, entry[0], entry[1])

    def summaries(self, run: Run) -> dict[str, dict[str, Any]]:
        out = {}
        for check, folder in CHECKS.items():
            summary = self._json(run, f"{folder}/summary.json")
            if isinstance(summary, dict):
                out[check] = summary
        return out

    def violations(self, run: Run) -> list[dict[str, Any]]:
        rows = []
        for check, folder in CHECKS.items():
            document = self._json(run, f"{folder}/constraint_violations.json")
            for violation in (document or {}).get("violations", []) if isinstance(document, dict) else []:
                rows.append({"check": check, **violation})
        return rows

    def feature_digest(self, run: Run) -> dict[str, dict[str, Any]]:
        """Per feature of one run: count, missing %, mean, std, min, max, quantiles, drift distance and threshold,
        PSI, flagged. Cached by the ETags of the run's statistics and drift report."""
        stats_entry = run.files.get("data-quality/statistics.json")
        drift_entry = run.files.get("data-quality/drift_report.json")
        if stats_entry is None:
            return {}
        cache_key = (stats_entry[1], drift_entry[1] if drift_entry else None)
        cached = self._digests.get(cache_key)
        if cached is not None:
            return cached
        statistics = self._json(run, "data-quality/statistics.json") or {}
        drift = self._json(run, "data-quality/drift_report.json") or {}
        return self._digests.put(cache_key, digest(statistics, drift))

    def baseline_digest(self, statistics_uri: str | None) -> dict[str, dict[str, Any]]:
        if not statistics_uri:
            return {}
        cached = self._digests.get(("baseline", statistics_uri))
        if cached is not None:
            return cached
        statistics = self.sources.uri_json(statistics_uri)
        if not isinstance(statistics, dict):
            return {}
        return self._digests.put(("baseline", statistics_uri), digest(statistics, {}))


def digest(statistics: Mapping[str, Any], drift: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    distances = {f.get("name"): f for f in drift.get("features", []) if isinstance(f, dict)}
    out: dict[str, dict[str, Any]] = {}
    for feature in statistics.get("features", []):
        name = feature.get("name")
        numeric = feature.get("numerical_statistics")
        block = numeric or feature.get("string_statistics") or {}
        common = block.get("common", {})
        present, missing = float(common.get("num_present", 0)), float(common.get("num_missing", 0))
        row: dict[str, Any] = {
            "type": feature.get("inferred_type"),
            "count": present + missing,
            "missing_pct": 100.0 * missing / (present + missing) if present + missing else None,
        }
        if numeric:
            row.update(mean=numeric.get("mean"), std=numeric.get("std_dev"), min=numeric.get("min"), max=numeric.get("max"))
            row.update(quantiles(numeric))
        else:
            buckets = ((block.get("distribution") or {}).get("categorical") or {}).get("buckets") or []
            total = sum(float(b.get("count", 0)) for b in buckets) or 1.0
            row["top"] = sorted(((str(b.get("value")), 100.0 * float(b.get("count", 0)) / total) for b in buckets),
                                key=lambda item: -item[1])[:5]
            row["distinct"] = block.get("distinct_count")
        drifted = distances.get(name)
        if drifted:
            row.update(distance=drifted.get("distance"), threshold=drifted.get("threshold"), psi=drifted.get("psi"),
                       flagged=bool(drifted.get("flagged")), method=drifted.get("comparison_method"))
        out[str(name)] = row
    return out


def quantiles(numeric: Mapping[str, Any]) -> dict[str, float | None]:
    """Quantiles from the KLL sketch Model Monitor stores with each numeric feature."""
    sketch = ((numeric.get("distribution") or {}).get("kll") or {}).get("sketch")
    names = {q: f"p{int(q * 100):02d}" for q in QUANTILES}
    if not sketch:
        return {name: None for name in names.values()}
    from sagestep.monitoring.kll import KLLSketch, SketchFormatError

    try:
        values = KLLSketch.from_dict(sketch).quantile(list(QUANTILES))
    except (SketchFormatError, ValueError, IndexError):
        return {name: None for name in names.values()}
    return {names[q]: float(v) for q, v in zip(QUANTILES, values)}
