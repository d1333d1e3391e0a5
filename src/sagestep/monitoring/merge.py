"""Ground-truth merge: join data-capture records with late-arriving labels, streaming and idempotent.

Layout (MONITORING_FORMATS.md): capture `{prefix}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl` (hour of the
inference), ground truth `{prefix}/yyyy/mm/dd/hh/*.jsonl` (hour the label arrived), merged output
`{output}/yyyy/mm/dd/hh/merged-<window end>.jsonl` in the hour of the window end. A merged record is the capture
record plus a top-level `groundTruthData`; records are joined on `eventMetadata.inferenceId` when the capture has
one, else on `eventMetadata.eventId` (the label's `eventMetadata.eventId` holds that key).

Windows and carried records. A run at time `at` covers captures with `inferenceTime` in
`[at + start_offset, at + end_offset]`; when an earlier run left a state snapshot, the window starts right after
that run's window end instead, so overlapping windows never merge a record twice and a skipped run loses nothing.
Labels are read from the complete hours after the previous run's (or, first, from the window start's hour) up to
`at`. Captures without a label yet, and labels without a capture yet, are kept in the new state snapshot and fed to
the next window: nothing is dropped. Duplicates (same key) keep the first capture and the latest label; they and
malformed lines are counted and reported, never fatal.

Idempotence: a run reads the newest snapshot of a window that ended strictly before its own window end and writes
its own snapshot under its window end, so re-running a window reads the same inputs and rewrites byte-identical
output (records sorted by inference time, then key).

Memory does not grow with the input: records are hash-partitioned by key into temporary files (partition count
scaled to the input size), each partition is joined in memory on its own, and the sorted partition results are
k-way merged into the outputs. Partitioning and joining run in `workers` forked processes (plain
`multiprocessing.Process`, which Lambda supports); forked workers share Python's string hash, and the output does
not depend on the partitioning.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import itertools
import json
import math
import multiprocessing
import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
LINE_BASE = 10**9  # order token = source index * LINE_BASE + line number
MAX_EXAMPLES = 10
DEFAULT_PARTITIONS = 64
PARTITION_TARGET_BYTES = 48 * 2**20  # of input per partition: tens of MB in memory when joined
FLUSH_LINES = 10_000  # buffered partition lines per writer before appending to the files
SNAPSHOTS_KEPT = 48
_STAMP = "%Y%m%dT%H%M%SZ"
_JSONL = (".jsonl", ".json", ".jsonl.out")


class MergeInputError(ValueError):
    """Bad merge arguments or inputs (offsets, times, directories); the message says what to fix."""


# -- durations and windows ---------------------------------------------------------------------------------------
_DURATION = re.compile(
    r"^(?P<sign>[+-])?P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_iso_duration(text: str) -> dt.timedelta:
    """`-PT3H`, `PT90M`, `-P1DT2H30M`, ... as a timedelta; years and months are rejected (their length varies)."""
    value = text.strip().upper()
    match = _DURATION.match(value)
    if not match or value.endswith(("P", "T")) or not any(
        match.group(k) for k in ("weeks", "days", "hours", "minutes", "seconds")
    ):
        hint = " (years and months are not supported; use days, e.g. -P30D)" if re.search(r"\d+Y|P[^T]*\d+M", value) else ""
        raise MergeInputError(
            f"offset {text!r} is not an ISO-8601 duration such as -PT3H, -PT30M or -P1DT2H{hint}"
        )
    delta = dt.timedelta(
        weeks=float(match.group("weeks") or 0),
        days=float(match.group("days") or 0),
        hours=float(match.group("hours") or 0),
        minutes=float(match.group("minutes") or 0),
        seconds=float(match.group("seconds") or 0),
    )
    return -delta if match.group("sign") == "-" else delta


def parse_time(text: str) -> dt.datetime:
    """An ISO-8601 timestamp (`Z` or an offset; naive means UTC) as an aware UTC datetime."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise MergeInputError(f"time {text!r} is not ISO-8601, e.g. 2024-05-01T12:00:00Z") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def merge_window_bounds(
    at: dt.datetime, start_offset: str | dt.timedelta, end_offset: str | dt.timedelta
) -> tuple[dt.datetime, dt.datetime]:
    start = start_offset if isinstance(start_offset, dt.timedelta) else parse_iso_duration(start_offset)
    end = end_offset if isinstance(end_offset, dt.timedelta) else parse_iso_duration(end_offset)
    if end > dt.timedelta(0):
        raise MergeInputError(f"end offset {end_offset} is in the future of the run time; use zero or a negative duration")
    if start >= end:
        raise MergeInputError(f"start offset {start_offset} must be earlier than end offset {end_offset}, e.g. -PT3H and -PT1H")
    return at + start, at + end


