"""One merge look over S3 prefixes: the ground-truth merge of `sagestep.monitoring.merge` for a Lambda.

Captures come from `s3://…/capture/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`, labels from
`s3://…/ground-truth/<endpoint>/yyyy/mm/dd/hh/*.jsonl`; the merged records and the merge state (pending captures and
labels) live under the output prefix (`merged-<window end>.jsonl` in the hour of the window end, `_merge_state/`).

Labels are taken by arrival (the object's LastModified): everything that arrived after the previous look's cutoff
and at or before this look's time `at`. The hourly merge reads complete label hours only; an A/B look, which may come
every few minutes, must not wait for the hour to end. A retried look (same `at`) reads the same snapshot, the same
labels and rewrites the same output key, so its result is unchanged.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sagestep.monitoring import merge
from sagestep.aws.s3io import parse_s3_uri

UTC = dt.timezone.utc
STATE_PREFIX = "_merge_state/"


def _objects(s3: Any, uri: str) -> Iterator[dict[str, Any]]:
    bucket, prefix = parse_s3_uri(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield {**item, "Bucket": bucket, "Relative": item["Key"][len(prefix):]}


def _hour_of(relative: str) -> dt.datetime | None:
    """The hour of `…/yyyy/mm/dd/hh/file` (any depth above it), or None."""
    parts = relative.split("/")
    if len(parts) < 5:
        return None
    try:
        y, m, d, h = (int(p) for p in parts[-5:-1])
        return dt.datetime(y, m, d, h, tzinfo=UTC)
    except ValueError:
        return None


def _download(s3: Any, item: dict[str, Any], target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(s3.get_object(Bucket=item["Bucket"], Key=item["Key"])["Body"].read())
    return target


def _lines(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        with open(path, "rb") as handle:
            yield from handle


def merge_look(
    s3: Any,
    capture_uri: str,
    ground_truth_uri: str,
    output_uri: str,
    *,
    at: dt.datetime,
    start_offset: str,
    end_offset: str,
    since: dt.datetime | None = None,
    work_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Merge the captures of (previous look or window start, at + end_offset] with the labels arrived by `at`."""
    window_start, window_end = merge.merge_window_bounds(at, start_offset, end_offset)
    if since is not None and since > window_start:
        window_start = min(since, window_end - dt.timedelta(microseconds=1))
    stamp = window_end.strftime("%Y%m%dT%H%M%SZ")
    bucket, out_prefix = parse_s3_uri(output_uri.rstrip("/") + "/")
    with tempfile.TemporaryDirectory(prefix="merge-look-", dir=work_dir) as tmp:
        root = Path(tmp)
        state_root = root / "state"
        state_root.mkdir()
        # The newest snapshot that ended strictly before this window's end (the previous look).
        snapshots = sorted({
            item["Relative"][len(STATE_PREFIX):].split("/")[0]
            for item in _objects(s3, output_uri) if item["Relative"].startswith(STATE_PREFIX)
        })
        earlier = [s for s in snapshots if s < stamp]
        if earlier:
            for item in _objects(s3, f"{output_uri.rstrip('/')}/{STATE_PREFIX}{earlier[-1]}/"):
                _download(s3, item, state_root / earlier[-1] / item["Relative"])
        pending = merge.load_pending_state(state_root, before=window_end)

        lower = pending.captures_through or window_start
        first_hour = lower.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
        last_hour = window_end.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        captures = [
            _download(s3, item, root / "capture" / item["Relative"])
            for item in _objects(s3, capture_uri)
            if (hour := _hour_of(item["Relative"])) is not None and first_hour <= hour <= last_hour
        ]
        labels_after = pending.labels_through or window_start
        # A label's hour directory is when it arrived; its object may be stored a little later (an hour of slack).
        oldest_hour = labels_after.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
        labels = [
            _download(s3, item, root / "labels" / item["Relative"])
            for item in _objects(s3, ground_truth_uri)
            if (hour := _hour_of(item["Relative"])) is not None and hour >= oldest_hour
            and labels_after < item["LastModified"].astimezone(UTC) <= at
        ]
        hour_dir = f"{window_end:%Y/%m/%d/%H}"
        output_file = root / "out" / hour_dir / f"merged-{stamp}.jsonl"
        report = merge.merge_window(
            _lines(sorted(captures)),
            _lines(sorted(labels)),
            window_start,
            window_end,
            pending,
            output_file=output_file,
            new_state_dir=state_root / stamp,
            labels_through=at,
            work_dir=root,
        )
        s3.put_object(Bucket=bucket, Key=f"{out_prefix}{hour_dir}/merged-{stamp}.jsonl", Body=output_file.read_bytes())
        for path in sorted((state_root / stamp).rglob("*")):
            if path.is_file():
                key = f"{out_prefix}{STATE_PREFIX}{stamp}/{path.relative_to(state_root / stamp).as_posix()}"
                s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return {
        "MergedS3Uri": f"s3://{bucket}/{out_prefix}{hour_dir}/merged-{stamp}.jsonl",
        "Merged": report.merged,
        "Pending": report.pending_captures,
        "PendingLabels": report.pending_labels,
        "Duplicates": report.duplicate_captures + report.duplicate_labels,
        "Malformed": report.malformed_captures + report.malformed_labels,
        "WindowStart": report.window_start,
        "WindowEnd": report.window_end,
    }
