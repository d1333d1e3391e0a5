"""Deployment smoke test: send a few real rows through a live endpoint, check the response contract and latency.

Event (from the deployment state machine; sample: `events/smoke_test_credit_data.json`):

    {"EndpointName": "sagestep-dev-credit", "TargetVariant": null,
     "FeatureNames": ["Seniority", "Time", ...],          # the model's features, in model order
     "Rows": ["9,60,30,73,129.0,0.0,0.0,800,846,rent,married,no,freelance", ...]}   # CSV lines, no header

The rows travel in the event, with the feature names, because they depend on the model being deployed (each
dataset has its own features): the function stays dataset-agnostic and needs no bucket access or bundled file.

Each row is sent once with `InvokeEndpoint` (ContentType text/csv, Accept application/json, `InferenceId`
`smoke-<run id>-<row>`, so monitoring can tell smoke traffic from real traffic; `TargetVariant` when given).
Before the measured rows, row 1 is sent once as a warm-up whose latency is not counted: the caller's first call
pays DNS, TLS and credential set-up that is not the endpoint's latency. A warm-up that fails ends the test.

Result: `{"Passed": bool, "Reasons": [...every failed check...], "LatencyP50Ms": float | None,
"LatencyMaxMs": float | None, "Rows": n}`. Checks per row: the call succeeds (an error reports the status the
container answered and the first line of its message); the response is JSON with one prediction whose `score` is
a number in [0, 1], `decision` is approve or decline and agrees with `threshold` (decline when score >=
threshold), `reason_codes` is a list of distinct feature names (a regressor's: one finite `prediction`); the invoked variant is `TargetVariant` when one is
given. Latency (client side, around each call) fails the test when the largest exceeds `SMOKE_MAX_LATENCY_MS`;
a row slower than that is sent once more (`InferenceId` `...-<row>-again`) and counts with the faster of its two
calls, so one stall of the caller (a garbage collection, a busy host) does not fail a deployment while a row the
model is slow on still does.

No pandas or numpy here: the Lambda layer need not carry them.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_LATENCY_ENV = "SMOKE_MAX_LATENCY_MS"
INFERENCE_ID_PREFIX = "smoke-"
CONTENT_TYPE = "text/csv"
ACCEPT = "application/json"
DECISIONS = ("approve", "decline")  # sagestep.serving.DECISIONS (not imported: it needs numpy)
MAX_INFERENCE_ID = 64
_MAX_MESSAGE = 300


class SmokeEventError(ValueError):
    """The smoke test event is malformed; the message names the field and the fix."""


@dataclass(frozen=True)
class SmokeTestEvent:
    endpoint_name: str
    target_variant: str | None
    feature_names: tuple[str, ...]
    rows: tuple[str, ...]

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> SmokeTestEvent:
        if not isinstance(event, Mapping):
            raise SmokeEventError(f"smoke test event must be a JSON object, got {type(event).__name__}")
        name = event.get("EndpointName")
        if not isinstance(name, str) or not name:
            raise SmokeEventError(f"smoke test event: EndpointName is required (a non-empty string), got {name!r}")
        variant = event.get("TargetVariant")
        if variant is not None and (not isinstance(variant, str) or not variant):
            raise SmokeEventError(f"smoke test event: TargetVariant must be a variant name or null, got {variant!r}")
        features = event.get("FeatureNames")
        if (not isinstance(features, list) or not features
                or not all(isinstance(f, str) and f for f in features)):
            raise SmokeEventError("smoke test event: FeatureNames must be a non-empty list of the model's feature "
                                  f"names in model order, got {features!r}")
        rows = event.get("Rows")
        if not isinstance(rows, list) or not rows:
            raise SmokeEventError(f"smoke test event: Rows must be a non-empty list of CSV lines, got {rows!r}")
        for i, row in enumerate(rows, start=1):
            if not isinstance(row, str) or not row.strip() or "\n" in row.strip():
                raise SmokeEventError(f"smoke test event: Rows[{i - 1}] must be one CSV line (no header), got {row!r}")
            width = len(next(csv.reader([row])))
            if width != len(features):
                raise SmokeEventError(f"smoke test event: Rows[{i - 1}] has {width} values but FeatureNames has "
                                      f"{len(features)}; send the values in FeatureNames order")
        return cls(name, variant, tuple(features), tuple(rows))


def csv_line(values: Sequence[Any]) -> str:
    """One row of raw values (feature order) as the endpoint's CSV: missing values empty, quoted when needed."""
    cells = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]
    out: list[str] = []
    for cell in cells:
        out.append('"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\r\n') else cell)
    return ",".join(out)