def _floor_hour(value: dt.datetime) -> dt.datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _micros(value: dt.datetime) -> int:
    return (value - EPOCH) // dt.timedelta(microseconds=1)


@functools.lru_cache(maxsize=4096)
def _time_micros(text: str) -> int:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - EPOCH) // dt.timedelta(microseconds=1)


def _hour_path(value: dt.datetime) -> Path:
    return Path(f"{value:%Y}", f"{value:%m}", f"{value:%d}", f"{value:%H}")


# -- state ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PendingState:
    """What earlier windows left: unmatched captures and labels, and how far captures and labels were read."""

    captures_path: Path | None = None
    labels_path: Path | None = None
    captures_through: dt.datetime | None = None
    labels_through: dt.datetime | None = None

    @classmethod
    def empty(cls) -> PendingState:
        return cls()


def load_pending_state(state_dir: str | Path, before: dt.datetime) -> PendingState:
    """The newest snapshot in `state_dir` whose window ended strictly before `before` (empty if none)."""
    root = Path(state_dir)
    if not root.is_dir():
        return PendingState.empty()
    limit = before.strftime(_STAMP)
    stamps = sorted(p.name for p in root.iterdir() if p.is_dir() and _is_stamp(p.name) and p.name < limit)
    if not stamps:
        return PendingState.empty()
    snapshot = root / stamps[-1]
    state_file = snapshot / "state.json"
    try:
        state = json.loads(state_file.read_text())
        return PendingState(
            captures_path=snapshot / "pending_captures.jsonl",
            labels_path=snapshot / "pending_labels.jsonl",
            captures_through=parse_time(state["captures_through"]),
            labels_through=parse_time(state["labels_through"]),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise MergeInputError(
            f"{state_file}: unreadable merge state ({exc}); delete the snapshot directory {snapshot} to rebuild it"
        ) from exc


def _is_stamp(name: str) -> bool:
    try:
        dt.datetime.strptime(name, _STAMP)
    except ValueError:
        return False
    return True


# -- report ----------------------------------------------------------------------------------------------------------
@dataclass
class MergeReport:
    window_start: str = ""
    window_end: str = ""
    output_file: str = ""
    state_snapshot: str = ""
    capture_files: int = 0
    label_files: int = 0
    captures_read: int = 0
    captures_outside_window: int = 0
    labels_read: int = 0
    merged: int = 0
    merged_from_pending: int = 0
    pending_captures: int = 0
    pending_labels: int = 0
    duplicate_captures: int = 0
    duplicate_labels: int = 0
    malformed_captures: int = 0
    malformed_labels: int = 0
    malformed_examples: list[str] = field(default_factory=list)

    def add(self, counts: dict[str, Any]) -> None:
        for key, value in counts.items():
            if key == "malformed_examples":
                self.malformed_examples.extend(value[: MAX_EXAMPLES - len(self.malformed_examples)])
            else:
                setattr(self, key, getattr(self, key) + value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- sources -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    """One input. Record order = index * LINE_BASE + line number: pending state (index 0) first, then input files
    in sorted order, so duplicates resolve the same way however the work is split. Records of file sources are
    carried through the temporary files as byte ranges and read back once, for the output."""

    name: str
    index: int
    path: Path | None = None
    records: Iterable[str | bytes] | None = None
    weight: int = 1

    def origin(self, number: int) -> str:
        return f"{self.name}:{number}"

    def lines(self) -> Iterator[tuple[int, int, bytes]]:
        """(line number, byte offset or -1, line) for every line."""
        if self.path is not None:
            offset = 0
            with open(self.path, "rb") as handle:
                for number, line in enumerate(handle, start=1):
                    yield number, offset, line
                    offset += len(line)
        else:
            for number, line in enumerate(self.records or (), start=1):
                yield number, -1, line.encode("utf-8") if isinstance(line, str) else line


def _file_source(path: Path, index: int, cost_per_byte: int = 1) -> _Source:
    return _Source(str(path), index, path=path, weight=path.stat().st_size * cost_per_byte + 1)


def _iter_source(records: Iterable[str | bytes], index: int, name: str) -> _Source:
    return _Source(name, index, records=records)


# -- partition phase -----------------------------------------------------------------------------------------------
# Temporary files are bytes throughout. Partition lines:
#   captures `key \t time \t order \t ref \t inline`  (ref = `source:offset:length`, or inline = the record + \n)
#   labels   `key \t order \t groundTruthData \t record`
# Keys never hold tabs or line breaks (such records are malformed), and JSON text never holds raw line breaks.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_TRUTH_CACHE_SIZE = 4096
_LABEL_COST_PER_BYTE = 2  # labels are short: parsing costs about twice as much per byte as captures


class _PartitionWriter:
    """Buffered appends to `{kind}-{partition}-{tag}.tsv` files: few open files, bounded buffer memory."""

    def __init__(self, directory: Path, kind: str, partitions: int, tag: str) -> None:
        self.paths = [directory / f"{kind}-{p:04d}-{tag}.tsv" for p in range(partitions)]
        self.buffers: list[list[bytes]] = [[] for _ in range(partitions)]

    def flush(self) -> None:
        for path, buffer in zip(self.paths, self.buffers):
            if buffer:
                with open(path, "ab") as handle:
                    handle.write(b"".join(buffer))
                buffer.clear()


def _valid_key(value: Any) -> bool:
    return type(value) is str and value != "" and "\t" not in value and "\n" not in value and "\r" not in value


class _Counts(dict):
    def malformed(self, kind: str, origin: str, reason: str) -> None:
        self[f"malformed_{kind}"] = self.get(f"malformed_{kind}", 0) + 1
        examples = self.setdefault("malformed_examples", [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(f"{origin}: {reason}")

    def bump(self, key: str, by: int = 1) -> None:
        self[key] = self.get(key, 0) + by


def _record(raw: bytes, source: _Source, number: int, kind: str, counts: _Counts) -> dict[str, Any] | None:
    """The JSON object on a line, or None after counting the line as malformed."""
    try:
        record = orjson.loads(raw)  # parsing is most of the merge's time: orjson parses bytes several times faster
    except orjson.JSONDecodeError as exc:
        reason = "not UTF-8 text" if "UTF-8" in str(exc) else f"not JSON ({exc.msg})"
        counts.malformed(kind, source.origin(number), reason)
        return None
    if type(record) is not dict:
        counts.malformed(kind, source.origin(number), "not a JSON object")
        return None
    return record


def _partition_captures(
    source: _Source, writer: _PartitionWriter, counts: _Counts, bounds: tuple[int, int, bool] | None
) -> None:
    """Hash-partition capture records; `bounds` = (lower, upper, lower inclusive) in epoch microseconds."""
    partitions = len(writer.paths)
    buffers = writer.buffers
    lower, upper, inclusive = bounds if bounds is not None else (0, 0, True)
    base = source.index * LINE_BASE
    by_reference = source.path is not None
    read = outside = buffered = 0
    for number, offset, raw in source.lines():
        if not raw or raw.isspace():
            continue
        record = _record(raw, source, number, "captures", counts)
        if record is None:
            continue
        if type(record.get("captureData")) is not dict:
            counts.malformed("captures", source.origin(number), "not a capture record (no captureData object)")
            continue
        meta = record.get("eventMetadata")
        if type(meta) is not dict:
            counts.malformed("captures", source.origin(number), "no eventMetadata object")
            continue
        key = meta.get("inferenceId") or meta.get("eventId")
        if not _valid_key(key):
            counts.malformed("captures", source.origin(number), "eventMetadata has no usable inferenceId or eventId")
            continue
        stamp = meta.get("inferenceTime")
        try:
            if type(stamp) is not str:
                raise ValueError(stamp)
            when = _time_micros(stamp)
        except ValueError:
            counts.malformed("captures", source.origin(number), f"eventMetadata.inferenceTime {stamp!r} is not ISO-8601")
            continue
        if bounds is not None and (when > upper or (when < lower if inclusive else when <= lower)):
            outside += 1
            continue
        read += 1
        if by_reference and raw.endswith(b"}\n") and "groundTruthData" not in record:
            line = b"%s\t%020d\t%016d\t%d:%d:%d\t\n" % (
                key.encode("utf-8"), when, base + number, source.index, offset, len(raw)
            )
        else:
            if "groundTruthData" in record:  # already merged once: merge afresh
                del record["groundTruthData"]
                raw = _ENCODER.encode(record).encode("utf-8") + b"\n"
            elif not raw.endswith(b"}\n"):  # last line of a file, CRLF or trailing blanks: normalise to `...}\n`
                raw = raw.rstrip() + b"\n"
            line = b"%s\t%020d\t%016d\t\t%s" % (key.encode("utf-8"), when, base + number, raw)
        buffers[hash(key) % partitions].append(line)
        buffered += 1
        if buffered >= FLUSH_LINES:
            writer.flush()
            buffered = 0
    writer.flush()
    counts.bump("captures_read", read)
    counts.bump("captures_outside_window", outside)


def _partition_labels(source: _Source, writer: _PartitionWriter, counts: _Counts) -> None:
    """Hash-partition ground-truth records, with their groundTruthData as compact JSON."""
    partitions = len(writer.paths)
    buffers = writer.buffers
    encode = _ENCODER.encode
    truths: dict[tuple[str, str], bytes] = {}  # labels repeat a handful of {"data", "encoding"} values
    base = source.index * LINE_BASE
    read = buffered = 0
    for number, _, raw in source.lines():
        if not raw or raw.isspace():
            continue
        record = _record(raw, source, number, "labels", counts)
        if record is None:
            continue
        truth = record.get("groundTruthData")
        if type(truth) is not dict:
            counts.malformed("labels", source.origin(number), "not a ground-truth record (no groundTruthData object)")
            continue
        meta = record.get("eventMetadata")
        key = meta.get("eventId") if type(meta) is dict else None
        if not _valid_key(key):
            counts.malformed("labels", source.origin(number), "eventMetadata.eventId is missing or empty")
            continue
        data, encoding = truth.get("data"), truth.get("encoding")
        if len(truth) == 2 and type(data) is str and type(encoding) is str:
            text = truths.get((data, encoding))
            if text is None:
                text = encode(truth).encode("utf-8")
                if len(truths) < _TRUTH_CACHE_SIZE:
                    truths[(data, encoding)] = text
        else:
            text = encode(truth).encode("utf-8")
        if not raw.endswith(b"\n") or raw.endswith(b"\r\n"):
            raw = raw.rstrip() + b"\n"
        read += 1
        buffers[hash(key) % partitions].append(b"%s\t%016d\t%s\t%s" % (key.encode("utf-8"), base + number, text, raw))
        buffered += 1
        if buffered >= FLUSH_LINES:
            writer.flush()
            buffered = 0
    writer.flush()
    counts.bump("labels_read", read)


# -- join phase ----------------------------------------------------------------------------------------------------
# Runs (sorted): merged and pending captures `time \t key \t ref \t groundTruthData \t inline` (groundTruthData
# empty for pending captures), pending labels `order \t key \t record`. k-way merging them orders the outputs.
_SAMPLE_EVERY = 64


def _join_partition(work: Path, partition: int) -> dict[str, Any]:
    """Join one partition; write sorted runs of merged records, pending captures and pending labels."""
    counts: dict[str, Any] = {"merged": 0, "merged_from_pending": 0, "duplicate_captures": 0, "duplicate_labels": 0}
    captures: dict[bytes, tuple[bytes, bytes, bytes, bytes]] = {}
    for path in sorted(work.glob(f"cap-{partition:04d}-*.tsv")):
        with open(path, "rb") as handle:
            for line in handle:
                key, when, order, ref, inline = line.split(b"\t", 4)
                seen = captures.get(key)
                if seen is not None:
                    counts["duplicate_captures"] += 1
                    if seen[1] <= order:
                        continue
                captures[key] = (when, order, ref, inline)
    labels: dict[bytes, tuple[bytes, bytes, bytes]] = {}
    for path in sorted(work.glob(f"lab-{partition:04d}-*.tsv")):
        with open(path, "rb") as handle:
            for line in handle:
                key, order, truth, raw = line.split(b"\t", 3)
                seen = labels.get(key)
                if seen is not None:
                    counts["duplicate_labels"] += 1
                    if seen[0] >= order:
                        continue
                labels[key] = (order, truth, raw)
    merged: list[bytes] = []
    pending_captures: list[bytes] = []
    pending_from = b"%016d" % LINE_BASE
    for key, (when, order, ref, inline) in captures.items():
        label = labels.pop(key, None)
        if label is None:
            pending_captures.append(b"%s\t%s\t%s\t\t%s" % (when, key, ref, inline))
            continue
        merged.append(b"%s\t%s\t%s\t%s\t%s" % (when, key, ref, label[1], inline))
        if order < pending_from:
            counts["merged_from_pending"] += 1
    counts["merged"] = len(merged)
    pending_labels = [b"%s\t%s\t%s" % (order, key, raw) for key, (order, _, raw) in labels.items()]
    for path in work.glob(f"???-{partition:04d}-*.tsv"):  # free the disk space early (Lambda /tmp is small)
        path.unlink()
    for name, lines in (("merged", merged), ("pcap", pending_captures), ("plab", pending_labels)):
        lines.sort()
        with open(work / f"{name}-{partition:04d}.run", "wb") as handle:
            handle.write(b"".join(lines))
    counts["time_sample"] = [line[:20].decode("ascii") for line in merged[::_SAMPLE_EVERY]]
    return counts


# -- outputs -------------------------------------------------------------------------------------------------------
class _RecordReader:
    """Reads records back from their input files by byte range. Outputs follow inference time, as capture files
    do, so reads are mostly sequential and served from a large read buffer."""

    def __init__(self, paths: dict[int, Path]) -> None:
        self.paths = paths
        self.files: dict[bytes, Any] = {}
        self.positions: dict[bytes, int] = {}  # where each file's next read starts, to skip needless seeks

    def read(self, ref: bytes) -> bytes:
        index, start, length = ref.split(b":")
        handle = self.files.get(index)
        if handle is None:
            handle = self.files[index] = open(self.paths[int(index)], "rb", buffering=2**20)
        offset, size = int(start), int(length)
        if self.positions.get(index) != offset:
            handle.seek(offset)
        self.positions[index] = offset + size
        return handle.read(size)

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()


def _open_runs(work: Path, name: str, lower: bytes, upper: bytes | None) -> tuple[list[Any], list[Iterable[bytes]]]:
    handles = [open(path, "rb") for path in sorted(work.glob(f"{name}-*.run"))]
    runs: list[Iterable[bytes]] = []
    for handle in handles:
        run: Iterable[bytes] = handle
        if lower:
            run = itertools.dropwhile(lambda line: line[: len(lower)] < lower, run)
        if upper is not None:
            run = itertools.takewhile(lambda line: line[: len(upper)] < upper, run)
        runs.append(run)
    return handles, runs


def _write_records(
    work: Path, name: str, destination: Path, sources: dict[int, Path], lower: bytes = b"", upper: bytes | None = None
) -> int:
    """k-way merge of the sorted `{name}-*.run` capture runs (times in [lower, upper)) into JSONL `destination`,
    each record read back from its input and given its groundTruthData. Returns the number of records."""
    handles, runs = _open_runs(work, name, lower, upper)
    reader = _RecordReader(sources)
    written = 0
    try:
        with open(destination, "wb") as out:
            batch: list[bytes] = []
            for line in heapq.merge(*runs):
                _, _, ref, truth, inline = line.split(b"\t", 4)
                raw = reader.read(ref) if ref else inline
                batch.append(raw[:-2] + b',"groundTruthData":' + truth + b"}\n" if truth else raw)
                if len(batch) >= FLUSH_LINES:
                    out.write(b"".join(batch))
                    written += len(batch)
                    batch.clear()
            out.write(b"".join(batch))
            written += len(batch)
    finally:
        reader.close()
        for handle in handles:
            handle.close()
    return written


def _write_labels(work: Path, destination: Path) -> int:
    handles, runs = _open_runs(work, "plab", b"", None)
    written = 0
    try:
        with open(destination, "wb") as out:
            for line in heapq.merge(*runs):
                out.write(line.split(b"\t", 2)[2])
                written += 1
    finally:
        for handle in handles:
            handle.close()
    return written


def _write_merged(work: Path, destination: Path, sources: dict[int, Path], samples: list[str], workers: int) -> int:
    """The merged records into `destination`: time slices written by parallel workers, then concatenated."""
    if workers <= 1 or len(samples) < workers:
        return _write_records(work, "merged", destination, sources)
    samples.sort()
    splits = sorted({samples[len(samples) * i // workers] for i in range(1, workers)})
    bounds = list(zip([""] + splits, splits + [None]))
    parts = [destination] + [work / f"slice-{i:03d}.jsonl" for i in range(1, len(bounds))]
    tasks = [
        functools.partial(
            _write_records, work, "merged", part, sources, low.encode("ascii"), None if high is None else high.encode("ascii")
        )
        for part, (low, high) in zip(parts, bounds)
    ]
    written = sum(_run_tasks(tasks, workers, work))
    with open(destination, "ab") as out:
        for part in parts[1:]:
            with open(part, "rb") as handle:
                shutil.copyfileobj(handle, out, 16 * 2**20)
            part.unlink()
    return written


# -- process fan-out -----------------------------------------------------------------------------------------------
def _run_tasks(tasks: Sequence[Callable[[], Any]], workers: int, work: Path) -> list[Any]:
    """Run tasks in up to `workers` forked processes (results via small JSON files); in-process when workers <= 1."""
    if workers <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [task() for task in tasks]
    groups = [list(range(i, len(tasks), workers)) for i in range(min(workers, len(tasks)))]
    context = multiprocessing.get_context("fork")
    processes = []
    for number, group in enumerate(groups):
        result_file = work / f"result-{number}.json"

        def target(group: list[int] = group, result_file: Path = result_file) -> None:
            try:
                results = [tasks[i]() for i in group]
                result_file.write_text(json.dumps({"results": results}))
            except BaseException:  # report any failure to the parent
                result_file.write_text(json.dumps({"error": traceback.format_exc()}))
                os._exit(1)

        process = context.Process(target=target, daemon=True)
        process.start()
        processes.append((process, result_file))
    results: list[Any] = []
    errors = []
    for process, result_file in processes:
        process.join()
        payload = json.loads(result_file.read_text()) if result_file.exists() else {"error": f"exit code {process.exitcode}"}
        result_file.unlink(missing_ok=True)
        if "error" in payload:
            errors.append(payload["error"])
        else:
            results.extend(payload["results"])
    if errors:
        raise RuntimeError("merge worker failed:\n" + "\n".join(errors))
    return results


# -- the merge -----------------------------------------------------------------------------------------------------
def _merge(
    capture_sources: list[_Source],
    label_sources: list[_Source],
    *,
    window_start: dt.datetime,
    window_end: dt.datetime,
    pending_state: PendingState,
    output_file: Path,
    new_state_dir: Path,
    state: dict[str, Any],
    partitions: int,
    workers: int,
    work_dir: Path | None,
) -> MergeReport:
    report = MergeReport(window_start=window_start.isoformat(), window_end=window_end.isoformat())
    lower = pending_state.captures_through or window_start
    bounds = (_micros(lower), _micros(window_end), pending_state.captures_through is None)
    jobs: list[tuple[str, _Source, tuple[int, int, bool] | None]] = []
    if pending_state.captures_path is not None and pending_state.captures_path.exists():
        jobs.append(("cap", _file_source(pending_state.captures_path, 0), None))
    if pending_state.labels_path is not None and pending_state.labels_path.exists():
        jobs.append(("lab", _file_source(pending_state.labels_path, 0, _LABEL_COST_PER_BYTE), None))
    jobs += [("cap", src, bounds) for src in capture_sources] + [("lab", src, None) for src in label_sources]
    capture_files = {src.index: src.path for kind, src, _ in jobs if kind == "cap" and src.path is not None}

    new_state_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sagestep-merge-", dir=work_dir))
    try:
        # Balance the inputs between workers by size (largest first onto the least loaded).
        slots = max(1, workers)
        shares: list[list[tuple[str, _Source, tuple[int, int, bool] | None]]] = [[] for _ in range(slots)]
        loads = [0] * slots
        for job in sorted(jobs, key=lambda job: -job[1].weight):
            slot = loads.index(min(loads))
            shares[slot].append(job)
            loads[slot] += job[1].weight + 1

        def partition_task(slot: int) -> Callable[[], dict[str, Any]]:
            def run() -> dict[str, Any]:
                counts = _Counts()
                cap_writer = _PartitionWriter(work, "cap", partitions, f"{slot:03d}")
                lab_writer = _PartitionWriter(work, "lab", partitions, f"{slot:03d}")
                for kind, src, window in shares[slot]:
                    if kind == "cap":
                        _partition_captures(src, cap_writer, counts, window)
                    else:
                        _partition_labels(src, lab_writer, counts)
                return dict(counts)

            return run

        tasks = [partition_task(slot) for slot in range(slots) if shares[slot]]
        for counts in _run_tasks(tasks, workers, work):
            report.add(counts)

        join_tasks = [functools.partial(_join_partition, work, p) for p in range(partitions)]
        samples: list[str] = []
        for counts in _run_tasks(join_tasks, workers, work):
            samples.extend(counts.pop("time_sample"))
            report.add(counts)

        output_file.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=new_state_dir.parent))
        try:
            merged_tmp = output_file.with_name(f".{output_file.name}.tmp")
            report.merged = _write_merged(work, merged_tmp, capture_files, samples, workers)
            report.pending_captures = _write_records(work, "pcap", staging / "pending_captures.jsonl", capture_files)
            report.pending_labels = _write_labels(work, staging / "pending_labels.jsonl")
            state = dict(state, pending_captures=report.pending_captures, pending_labels=report.pending_labels)
            (staging / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
            os.replace(merged_tmp, output_file)
            if new_state_dir.exists():
                shutil.rmtree(new_state_dir)
            os.replace(staging, new_state_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.output_file = str(output_file)
    report.state_snapshot = str(new_state_dir)
    return report


def merge_window(
    capture_records_iter: Iterable[str | bytes],
    ground_truth_iter: Iterable[str | bytes],
    window_start: dt.datetime,
    window_end: dt.datetime,
    pending_state: PendingState,
    *,
    output_file: str | Path,
    new_state_dir: str | Path,
    labels_through: dt.datetime | None = None,
    partitions: int = DEFAULT_PARTITIONS,
    work_dir: str | Path | None = None,
) -> MergeReport:
    """Merge one window from iterables of JSONL lines, in this process.

    Captures are kept when their inferenceTime falls in [window_start, window_end] — or, after an earlier window,
    in (pending_state.captures_through, window_end]; pending captures and labels are always considered. Writes the
    merged records to `output_file` and the new state snapshot (pending files + state.json) to `new_state_dir`.
    """
    state = {
        "window_start": window_start.isoformat(),
        "window_end": window_end.isoformat(),
        "captures_through": window_end.isoformat(),
        "labels_through": (labels_through or window_end).isoformat(),
    }
    return _merge(
        [_iter_source(capture_records_iter, 1, "capture input line")],
        [_iter_source(ground_truth_iter, 1, "ground-truth input line")],
        window_start=window_start,
        window_end=window_end,
        pending_state=pending_state,
        output_file=Path(output_file),
        new_state_dir=Path(new_state_dir),
        state=state,
        partitions=partitions,
        workers=1,
        work_dir=Path(work_dir) if work_dir else None,
    )


def _hour_roots(base: Path, max_depth: int = 3) -> list[Path]:
    """Directories under `base` (itself included) that hold yyyy/mm/dd/hh trees, e.g. `{endpoint}/{variant}`."""
    roots: list[Path] = []
    frontier = [base]
    for _ in range(max_depth + 1):
        next_frontier = []
        for directory in frontier:
            children = [c for c in sorted(directory.iterdir()) if c.is_dir() and not c.name.startswith((".", "_"))]
            if any(re.fullmatch(r"\d{4}", c.name) for c in children):
                roots.append(directory)
            else:
                next_frontier.extend(children)
        frontier = next_frontier
    return roots


def _files_in_hours(base: Path, first: dt.datetime, last: dt.datetime) -> list[Path]:
    """JSONL files in the hour directories first..last (inclusive) under every root below `base`."""
    files: list[Path] = []
    if last < first:
        return files
    for root in _hour_roots(base):
        hour = first
        while hour <= last:
            directory = root / _hour_path(hour)
            if directory.is_dir():
                files.extend(
                    sorted(p for p in directory.iterdir() if p.is_file() and p.name.lower().endswith(_JSONL))
                )
            hour += dt.timedelta(hours=1)
    return files


def merge_ground_truth(
    capture_dir: str | Path,
    ground_truth_dir: str | Path,
    output_dir: str | Path,
    *,
    start_offset: str | dt.timedelta,
    end_offset: str | dt.timedelta,
    at: dt.datetime | None = None,
    state_dir: str | Path | None = None,
    workers: int | None = None,
    partitions: int | None = None,
    work_dir: str | Path | None = None,
) -> MergeReport:
    """Merge the window [at + start_offset, at + end_offset] of local capture and ground-truth directories.

    The state (pending records and read cursors) lives in `state_dir`, by default `{output_dir}/_merge_state`
    (a `_` name, which readers of the merged data skip).
    """
    captures, labels, output = Path(capture_dir), Path(ground_truth_dir), Path(output_dir)
    for directory, option in ((captures, "--capture"), (labels, "--ground-truth")):
        if not directory.is_dir():
            raise MergeInputError(f"{option} {directory}: not a directory; point it at the local copy of the S3 prefix")
    at = (at or dt.datetime.now(UTC)).astimezone(UTC)
    window_start, window_end = merge_window_bounds(at, start_offset, end_offset)
    state_root = Path(state_dir) if state_dir else output / "_merge_state"
    state_root.mkdir(parents=True, exist_ok=True)
    pending = load_pending_state(state_root, before=window_end)

    capture_lower = pending.captures_through or window_start
    capture_files = _files_in_hours(
        captures, _floor_hour(capture_lower) - dt.timedelta(hours=1), _floor_hour(window_end) + dt.timedelta(hours=1)
    )
    labels_from = pending.labels_through or _floor_hour(window_start)
    labels_until = _floor_hour(at)  # complete hours only: the current hour may still receive labels
    label_files = _files_in_hours(labels, labels_from, labels_until - dt.timedelta(hours=1))

    total_bytes = sum(p.stat().st_size for p in capture_files + label_files)
    if pending.captures_path and pending.captures_path.exists():
        total_bytes += pending.captures_path.stat().st_size
    if pending.labels_path and pending.labels_path.exists():
        total_bytes += pending.labels_path.stat().st_size
    if partitions is None:
        partitions = min(256, max(4, math.ceil(total_bytes / PARTITION_TARGET_BYTES)))
    if workers is None:
        workers = min(2, os.cpu_count() or 1)

    stamp = window_end.strftime(_STAMP)
    state = {
        "window_start": window_start.isoformat(),
        "window_end": window_end.isoformat(),
        "at": at.isoformat(),
        "captures_through": window_end.isoformat(),
        "labels_through": labels_until.isoformat(),
    }
    report = _merge(
        [_file_source(p, i + 1) for i, p in enumerate(capture_files)],
        [_file_source(p, i + 1, _LABEL_COST_PER_BYTE) for i, p in enumerate(label_files)],
        window_start=window_start,
        window_end=window_end,
        pending_state=pending,
        output_file=output / _hour_path(window_end) / f"merged-{stamp}.jsonl",
        new_state_dir=state_root / stamp,
        state=state,
        partitions=partitions,
        workers=workers,
        work_dir=Path(work_dir) if work_dir else None,
    )
    report.capture_files = len(capture_files)
    report.label_files = len(label_files)
    _prune_snapshots(state_root, keep=SNAPSHOTS_KEPT)
    return report


def _prune_snapshots(state_root: Path, keep: int) -> None:
    stamps = sorted(p for p in state_root.iterdir() if p.is_dir() and _is_stamp(p.name))
    for old in stamps[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
