"""Ground-truth merge of data capture built from real credit rows with their real labels (Status)."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from sagestep.monitoring.merge import (
    MergeInputError,
    PendingState,
    merge_ground_truth,
    merge_window,
    merge_window_bounds,
    parse_iso_duration,
)

UTC = dt.timezone.utc
FEATURES = ["Seniority", "Home", "Time", "Age", "Marital", "Records", "Job", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
T9 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _at(hour: int) -> dt.datetime:
    return dt.datetime(2024, 5, 1, hour, 0, tzinfo=UTC)


def _row_csv(row: pd.Series) -> str:
    return ",".join("" if pd.isna(row[c]) else str(row[c]) for c in FEATURES)


def _capture(row: pd.Series, when: dt.datetime, event_id: str, inference_id: str | None) -> str:
    meta = {"eventId": event_id, "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": _row_csv(row), "encoding": "CSV"},
                "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "0.42", "encoding": "CSV"},
            },
            "eventMetadata": meta,
            "eventVersion": "0",
        }
    )


def _label(key: str, status: str) -> str:
    value = "1" if status == "bad" else "0"
    return json.dumps({"groundTruthData": {"data": value, "encoding": "CSV"}, "eventMetadata": {"eventId": key}, "eventVersion": "0"})


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write("".join(line + "\n" for line in lines))


def _capture_file(root: Path, when: dt.datetime, name: str = "capture.jsonl") -> Path:
    return root / "capture" / "credit-ep" / "AllTraffic" / when.strftime("%Y/%m/%d/%H") / name


def _label_file(root: Path, arrival: dt.datetime, name: str = "labels.jsonl") -> Path:
    return root / "ground-truth" / arrival.strftime("%Y/%m/%d/%H") / name


def _run(root: Path, at: dt.datetime, workers: int = 1):
    return merge_ground_truth(
        root / "capture", root / "ground-truth", root / "merged", start_offset="-PT3H", end_offset="-PT1H", at=at, workers=workers
    )


def _merged(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _key(record: dict) -> str:
    return record["eventMetadata"].get("inferenceId") or record["eventMetadata"]["eventId"]


def test_join_on_inference_id_and_fall_back_to_event_id(credit_data: pd.DataFrame, tmp_path: Path) -> None:
    # GIVEN 40 real rows captured 09:00-10:18, half with an inferenceId, and their real labels arriving at 10:xx
    rows = credit_data.head(40)
    expected = {}
    for i, (_, row) in enumerate(rows.iterrows()):
        inference_id = f"app-{row['application_id']}" if i % 2 == 0 else None
        event_id = f"evt-{i:04d}"
        when = T9 + dt.timedelta(minutes=2 * i)
        _write(_capture_file(tmp_path, when), [_capture(row, when, event_id, inference_id)])
        key = inference_id or event_id
        _write(_label_file(tmp_path, _at(10)), [_label(key, row["Status"])])
        expected[key] = ("1" if row["Status"] == "bad" else "0", _row_csv(row))
    # WHEN the window [09:00, 11:00] is merged at 12:00
    report = _run(tmp_path, _at(12))
    # THEN every capture is merged with its own label, under the window end's hour
    output = tmp_path / "merged" / "2024" / "05" / "01" / "11" / "merged-20240501T110000Z.jsonl"
    assert report.output_file == str(output)
    records = _merged(output)
    assert len(records) == report.merged == 40
    for record in records:
        label, data = expected[_key(record)]
        assert record["groundTruthData"] == {"data": label, "encoding": "CSV"}
        assert record["captureData"]["endpointInput"]["data"] == data
    # AND records are sorted by inference time
    times = [r["eventMetadata"]["inferenceTime"] for r in records]
    assert times == sorted(times)
    assert report.pending_captures == report.pending_labels == 0


def test_late_labels_are_carried_to_the_next_window(credit_data: pd.DataFrame, tmp_path: Path) -> None:
    # GIVEN 20 captures at 09:00-10:54; half the labels arrive at 10:xx, the rest only at 12:xx
    rows = credit_data.iloc[100:120]
    for i, (_, row) in enumerate(rows.iterrows()):
        when = T9 + dt.timedelta(minutes=6 * i)
        _write(_capture_file(tmp_path, when), [_capture(row, when, f"e{i}", f"i{i}")])
        _write(_label_file(tmp_path, _at(10) if i < 10 else _at(12)), [_label(f"i{i}", row["Status"])])
    # WHEN the 12:00 run merges what it can and the 13:00 run follows
    first = _run(tmp_path, _at(12))
    second = _run(tmp_path, _at(13))
    # THEN the first merges 10 and carries 10 captures; the second merges the carried ones; none is lost or repeated
    assert (first.merged, first.pending_captures) == (10, 10)
    assert (second.merged, second.merged_from_pending, second.pending_captures) == (10, 10, 0)
    keys = [_key(r) for r in _merged(Path(first.output_file)) + _merged(Path(second.output_file))]
    assert sorted(keys) == sorted(f"i{i}" for i in range(20))


def test_labels_that_arrive_before_their_capture_are_kept(credit_data: pd.DataFrame, tmp_path: Path) -> None:
    # GIVEN a label arriving at 10:xx for a request captured at 11:30 (after the 12:00 run's window)
    row = credit_data.iloc[7]
    when = _at(11) + dt.timedelta(minutes=30)
    _write(_capture_file(tmp_path, when), [_capture(row, when, "e-early", "i-early")])
    _write(_label_file(tmp_path, _at(10)), [_label("i-early", row["Status"])])
    # WHEN the 12:00 and 13:00 runs happen
    first = _run(tmp_path, _at(12))
    second = _run(tmp_path, _at(13))
    # THEN the label waits in the state and joins its capture in the next window
    assert (first.merged, first.pending_labels, first.captures_outside_window) == (0, 1, 1)
    assert (second.merged, second.pending_labels) == (1, 0)
    (record,) = _merged(Path(second.output_file))
    assert _key(record) == "i-early"


def test_duplicates_and_malformed_lines_are_reported_not_fatal(credit_data: pd.DataFrame, tmp_path: Path) -> None:
    # GIVEN captures with a duplicate and two broken lines, labels with a corrected duplicate and a broken line
    rows = credit_data.iloc[200:205]
    when = T9 + dt.timedelta(minutes=5)
    captures = [_capture(row, when, f"e{i}", f"i{i}") for i, (_, row) in enumerate(rows.iterrows())]
    capture_file = _capture_file(tmp_path, when)
    _write(capture_file, captures + [captures[0], captures[1][:40], "not json"])
    label_file = _label_file(tmp_path, _at(10))
    _write(label_file, [_label(f"i{i}", "good") for i in range(5)] + [_label("i3", "bad"), '{"eventMetadata": {"eventId": "i4"}}'])
    # WHEN the window is merged
    report = _run(tmp_path, _at(12))
    # THEN the good records merge, the later of two labels wins, and the problems are counted with their lines
    records = {_key(r): r for r in _merged(Path(report.output_file))}
    assert len(records) == 5 and records["i3"]["groundTruthData"]["data"] == "1"
    assert (report.duplicate_captures, report.duplicate_labels) == (1, 1)
    assert (report.malformed_captures, report.malformed_labels) == (2, 1)
    assert f"{capture_file}:7: not JSON" in " ".join(report.malformed_examples)
    assert any(e.startswith(f"{label_file}:7:") and "groundTruthData" in e for e in report.malformed_examples)


def _scenario(credit_data: pd.DataFrame, root: Path) -> None:
    rows = credit_data.iloc[300:500]
    for i, (_, row) in enumerate(rows.iterrows()):
        when = T9 + dt.timedelta(seconds=36 * i)
        _write(_capture_file(root, when, f"part-{i % 3}.jsonl"), [_capture(row, when, f"e{i}", f"i{i}" if i % 4 else None)])
        arrival = _at(10) if i % 5 else _at(12)
        _write(_label_file(root, arrival, f"labels-{i % 2}.jsonl"), [_label(f"i{i}" if i % 4 else f"e{i}", row["Status"])])


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "merged").rglob("*")) if p.is_file()}


def test_rerunning_a_window_rewrites_byte_identical_output(credit_data: pd.DataFrame, tmp_path: Path) -> None:
    # GIVEN 200 real rows captured over two hours, some labels late; the 12:00 and 13:00 runs done
    _scenario(credit_data, tmp_path)
    _run(tmp_path, _at(12))
    _run(tmp_path, _at(13))
    before = _snapshot(tmp_path)
    # WHEN the 13:00 window is run again, in two processes this time
    again = _run(tmp_path, _at(13), workers=2)
    # THEN its output and state are byte-identical, and nothing was merged twice
    assert _snapshot(tmp_path) == before
    assert again.merged > 0
    merged_keys = [_key(r) for p in (tmp_path / "merged").glob("2024/**/*.jsonl") for r in _merged(p)]
    assert len(merged_keys) == len(set(merged_keys)) == 200


def _generated_lines(credit_data: pd.DataFrame, n: int) -> tuple[Iterator[str], Iterator[str], int]:
    rows = [_row_csv(r) for _, r in credit_data.head(500).iterrows()]
    statuses = credit_data["Status"].head(500).tolist()
    template = _capture(credit_data.iloc[0], T9, "EVENT", "INFERENCE")
    before, after = template.split(json.dumps(_row_csv(credit_data.iloc[0])))
    size = n * (len(template) + 60)

    def captures() -> Iterator[str]:
        for i in range(n):
            when = (T9 + dt.timedelta(seconds=i % 7200)).strftime("%Y-%m-%dT%H:%M:%SZ")
            line = before + json.dumps(rows[i % 500]) + after
            yield line.replace("EVENT", f"e{i}").replace("INFERENCE", f"i{i}").replace("2024-05-01T09:00:00Z", when) + "\n"

    def labels() -> Iterator[str]:
        for i in range(n):
            yield _label(f"i{i}", statuses[i % 500]) + "\n"

    return captures(), labels(), size


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


@pytest.mark.skipif(not Path("/proc/self/status").exists() or "fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs Linux /proc and fork")
def test_memory_stays_bounded_while_merging_200k_records(credit_data: pd.DataFrame, tmp_path: Path) -> None:
    # GIVEN 100,000 captures of real rows and their 100,000 labels, streamed (about 45 MB of JSON)
    n = 100_000
    result_file = tmp_path / "result.json"

    def child() -> None:
        captures, labels, size = _generated_lines(credit_data, n)
        start = _status_bytes("VmRSS:")
        report = merge_window(
            captures, labels, T9, _at(11), PendingState.empty(),
            output_file=tmp_path / "out" / "merged.jsonl", new_state_dir=tmp_path / "state" / "s", partitions=64,
        )
        growth = _status_bytes("VmHWM:") - start
        result_file.write_text(json.dumps({"growth": growth, "size": size, "merged": report.merged}))

    # WHEN they are merged in a fresh forked process whose peak resident memory is measured
    # (tracemalloc would slow this tenfold; its peak on the same run is about 6 MB)
    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join()
    assert process.exitcode == 0
    result = json.loads(result_file.read_text())
    # THEN every record is merged and the peak extra memory stays far below the input size
    assert result["merged"] == n
    assert result["growth"] < 24 * 2**20
    assert result["growth"] < result["size"] / 2


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("-PT", "-PT1H", "not an ISO-8601 duration"),
        ("3H", "-PT1H", "not an ISO-8601 duration"),
        ("-P1M", "-PT1H", "years and months are not supported"),
        ("-PT3H", "PT1H", "future"),
        ("-PT1H", "-PT3H", "must be earlier"),
    ],
)
def test_bad_offsets_are_rejected_clearly(start: str, end: str, message: str) -> None:
    # GIVEN a malformed or inconsistent pair of offsets
    # WHEN the window is computed
    with pytest.raises(MergeInputError) as error:
        merge_window_bounds(_at(12), start, end)
    # THEN the error says what is wrong
    assert message in str(error.value)


def test_iso_durations_parse_to_timedeltas() -> None:
    # GIVEN durations as Model Monitor's StartOffset/EndOffset are written
    # WHEN parsed
    # THEN they give the expected signed timedeltas
    assert parse_iso_duration("-PT3H") == -dt.timedelta(hours=3)
    assert parse_iso_duration("PT90M") == dt.timedelta(minutes=90)
    assert parse_iso_duration("-P1DT2H30M") == -dt.timedelta(days=1, hours=2, minutes=30)


def test_merge_module_loads_without_the_data_stack() -> None:
    # GIVEN a fresh interpreter, as a cold-started merge Lambda
    code = "import sys, sagestep.monitoring.merge; print(sorted({'numpy', 'pandas', 'scipy', 'boto3'} & set(sys.modules)))"
    # WHEN it imports the merge module
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # THEN neither numpy, pandas, scipy nor boto3 was loaded
    assert result.stdout.strip() == "[]"