def rows_document(features: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """`{"FeatureNames", "Rows"}` for the event, from rows of raw values in `features` order (e.g. held-out rows
    written by the training pipeline for the deployment to pass on)."""
    if any(len(row) != len(features) for row in rows):
        raise ValueError(f"every row must have {len(features)} values, in this order: {list(features)}")
    return {"FeatureNames": list(features), "Rows": [csv_line(row) for row in rows]}


def rows_from_sample_payload(archive: bytes, source: str) -> dict[str, Any]:
    """`{"FeatureNames", "Rows"}` from a model package's sample payload: a tar.gz holding one CSV whose header is the
    model's features in order (written by ml/evaluate.py from held-out rows, registered as SamplePayloadUrl)."""
    import io
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".csv")]
            if len(members) != 1:
                raise SmokeEventError(f"{source}: the sample payload must hold exactly one .csv file, found {len(members)}")
            text = tar.extractfile(members[0]).read().decode("utf-8")  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
        raise SmokeEventError(f"{source}: not a readable tar.gz with a UTF-8 CSV ({exc})") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise SmokeEventError(f"{source}: the sample CSV needs a header line (feature names) and at least one row")
    return {"FeatureNames": next(csv.reader([lines[0]])), "Rows": lines[1:]}


def inference_id(run_id: str, label: str) -> str:
    return f"{INFERENCE_ID_PREFIX}{run_id}-{label}"[:MAX_INFERENCE_ID]


def client_config() -> Any:
    """botocore Config for the sagemaker-runtime client: bounded timeouts, standard retries of throttling."""
    from botocore.config import Config

    return Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 2})


