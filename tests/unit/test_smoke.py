"""Deployment smoke test (functions/smoke_test over sagestep.smoke) against fake sagemaker-runtime clients."""

from __future__ import annotations

import importlib.util
import io
import json

import pytest
from botocore.exceptions import ClientError

from sagestep.aws import envvars
from sagestep.serving import inference as serving
from sagestep.serving import smoke
from tests.conftest import REPO_ROOT, load_event

EVENT = load_event("smoke_test_credit_data")
FEATURES = EVENT["FeatureNames"]
HEALTHY = {"score": 0.83, "decision": "decline", "threshold": 0.5, "reason_codes": ["Income", "Seniority", "Records"]}


class FakeRuntime:
    """sagemaker-runtime's invoke_endpoint: answers `answer(call number)`, each call taking `latency_ms(call)`."""

    def __init__(self, answer=lambda n: HEALTHY, latency_ms=lambda n: 5.0, variant="AllTraffic"):
        self.answer, self.latency_ms, self.variant = answer, latency_ms, variant
        self.calls: list[dict] = []
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def invoke_endpoint(self, **params):
        self.calls.append(params)
        n = len(self.calls) - 1  # 0 is the warm-up
        self.now += self.latency_ms(n) / 1000.0
        answer = self.answer(n)
        if isinstance(answer, Exception):
            raise answer
        body = answer if isinstance(answer, bytes) else json.dumps({"predictions": [answer]}).encode()
        return {"Body": io.BytesIO(body), "ContentType": "application/json", "InvokedProductionVariant": self.variant}


def run(runtime: FakeRuntime, event=EVENT, max_latency_ms=200.0):
    request = smoke.SmokeTestEvent.from_event(event)
    return smoke.run_smoke_test(runtime, request, max_latency_ms=max_latency_ms, run_id="req-1", clock=runtime.clock)


def model_error(status: int, message: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ModelError", "Message": f"Received client error ({status}) from primary with message "
                   f"\"{message}\". See https://... for more information."},
         "OriginalStatusCode": status, "OriginalMessage": f"{message}\nTraceback (most recent call last): ..."},
        "InvokeEndpoint",
    )


def test_healthy_endpoint_passes_and_reports_latency():
    # GIVEN an endpoint that answers every row correctly in 5 ms, the warm-up in 80 ms
    runtime = FakeRuntime(latency_ms=lambda n: 80.0 if n == 0 else 5.0)
    # WHEN the smoke test runs
    result = run(runtime)
    # THEN it passes; the latency is over the 5 measured rows, the warm-up excluded
    assert result == {"Passed": True, "Reasons": [], "LatencyP50Ms": 5.0, "LatencyMaxMs": 5.0, "Rows": 5}
    # AND each row was sent once as CSV asking for JSON, after one warm-up, with a smoke inference id
    assert [c["Body"].decode() for c in runtime.calls] == [EVENT["Rows"][0], *EVENT["Rows"]]
    assert {(c["EndpointName"], c["ContentType"], c["Accept"]) for c in runtime.calls} == {
        (EVENT["EndpointName"], "text/csv", "application/json")}
    expected_ids = ["smoke-req-1-warmup", *(f"smoke-req-1-{i}" for i in range(1, 6))]
    assert [c["InferenceId"] for c in runtime.calls] == expected_ids
    assert all("TargetVariant" not in c for c in runtime.calls)


def test_target_variant_is_sent_and_must_be_the_one_that_answers():
    # GIVEN a smoke test of the new variant, answered by the old one
    runtime = FakeRuntime(variant="blue")
    result = run(runtime, {**EVENT, "TargetVariant": "green"})
    # THEN every call names the target and the test fails naming both variants
    assert {c["TargetVariant"] for c in runtime.calls} == {"green"}
    assert not result["Passed"]
    assert result["Reasons"][0] == "row 1: answered by variant 'blue', not the target 'green'"


