"""Per-request outcomes from merged records (prediction + ground truth), their cumulative sums per look, and the
decisions of each variant read from its data capture (for the guardrails).

A merged record is a mapping with
  InferenceId  str     the request id: a label belongs to a request, and pairs the two models' scores of it
  Prediction   float   predicted default probability (classification) or predicted value (regression)
  Label        number  0/1 true default (classification) or true value (regression)
  AvailableAt  number (epoch seconds) or ISO-8601 string: when the merged record became available, so a look
               at cutoff c sees exactly the records with AvailableAt ≤ c and recomputing a look is repeatable.
All losses are "lower is better".
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats

from sagestep.abtest.sequential import Sums
from sagestep.training.config import category_key

Record = Mapping[str, Any]
_EPS = 1e-15


def parse_time(value: Any, where: str) -> float:
    """Epoch seconds from a number or an ISO-8601 string (naive times are taken as UTC)."""
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected epoch seconds or an ISO-8601 time, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not an ISO-8601 time (e.g. 2025-01-31T12:00:00Z)") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    raise ValueError(f"{where}: expected epoch seconds or an ISO-8601 time, got {value!r}")


def _field(record: Record, key: str, where: str) -> Any:
    if key not in record:
        raise ValueError(
            f"{where}: missing field {key!r}; merged records need InferenceId, Prediction, Label, AvailableAt"
        )
    return record[key]


def _number(record: Record, key: str, where: str) -> float:
    value = _field(record, key, where)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: field {key!r} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{where}: field {key!r} must be finite, got {value!r}")
    return number


def _label01(record: Record, where: str) -> float:
    label = _number(record, "Label", where)
    if label not in (0.0, 1.0):
        raise ValueError(f"{where}: Label must be 0 or 1 for a classification metric, got {label}")
    return label


def loss(metric: str, prediction: float, label: float, threshold: float) -> float:
    """Loss of one request. default_rate: 1 if the request was approved (prediction < threshold) and defaulted."""
    if metric == "brier":
        return (prediction - label) ** 2
    if metric == "log_loss":
        p = min(max(prediction, _EPS), 1.0 - _EPS)
        return -math.log(p) if label == 1.0 else -math.log(1.0 - p)
    if metric == "default_rate":
        return float(prediction < threshold and label == 1.0)
    if metric == "absolute_error":
        return abs(prediction - label)
    raise ValueError(f"unknown metric {metric!r}")


def request_losses(
    records: Sequence[Record], metric: str, threshold: float, variant: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(loss per request, AvailableAt per request, InferenceIds) for one variant."""
    losses, times, ids = np.empty(len(records)), np.empty(len(records)), []
    classification = metric != "absolute_error"
    for i, record in enumerate(records):
        where = f"records[{variant!r}][{i}]"
        prediction = _number(record, "Prediction", where)
        label = _label01(record, where) if classification else _number(record, "Label", where)
        if classification and not 0.0 <= prediction <= 1.0:
            raise ValueError(f"{where}: Prediction must be a probability in [0, 1], got {prediction}")
        losses[i] = loss(metric, prediction, label, threshold)
        times[i] = parse_time(_field(record, "AvailableAt", where), f"{where}.AvailableAt")
        ids.append(str(_field(record, "InferenceId", where)))
    return losses, times, ids