def run_smoke_test(
    runtime: Any,
    request: SmokeTestEvent,
    *,
    max_latency_ms: float,
    run_id: str,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Send every row of `request` through the endpoint with `runtime` (a boto3 sagemaker-runtime client)."""
    reasons: list[str] = []
    latencies: list[float] = []
    rows = request.rows
    try:
        _invoke(runtime, request, rows[0], inference_id(run_id, "warmup"))
    except Exception as exc:  # noqa: BLE001 - any failure is a failed smoke test, reported to the state machine
        reasons.append(f"warm-up (row 1): {_describe_error(exc)}")
        return _result(reasons, latencies, len(rows))
    for i, row in enumerate(rows, start=1):
        start = clock()
        try:
            response = _invoke(runtime, request, row, inference_id(run_id, str(i)))
        except Exception as exc:  # noqa: BLE001
            reasons.append(f"row {i}: {_describe_error(exc)}")
            continue
        latency = (clock() - start) * 1000.0
        if latency > max_latency_ms:
            start = clock()
            try:
                _invoke(runtime, request, row, inference_id(run_id, f"{i}-again"))
                latency = min(latency, (clock() - start) * 1000.0)
            except Exception:  # noqa: BLE001 - the first call answered: its latency stands
                pass
        latencies.append(latency)
        reasons.extend(f"row {i}: {problem}" for problem in check_response(response, request))
    if latencies and max(latencies) > max_latency_ms:
        reasons.append(f"max latency {max(latencies):.1f} ms exceeds {MAX_LATENCY_ENV}={max_latency_ms:g} ms "
                       f"(P50 {statistics.median(latencies):.1f} ms over {len(latencies)} rows)")
    return _result(reasons, latencies, len(rows))


def _invoke(runtime: Any, request: SmokeTestEvent, row: str, inference: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "EndpointName": request.endpoint_name,
        "ContentType": CONTENT_TYPE,
        "Accept": ACCEPT,
        "Body": row.encode("utf-8"),
        "InferenceId": inference,
    }
    if request.target_variant:
        params["TargetVariant"] = request.target_variant
    response = runtime.invoke_endpoint(**params)
    body = response["Body"]
    return {**response, "Body": body.read() if hasattr(body, "read") else body}


def check_response(response: Mapping[str, Any], request: SmokeTestEvent) -> list[str]:
    """Every way one response breaks the serving contract (empty when it holds)."""
    problems: list[str] = []
    if request.target_variant and response.get("InvokedProductionVariant") not in (None, request.target_variant):
        problems.append(f"answered by variant {response.get('InvokedProductionVariant')!r}, not the target "
                        f"{request.target_variant!r}")
    content_type = str(response.get("ContentType") or "").split(";", 1)[0].strip().lower()
    if content_type != ACCEPT:
        problems.append(f"ContentType is {response.get('ContentType')!r}, expected {ACCEPT}")
    body = response.get("Body", b"")
    try:
        document = json.loads(body)
    except (TypeError, ValueError):
        return [*problems, f"body is not JSON: {_shorten(repr(body))}"]
    predictions = document.get("predictions") if isinstance(document, dict) else None
    if not isinstance(predictions, list) or len(predictions) != 1:
        shown = _shorten(repr(document))
        return [*problems, f"body must be {{\"predictions\": [one object]}} for one row, got {shown}"]
    prediction = predictions[0]
    if not isinstance(prediction, dict):
        return [*problems, f"predictions[0] must be an object, got {_shorten(repr(prediction))}"]
    if "prediction" in prediction and "score" not in prediction:  # a regressor's answer: one finite number
        value = prediction["prediction"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"prediction must be a finite number, got {_shorten(repr(value))}")
        return problems
    score, decision, threshold = prediction.get("score"), prediction.get("decision"), prediction.get("threshold")
    score_ok, threshold_ok = _probability(score), _probability(threshold)
    if not score_ok:
        problems.append(f"score must be a number in [0, 1], got {score!r}")
    if decision not in DECISIONS:
        problems.append(f"decision must be one of {list(DECISIONS)}, got {decision!r}")
    if not threshold_ok:
        problems.append(f"threshold must be a number in [0, 1], got {threshold!r}")
    if score_ok and threshold_ok and decision in DECISIONS:
        expected = "decline" if score >= threshold else "approve"
        if decision != expected:
            problems.append(f"decision {decision!r} contradicts score {score} and threshold {threshold} "
                            f"(expected {expected!r})")
    reasons = prediction.get("reason_codes")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        problems.append(f"reason_codes must be a list of feature names, got {_shorten(repr(reasons))}")
    else:
        unknown = [r for r in reasons if r not in request.feature_names]
        if unknown:
            problems.append(f"reason_codes {unknown} are not features of the model ({list(request.feature_names)})")
        if len(set(reasons)) != len(reasons):
            problems.append(f"reason_codes repeat a feature: {reasons}")
    return problems


def _probability(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0.0 <= value <= 1.0)


def _describe_error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping) and isinstance(response.get("Error"), Mapping):
        code = response["Error"].get("Code", "?")
        message = response.get("OriginalMessage") or response["Error"].get("Message", "")
        status = response.get("OriginalStatusCode")
        origin = f" (container answered {status})" if status is not None else ""
        return f"InvokeEndpoint failed: {code}{origin}: {_shorten(_first_line(str(message)))}"
    return f"InvokeEndpoint failed: {type(exc).__name__}: {_shorten(_first_line(str(exc)))}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _result(reasons: list[str], latencies: list[float], rows: int) -> dict[str, Any]:
    return {
        "Passed": not reasons,
        "Reasons": reasons,
        "LatencyP50Ms": round(statistics.median(latencies), 3) if latencies else None,
        "LatencyMaxMs": round(max(latencies), 3) if latencies else None,
        "Rows": rows,
    }