@pytest.mark.parametrize("bad_answer, reason", [
    ({**HEALTHY, "score": 1.3}, "row 2: score must be a number in [0, 1], got 1.3"),
    ({**HEALTHY, "score": "0.8"}, "row 2: score must be a number in [0, 1], got '0.8'"),
    ({**HEALTHY, "decision": "maybe"}, "row 2: decision must be one of ['approve', 'decline'], got 'maybe'"),
    ({**HEALTHY, "decision": "approve"},
     "row 2: decision 'approve' contradicts score 0.83 and threshold 0.5 (expected 'decline')"),
    ({**HEALTHY, "reason_codes": ["Income", "Salary"]}, "row 2: reason_codes ['Salary'] are not features of the model"),
    ({**HEALTHY, "reason_codes": ["Income", "Income"]}, "row 2: reason_codes repeat a feature: ['Income', 'Income']"),
    ({**HEALTHY, "reason_codes": "Income"}, "row 2: reason_codes must be a list of feature names, got 'Income'"),
    ({k: v for k, v in HEALTHY.items() if k != "threshold"}, "row 2: threshold must be a number in [0, 1], got None"),
    (b"0.83", "row 2: body must be {\"predictions\": [one object]} for one row, got 0.83"),
    (b"<html>", "row 2: body is not JSON: b'<html>'"),
])
def test_wrong_response_schema_fails_naming_the_row_and_field(bad_answer, reason):
    # GIVEN an endpoint whose answer to row 2 breaks the contract
    runtime = FakeRuntime(answer=lambda n: bad_answer if n == 2 else HEALTHY)
    # WHEN the smoke test runs THEN it fails with that reason only
    result = run(runtime)
    assert not result["Passed"]
    assert len(result["Reasons"]) == 1 and result["Reasons"][0].startswith(reason), result["Reasons"]


def test_row_slow_twice_fails_on_max_latency():
    # GIVEN an endpoint that takes 350 ms for row 4, each time it is sent, and 5 ms otherwise, against a 200 ms limit
    runtime = FakeRuntime(latency_ms=lambda n: 350.0 if n in (4, 5) else 5.0)
    # WHEN the smoke test runs
    result = run(runtime, max_latency_ms=200)
    # THEN row 4 was sent again, and the test fails on latency, reporting the max and the median
    assert [c["InferenceId"] for c in runtime.calls][4:6] == ["smoke-req-1-4", "smoke-req-1-4-again"]
    assert not result["Passed"]
    assert result["Reasons"] == ["max latency 350.0 ms exceeds SMOKE_MAX_LATENCY_MS=200 ms (P50 5.0 ms over 5 rows)"]
    assert (result["LatencyP50Ms"], result["LatencyMaxMs"]) == (5.0, 350.0)


def test_one_stall_is_measured_again_and_passes():
    # GIVEN an endpoint that stalls once (1.4 s on row 4's call) and answers in 5 ms otherwise, against a 200 ms limit
    runtime = FakeRuntime(latency_ms=lambda n: 1400.0 if n == 4 else 5.0)
    # WHEN the smoke test runs
    result = run(runtime, max_latency_ms=200)
    # THEN row 4 counts with its second call's latency and the test passes
    assert result["Passed"], result["Reasons"]
    assert len(runtime.calls) == 1 + 5 + 1 and result["LatencyMaxMs"] == 5.0


def test_client_error_from_the_container_fails_with_its_status_and_message():
    # GIVEN an endpoint whose container rejects row 3 with a 400
    message = "row 1, column 5 (Income): 'abc' is not a number; send a number, or an empty value for a missing one"
    runtime = FakeRuntime(answer=lambda n: model_error(400, message) if n == 3 else HEALTHY)
    # WHEN the smoke test runs
    result = run(runtime)
    # THEN it fails naming the row, the status the container answered and the first line of its message
    assert not result["Passed"]
    assert result["Reasons"] == [f"row 3: InvokeEndpoint failed: ModelError (container answered 400): {message}"]
    assert result["LatencyMaxMs"] == 5.0  # the four rows that were answered


