"""Reading current data: CSV, Parquet and SageMaker data-capture JSONL built from real credit rows."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from sagestep.monitoring.readers import DataInputError, ReadReport, iter_chunks, read_dataset
from sagestep.monitoring.statistics import compute_statistics

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
CATEGORICAL = ["Home", "Marital", "Records", "Job"]
FEATURES = NUMERIC + CATEGORICAL


def _csv_row(values: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(["" if pd.isna(v) else v for v in values])
    return buffer.getvalue()


def _capture(data: str, encoding: str, content_type: str, n: int) -> str:
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding},
                "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "0.3", "encoding": "CSV"},
            },
            "eventMetadata": {"eventId": f"e-{n}", "inferenceTime": "2024-05-01T10:00:00Z"},
            "eventVersion": "0",
        }
    )


def _write_capture(path: Path, rows: pd.DataFrame, encoding: str) -> None:
    lines = []
    for n, row in enumerate(rows.itertuples(index=False)):
        values = list(row)
        if encoding == "CSV":
            lines.append(_capture(_csv_row(values), "CSV", "text/csv", n))
        elif encoding == "JSON":
            record = {k: (None if pd.isna(v) else v) for k, v in zip(rows.columns, values)}
            lines.append(_capture(json.dumps(record), "JSON", "application/json", n))
        else:
            payload = base64.b64encode(_csv_row(values).encode()).decode()
            lines.append(_capture(payload, "BASE64", "text/csv", n))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _summary(statistics: dict) -> dict:
    out = {}
    for feature in statistics["features"]:
        block = feature.get("numerical_statistics") or feature["string_statistics"]
        mean = block.get("mean")
        out[feature["name"]] = (
            feature["inferred_type"],
            block["common"],
            None if mean is None else round(mean, 9),
            block.get("distinct_count"),
        )
    return out


@pytest.mark.parametrize("encoding", ["CSV", "JSON", "BASE64"])
def test_capture_jsonl_reads_like_the_csv(credit_data: pd.DataFrame, tmp_path: Path, encoding: str) -> None:
    # GIVEN 1,000 real rows as a CSV file and as data-capture records (headerless payloads) in an hour directory
    rows = credit_data[FEATURES].head(1000)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    _write_capture(tmp_path / "capture" / "ep" / "AllTraffic" / "2024" / "05" / "01" / "10" / "a.jsonl", rows, encoding)
    # WHEN both are read, the capture with the baseline's feature names, in small chunks
    report = ReadReport()
    from_csv = compute_statistics(iter_chunks(tmp_path / "rows.csv"))
    from_capture = compute_statistics(
        iter_chunks(tmp_path / "capture", feature_names=FEATURES, chunk_rows=300, report=report)
    )
    # THEN they give the same statistics per feature
    assert _summary(from_capture) == _summary(from_csv)
    assert report.capture_records == 1000 and report.rows == 1000 and report.malformed_lines == 0


def test_malformed_capture_lines_are_counted_not_fatal(credit_data: pd.DataFrame, tmp_path: Path) -> None:
    # GIVEN a capture file with 50 good records and four bad lines
    path = tmp_path / "capture.jsonl"
    _write_capture(path, credit_data[FEATURES].head(50), "CSV")
    bad = [
        '{"captureData": {"endpointInput": {"data": "1,2"',
        '["not", "an", "object"]',
        '{"eventMetadata": {"eventId": "x"}}',
        _capture("AAA=%%", "BASE64", "text/csv", 99),
    ]
    path.write_text(path.read_text() + "\n".join(bad) + "\n")
    report = ReadReport()
    # WHEN it is read
    frame = read_dataset(path, feature_names=FEATURES, report=report)
    # THEN the good rows are read and each bad line is reported with its line number
    assert len(frame) == 50
    assert report.malformed_lines == 4
    assert report.malformed_examples[0].startswith(f"{path}:51: not JSON")
    assert any("captureData.endpointInput.data" in e for e in report.malformed_examples)


def test_file_without_rows_is_an_error_naming_it(credit_data: pd.DataFrame, tmp_path: Path) -> None:
    # GIVEN a directory with a good CSV and a CSV holding only its header
    credit_data[FEATURES].head(10).to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "b.csv").write_text(",".join(FEATURES) + "\n")
    # WHEN it is read
    with pytest.raises(DataInputError) as error:
        read_dataset(tmp_path)
    # THEN the error names the empty file
    assert str(tmp_path / "b.csv") in str(error.value) and "no data rows" in str(error.value)


def test_directory_is_read_recursively_across_formats(credit_data: pd.DataFrame, tmp_path: Path) -> None:
    # GIVEN real rows split over a Parquet file and a nested CSV, plus bookkeeping files to skip
    rows = credit_data[FEATURES]
    rows.iloc[:2000].to_parquet(tmp_path / "part-0.parquet")
    (tmp_path / "more").mkdir()
    rows.iloc[2000:].to_csv(tmp_path / "more" / "part-1.csv", index=False)
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / "_merge_state").mkdir()
    (tmp_path / "_merge_state" / "x.csv").write_text("garbage\n")
    report = ReadReport()
    # WHEN the directory is read
    statistics = compute_statistics(iter_chunks(tmp_path, report=report))
    # THEN all rows arrive once
    assert statistics["dataset"]["item_count"] == len(rows)
    assert len(report.files) == 2


def test_headerless_csv_takes_the_baseline_feature_names(credit_data: pd.DataFrame, tmp_path: Path) -> None:
    # GIVEN real rows written without a header, as an endpoint receives them
    rows = credit_data[FEATURES].head(200)
    rows.to_csv(tmp_path / "rows.csv", index=False, header=False)
    # WHEN read with the baseline's feature order
    frame = read_dataset(tmp_path / "rows.csv", feature_names=FEATURES)
    # THEN the columns get the feature names and the first row is data
    assert list(frame.columns) == FEATURES
    assert len(frame) == 200 and frame["Age"].tolist() == rows["Age"].tolist()