def paired_differences(
    champion: Sequence[Record], challenger: Sequence[Record], metric: str, threshold: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """d_i = loss_challenger − loss_champion on the same labelled requests, the time each pair became available
    (the later of the two), and how many records had no partner (a score of one model only)."""
    loss_a, time_a, ids_a = request_losses(champion, metric, threshold, "champion")
    loss_b, time_b, ids_b = request_losses(challenger, metric, threshold, "challenger")
    index_b: dict[str, int] = {}
    for j, key in enumerate(ids_b):
        if key in index_b:
            raise ValueError(f"records['challenger']: InferenceId {key!r} appears twice; a request is labelled once")
        index_b[key] = j
    seen: set[str] = set()
    diffs, times = [], []
    for i, key in enumerate(ids_a):
        if key in seen:
            raise ValueError(f"records['champion']: InferenceId {key!r} appears twice; a request is labelled once")
        seen.add(key)
        j = index_b.get(key)
        if j is not None:
            diffs.append(loss_b[j] - loss_a[i])
            times.append(max(time_a[i], time_b[j]))
    unpaired = len(ids_a) + len(ids_b) - 2 * len(diffs)
    return np.asarray(diffs, dtype=float), np.asarray(times, dtype=float), unpaired


def cumulative_sums(values: np.ndarray, available_at: np.ndarray, cutoffs: Sequence[float]) -> Sums:
    """Sums of the values available at each cutoff (AvailableAt ≤ cutoff).

    Sorted by (time, value) so the floating-point sums do not depend on the order the records came in.
    """
    order = np.lexsort((values, available_at))
    v, t = values[order], available_at[order]
    counts = np.searchsorted(t, np.asarray(cutoffs, dtype=float), side="right")
    c1 = np.concatenate([[0.0], np.cumsum(v)])
    c2 = np.concatenate([[0.0], np.cumsum(v * v)])
    return Sums.of(counts, c1[counts], c2[counts])


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann–Whitney, ties counted half); None without both classes."""
    positives = labels == 1.0
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = stats.rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def classification_summary(records: Sequence[Record], threshold: float, variant: str) -> dict[str, Any]:
    """Reported, not tested: AUC, default rate among approved, decline rate, mean Brier score."""
    where = f"records[{variant!r}]"
    scores = np.asarray([_number(r, "Prediction", f"{where}[{i}]") for i, r in enumerate(records)], dtype=float)
    labels = np.asarray([_label01(r, f"{where}[{i}]") for i, r in enumerate(records)], dtype=float)
    approved = scores < threshold
    n_approved = int(approved.sum())
    return {
        "N": int(scores.size),
        "AUC": auc(scores, labels),
        "DefaultRateAmongApproved": float(labels[approved].mean()) if n_approved else None,
        "DeclineRate": float(1.0 - approved.mean()) if scores.size else None,
        "BrierScore": float(np.mean((scores - labels) ** 2)) if scores.size else None,
    }


def regression_summary(records: Sequence[Record], variant: str) -> dict[str, Any]:
    where = f"records[{variant!r}]"
    errors = np.asarray(
        [_number(r, "Prediction", f"{where}[{i}]") - _number(r, "Label", f"{where}[{i}]")
         for i, r in enumerate(records)],
        dtype=float,
    )
    return {
        "N": int(errors.size),
        "MeanAbsoluteError": float(np.abs(errors).mean()) if errors.size else None,
        "RootMeanSquaredError": float(np.sqrt(np.mean(errors**2))) if errors.size else None,
    }


# -- decisions from data capture (guardrails) --------------------------------------------------------------------
def first_instance(block: Mapping[str, Any], data: str) -> Any:
    """The first applicant of a captured request: a JSON object or list of values, or a CSV row (list of strings)."""
    text = data.strip()
    kind = str(block.get("observedContentType", "")).lower()
    if "json" in kind or text[:1] in ("{", "["):
        document = json.loads(text)
        if isinstance(document, dict) and "instances" in document:
            document = document["instances"]
        if isinstance(document, list):
            if not document:
                raise ValueError("no instance in the request")
            return document[0] if isinstance(document[0], (dict, list)) else document
        return document
    return next(csv.reader(io.StringIO(text.splitlines()[0])))


def _decision(block: Mapping[str, Any], data: str, threshold: float) -> bool:
    """True when the captured answer approved the (first) applicant."""
    text = data.strip()
    if text.startswith("{"):
        prediction = json.loads(text)["predictions"][0]
        if "decision" in prediction:
            return str(prediction["decision"]).lower() == "approve"
        return float(prediction["score"]) < threshold
    cells = text.splitlines()[0].split(",")
    if len(cells) > 1 and cells[1].strip():
        return cells[1].strip().lower() == "approve"
    return float(cells[0]) < threshold


def _block_text(block: Mapping[str, Any]) -> str:
    data = block.get("data", "")
    return base64.b64decode(data).decode("utf-8") if block.get("encoding") == "BASE64" else data


def captured_decision(line: str, feature_order: Sequence[str], attributes: Sequence[Mapping[str, Any]],
                      threshold: float) -> dict[str, Any]:
    """One data-capture line → {InferenceId, At (epoch s), Approved, Groups: {attribute: True (privileged) | False |
    None (missing)}}. Lists and CSV rows are read in the model's feature order (numeric, then categorical)."""
    record = json.loads(line)
    meta = record["eventMetadata"]
    capture = record["captureData"]
    instance = first_instance(capture["endpointInput"], _block_text(capture["endpointInput"]))
    if isinstance(instance, list):
        instance = dict(zip(feature_order, instance))
    groups = {a["Name"]: privileged(instance.get(a["Name"]) if isinstance(instance, dict) else None, a["Group"])
              for a in attributes}
    return {
        "InferenceId": meta.get("inferenceId") or meta["eventId"],
        "At": parse_time(meta["inferenceTime"], "eventMetadata.inferenceTime"),
        "Approved": _decision(capture["endpointOutput"], _block_text(capture["endpointOutput"]), threshold),
        "Groups": groups,
    }


def privileged(value: Any, group: Mapping[str, Any]) -> bool | None:
    """Membership of the privileged group of a protected attribute ({"min", "max"} or {"values"}, as in the dataset
    config); None when the value is missing or not a number for a numeric range."""
    if "values" in group:
        key = category_key(value)
        return None if key is None else key in {category_key(v) for v in group["values"]}
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(number):
        return None
    return (group.get("min") is None or number >= group["min"]) and (group.get("max") is None or number <= group["max"])


def decision_summary(decisions: Sequence[Record], cutoff: float, attribute_names: Sequence[str]) -> dict[str, Any]:
    """Counts of the decisions taken by `cutoff` (At ≤ cutoff): N, Approved, and per attribute the privileged and
    unprivileged groups' [N, Approved] and the number with the attribute missing."""
    seen = [d for d in decisions if d["At"] <= cutoff]
    groups: dict[str, dict[str, Any]] = {}
    for name in attribute_names:
        cell: dict[str, Any] = {"Privileged": [0, 0], "Unprivileged": [0, 0], "Missing": 0}
        for d in seen:
            member = d["Groups"].get(name)
            if member is None:
                cell["Missing"] += 1
                continue
            key = "Privileged" if member else "Unprivileged"
            cell[key][0] += 1
            cell[key][1] += int(bool(d["Approved"]))
        groups[name] = cell
    return {"N": len(seen), "Approved": sum(1 for d in seen if d["Approved"]), "Groups": groups}