def test_unreachable_endpoint_fails_at_the_warm_up_without_sending_the_rows():
    # GIVEN an endpoint that does not exist
    missing = ClientError({"Error": {"Code": "ValidationError", "Message": "Endpoint sagestep-dev-credit of account "
                                     "123456789012 not found."}}, "InvokeEndpoint")
    runtime = FakeRuntime(answer=lambda n: missing)
    # WHEN the smoke test runs THEN it fails once, at the warm-up, with no latency
    result = run(runtime)
    assert result == {"Passed": False, "Rows": 5, "LatencyP50Ms": None, "LatencyMaxMs": None, "Reasons": [
        "warm-up (row 1): InvokeEndpoint failed: ValidationError: Endpoint sagestep-dev-credit of account "
        "123456789012 not found."]}
    assert len(runtime.calls) == 1


@pytest.mark.parametrize("change, pattern", [
    ({"EndpointName": ""}, r"EndpointName is required"),
    ({"TargetVariant": 3}, r"TargetVariant must be a variant name or null"),
    ({"FeatureNames": []}, r"FeatureNames must be a non-empty list"),
    ({"Rows": []}, r"Rows must be a non-empty list of CSV lines"),
    ({"Rows": ["1,2,3"]}, r"Rows\[0\] has 3 values but FeatureNames has 13"),
    ({"Rows": [EVENT["Rows"][0] + "\n" + EVENT["Rows"][1]]}, r"Rows\[0\] must be one CSV line"),
])
def test_malformed_event_names_the_field(change, pattern):
    with pytest.raises(smoke.SmokeEventError, match=pattern):
        smoke.SmokeTestEvent.from_event({**EVENT, **change})


def test_response_contract_constants_match_the_serving_code():
    assert smoke.DECISIONS == serving.DECISIONS and smoke.ACCEPT == serving.JSON and smoke.CONTENT_TYPE == serving.CSV


def test_sample_event_rows_are_real_credit_data_rows_in_model_order(repo_root):
    # GIVEN the dataset file and its config's feature order
    import csv

    from sagestep.training.config import load_dataset_config

    features = list(load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml").features.all)
    with (repo_root / "data" / "credit_data" / "credit_data.csv").open(newline="") as f:
        document = smoke.rows_document(features, [[r[c] for c in features] for r in csv.DictReader(f)])
    # THEN the stored event holds the model's features and five of the file's rows, in that order
    assert FEATURES == document["FeatureNames"] and len(EVENT["Rows"]) == 5
    assert set(EVENT["Rows"]) <= set(document["Rows"])


# ------------------------------------------------------------------------------------------------ handler


def _handler_module():
    spec = importlib.util.spec_from_file_location("smoke_test_app", REPO_ROOT / "functions" / "smoke_test" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Context:
    aws_request_id = "0f5c-req"


def test_handler_creates_the_runtime_client_and_returns_the_result(monkeypatch):
    # GIVEN the function's environment and a fake sagemaker-runtime client behind boto3.client
    app = _handler_module()
    runtime = FakeRuntime()
    created = []
    monkeypatch.setattr(app.boto3, "client", lambda name, **kw: created.append(name) or runtime)
    monkeypatch.setenv("SMOKE_MAX_LATENCY_MS", "200")
    # WHEN invoked with the sample event THEN it passes, using the Lambda request id in the inference ids
    result = app.handler(EVENT, _Context())
    assert result["Passed"] and result["Rows"] == 5 and created == ["sagemaker-runtime"]
    assert runtime.calls[1]["InferenceId"] == "smoke-0f5c-req-1"


@pytest.mark.parametrize("value, error", [(None, envvars.MissingSetting), ("fast", envvars.InvalidSetting),
                                          ("0", envvars.InvalidSetting)])
def test_handler_fails_fast_on_a_missing_or_bad_latency_limit(monkeypatch, value, error):
    app = _handler_module()
    monkeypatch.setattr(app.boto3, "client", lambda name, **kw: FakeRuntime())
    if value is None:
        monkeypatch.delenv("SMOKE_MAX_LATENCY_MS", raising=False)
    else:
        monkeypatch.setenv("SMOKE_MAX_LATENCY_MS", value)
    with pytest.raises(error, match="SMOKE_MAX_LATENCY_MS"):
        app.handler(EVENT, _Context())
