"""Per-request outcomes from merged records (prediction + ground truth), and their cumulative sums per look.

A merged record is a mapping with
  InferenceId  str     the request id (pairs the two models' records in shadow mode)
  Prediction   float   predicted default probability (classification) or predicted value (regression)
  Label        number  0/1 true default (classification) or true value (regression)
  AvailableAt  number (epoch seconds) or ISO-8601 string: when the merged record became available, so a look
               at cutoff c sees exactly the records with AvailableAt ≤ c and recomputing a look is repeatable.
All losses are "lower is better".
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats

from sagestep.abtest.sequential import Sums

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
    """d_i = loss_challenger − loss_champion on the same requests (shadow mode), the time each pair became
    available (the later of the two), and how many records had no partner yet."""
    loss_a, time_a, ids_a = request_losses(champion, metric, threshold, "champion")
    loss_b, time_b, ids_b = request_losses(challenger, metric, threshold, "challenger")
    index_b: dict[str, int] = {}
    for j, key in enumerate(ids_b):
        if key in index_b:
            raise ValueError(f"records['challenger']: InferenceId {key!r} appears twice; shadow pairs must be unique")
        index_b[key] = j
    seen: set[str] = set()
    diffs, times = [], []
    for i, key in enumerate(ids_a):
        if key in seen:
            raise ValueError(f"records['champion']: InferenceId {key!r} appears twice; shadow pairs must be unique")
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
