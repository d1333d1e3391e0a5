"""Read merged records (capture + ground truth) into features, scores and labels.

A merged record is a data-capture record plus a top-level `groundTruthData`:
`captureData.endpointInput` is a CSV row without header in the model's input column order (`text/csv`) or a JSON
object keyed by feature name; `captureData.endpointOutput` is `{"predictions": [{"score": 0.83, ...}]}`
(application/json), a bare number, or CSV `score,decision,reasons`; `groundTruthData.data` is the label ("1"/"0"
for a classifier, a number for a regression). Any field may be BASE64-encoded (`encoding: BASE64`).

Records without a readable label or score are counted in `MergedData.malformed`, never fatal. A missing or empty
directory is an empty window (zero records), not an error: there was no traffic to judge.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sagestep.monitoring.readers import ReadReport, _open_text, input_files

MAX_EXAMPLES = 10


@dataclass
class MergedData:
    features: pd.DataFrame
    scores: np.ndarray
    labels: np.ndarray
    report: ReadReport = field(default_factory=ReadReport)

    def __len__(self) -> int:
        return int(self.scores.size)


def data_files(path: str | Path) -> list[Path]:
    """The JSONL files under `path`; [] when the directory is missing or holds no data (an empty window)."""
    root = Path(path)
    if not root.exists():
        return []
    try:
        files = [f for f, fmt in input_files(root) if fmt == "jsonl" or root.is_file()]
    except ValueError:
        return []
    return [f for f in files if f.stat().st_size > 0]


def _payload(section: Any) -> str | None:
    if not isinstance(section, dict) or not isinstance(section.get("data"), str):
        return None
    text = section["data"]
    if str(section.get("encoding", "")).upper() == "BASE64":
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    return text


def parse_score(text: str) -> float | None:
    """The first prediction's score (a regressor's predicted value) from an endpoint output: JSON predictions, a
    JSON number, or CSV."""
    text = text.strip()
    if not text:
        return None
    if text[0] in "{[":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(doc, dict):
            doc = doc.get("predictions", doc.get("scores"))
        if isinstance(doc, list) and doc:
            doc = doc[0]
        if isinstance(doc, dict):
            doc = doc.get("score", doc.get("prediction", doc.get("predicted_label")))  # prediction: a regressor's
        if isinstance(doc, list) and doc:
            doc = doc[0]
        value = doc
    else:
        value = text.splitlines()[0].split(",")[0]
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _features_row(text: str, names: Sequence[str]) -> list[Any] | None:
    text = text.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(doc, dict) and isinstance(doc.get("instances"), list) and doc["instances"]:
            doc = doc["instances"][0]
        if isinstance(doc, dict):
            return [doc.get(n) for n in names]
        return list(doc) if isinstance(doc, list) and len(doc) == len(names) else None
    row = next(csv.reader(io.StringIO(text.splitlines()[0])), [])
    return row if len(row) == len(names) else None


def read_merged(path: str | Path, feature_names: Sequence[str] | None, *, numeric: Sequence[str] = ()) -> MergedData:
    """Features (named `feature_names`; `numeric` ones converted to numbers), scores and labels of every merged
    record under `path` (a directory or file of JSONL). With `feature_names` None the input rows are not read
    (model quality needs only scores and labels)."""
    names = None if feature_names is None else list(feature_names)
    report = ReadReport()
    rows: list[list[Any]] = []
    scores: list[float] = []
    labels: list[float] = []
    for file in data_files(path):
        report.files.append(str(file))
        with _open_text(file) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{file}:{number}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    report.malformed(where, "not JSON")
                    continue
                reason = _add(record, names, rows, scores, labels)
                if reason:
                    report.malformed(where, reason)
                else:
                    report.capture_records += 1
    report.rows = len(scores)
    if names is None:
        frame = pd.DataFrame(index=range(len(scores)))
    elif rows:
        frame = pd.DataFrame(rows, columns=names)
    else:
        frame = pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    for name in numeric:
        if name in frame.columns:
            frame[name] = pd.to_numeric(frame[name].replace("", None), errors="coerce")
    return MergedData(frame, np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64), report)


def _add(record: Any, names: list[str] | None, rows: list, scores: list, labels: list) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    capture = record.get("captureData")
    if not isinstance(capture, dict):
        return "no captureData"
    label_text = _payload(record.get("groundTruthData"))
    if label_text is None:
        return "no groundTruthData.data (not a merged record?)"
    try:
        label = float(label_text.strip().split(",")[0])
    except ValueError:
        return f"ground truth {label_text[:40]!r} is not a number"
    output = _payload(capture.get("endpointOutput"))
    score = parse_score(output) if output is not None else None
    if score is None:
        return "endpointOutput holds no score"
    if names is not None:
        inp = _payload(capture.get("endpointInput"))
        row = _features_row(inp, names) if inp is not None else None
        if row is None:
            return f"endpointInput is not one row of {len(names)} features"
        rows.append(row)
    scores.append(score)
    labels.append(label)
    return None
