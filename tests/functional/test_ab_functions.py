"""The merge_ground_truth and ab_winner Lambda handlers against moto's S3 and CloudWatch (with the local cloud's
percentile plug-in): a look, the next look, a retried look (same cutoff) giving the same merged file and the same
decision; the replay input of split traffic; the variants' metrics as the guardrails read them."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import random
import time
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest
from moto import mock_aws

from sagestep.abtest.lambda_io import read_replays, variant_metrics
from sagestep.local import cloudwatch as local_cloudwatch
from tests.conftest import REPO_ROOT, load_event

BUCKET = "sagestep-dev-artifacts-123456789012"
DATA_BUCKET = "sagestep-dev-data-123456789012"
CONFIG_URI = f"s3://{DATA_BUCKET}/configs/credit_data.yaml"
ENDPOINT = "sagestep-dev-credit"
AUDIT_BUCKET = "sagestep-dev-audit-123456789012"
UTC = dt.timezone.utc


def load_handler(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_app", REPO_ROOT / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    for key, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AUDIT_BUCKET_NAME", AUDIT_BUCKET), ("POWERTOOLS_METRICS_NAMESPACE", "sagestep-dev")):
        monkeypatch.setenv(key, value)
    with mock_aws():
        local_cloudwatch.install()
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        client.create_bucket(Bucket=AUDIT_BUCKET)
        client.create_bucket(Bucket=DATA_BUCKET)
        client.put_object(Bucket=DATA_BUCKET, Key="configs/credit_data.yaml",
                          Body=(REPO_ROOT / "ml" / "config" / "credit_data.yaml").read_bytes())
        yield client


def put_captures(s3, variant: str, start: dt.datetime, ids: list[str], scores: list[float],
                 applicants: list[dict] | None = None) -> None:
    lines = []
    for i, (inference_id, score) in enumerate(zip(ids, scores)):
        when = start + dt.timedelta(seconds=i % 60)
        applicant = applicants[i] if applicants else {}
        lines.append(json.dumps({
            "captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                              "data": json.dumps({"instances": [applicant]}), "encoding": "JSON"},
                            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                               "data": json.dumps({"predictions": [{"score": score, "decision": "approve" if score < 0.5 else "decline"}]}),
                                               "encoding": "JSON"}},
            "eventMetadata": {"eventId": f"e-{inference_id}", "inferenceId": inference_id, "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "eventVersion": "0"}))
    s3.put_object(Bucket=BUCKET, Key=f"capture/{ENDPOINT}/{variant}/{start:%Y/%m/%d/%H}/{variant}-{start:%M%S}.jsonl",
                  Body="\n".join(lines) + "\n")


def put_labels(s3, ids: list[str], labels: list[int], tag: str) -> None:
    now = dt.datetime.now(UTC)
    body = "\n".join(json.dumps({"groundTruthData": {"data": str(y), "encoding": "CSV"}, "eventMetadata": {"eventId": i},
                                 "eventVersion": "0"}) for i, y in zip(ids, labels)) + "\n"
    s3.put_object(Bucket=BUCKET, Key=f"ground-truth/{ENDPOINT}/{now:%Y/%m/%d/%H}/labels-{tag}.jsonl", Body=body)


def put_metrics(variant: str, invocations: int, server_errors: int, client_errors: int, latencies_us: list[float]) -> None:
    cw = boto3.client("cloudwatch")
    dims = [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": variant}]
    data = [{"MetricName": "Invocations", "Dimensions": dims, "Value": float(invocations)},
            {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": float(server_errors)},
            {"MetricName": "Invocation4XXErrors", "Dimensions": dims, "Value": float(client_errors)},
            {"MetricName": "InvocationModelErrors", "Dimensions": dims, "Value": float(server_errors + client_errors)}]
    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data)
    for start in range(0, len(latencies_us), 150):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
            "MetricName": "ModelLatency", "Dimensions": dims, "Values": latencies_us[start:start + 150], "Unit": "Microseconds"}])


def merge_event(variant: str, at: dt.datetime) -> dict:
    event = load_event("merge_ground_truth_credit_look")
    return {**event, "CaptureS3Uri": f"s3://{BUCKET}/capture/{ENDPOINT}/{variant}/",
            "OutputS3Uri": f"s3://{BUCKET}/ab-tests/t1/merged/{variant}/", "EndOffset": "-PT0S",
            "At": at.isoformat(), "Since": (at - dt.timedelta(hours=1)).isoformat()}


def test_merge_looks_carry_pending_captures_and_a_retried_look_rewrites_the_same_file(s3):
    merge = load_handler("merge_ground_truth")
    start = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    ids = [f"r{i}" for i in range(10)]
    put_captures(s3, "Challenger", start, ids, [0.1 * i for i in range(10)])
    put_labels(s3, ids[:6], [0, 1, 0, 1, 0, 1], "a")
    first_at = dt.datetime.now(UTC)
    first = merge.handler(merge_event("Challenger", first_at), None)
    assert (first["Merged"], first["Pending"]) == (6, 4)
    time.sleep(1.1)  # S3 times are whole seconds
    put_labels(s3, ids[6:], [1, 1, 0, 0], "b")  # late labels: after the first look
    second = merge.handler(merge_event("Challenger", first_at + dt.timedelta(seconds=30)), None)
    assert (second["Merged"], second["Pending"]) == (4, 0)
    body = s3.get_object(Bucket=BUCKET, Key=first["MergedS3Uri"].split("/", 3)[3])["Body"].read()
    retried = merge.handler(merge_event("Challenger", first_at), None)
    assert retried["MergedS3Uri"] == first["MergedS3Uri"] and retried["Merged"] == 6
    assert s3.get_object(Bucket=BUCKET, Key=first["MergedS3Uri"].split("/", 3)[3])["Body"].read() == body


def test_plan_then_a_retried_look_gives_the_same_decision_and_evidence(s3):
    # GIVEN a shadow test planned from the sample input: both models scored the same labelled requests
    winner = load_handler("ab_winner")
    design = {**{k: v for k, v in load_event("ab_test_state_machine_split").items()
                 if k in ("Metric", "Variance", "MinimumDetectableEffect", "Alpha", "Power", "Looks", "MaxLooks",
                          "TrafficShare", "LookIntervalSeconds", "MergeEndOffset")},
              "Mode": "shadow", "DatasetConfigS3Uri": CONFIG_URI, "Guardrails": {"MinCount": 50}}
    plan = winner.handler({"Action": "plan", "PlanS3Uri": f"s3://{BUCKET}/ab-tests/t1/plan.json", "Design": design}, None)
    assert plan["NMax"] > 0 and len(plan["Boundaries"]) == design["Looks"] and plan["MaxLooks"] == design["MaxLooks"]
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key="ab-tests/t1/plan.json")["Body"].read())
    assert [a["Name"] for a in stored["Fairness"]["Attributes"]] == ["Age", "Marital"]
    assert stored["Guardrails"]["DisparateImpactBand"] == [0.8, 1.25]
    rng = random.Random(7)
    start = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    n = max(plan["NMax"], 700)  # enough latencies for an upper bound on the champion's p99
    ids = [f"req-{i}" for i in range(n)]
    labels = [rng.randint(0, 1) for _ in ids]
    applicants = [{"Age": rng.choice([22, 30, 45]), "Marital": rng.choice(["married", "single"])} for _ in ids]
    for variant, noise in (("Champion", 0.45), ("Challenger", 0.1)):  # the challenger's scores are much closer to the labels
        scores = [min(1.0, max(0.0, y + rng.uniform(-noise, noise) if y == 0 else y - rng.uniform(0, noise))) for y in labels]
        put_captures(s3, variant, start, ids, scores, applicants)
        put_metrics(variant, n, 0, 3, [float(rng.randint(800, 3000)) for _ in range(n)])
    put_labels(s3, ids, labels, "all")
    at = dt.datetime.now(UTC) + dt.timedelta(seconds=1)
    merge = load_handler("merge_ground_truth")
    for variant in ("Champion", "Challenger"):
        assert merge.handler(merge_event(variant, at), None)["Merged"] == n
    event = load_event("ab_winner_decide")
    event.update(PlanS3Uri=f"s3://{BUCKET}/ab-tests/t1/plan.json", StartTime=(start - dt.timedelta(minutes=1)).isoformat(),
                 LookCutoffs=[at.isoformat()], EvidenceS3Prefix=f"s3://{BUCKET}/ab-tests/t1/evidence",
                 Variants={v: {"VariantName": v, "MergedS3Uri": f"s3://{BUCKET}/ab-tests/t1/merged/{v}/",
                               "CaptureS3Uri": f"s3://{BUCKET}/capture/{ENDPOINT}/{v}/",
                               "ReplayS3Uri": f"s3://{BUCKET}/ab-tests/t1/replay/{v}/"} for v in ("Champion", "Challenger")})
    # WHEN the look is decided, then retried
    first = winner.handler(event, None)
    evidence = json.loads(s3.get_object(Bucket=BUCKET, Key="ab-tests/t1/evidence/look-001.json")["Body"].read())
    again = winner.handler(event, None)
    # THEN the same decision: promote, with every guardrail checked (the p99 from CloudWatch percentiles)
    assert first == again
    assert first["Decision"] == "promote", first["Reasons"]
    assert {g["Name"]: g["State"] for g in evidence["Evidence"]["Guardrails"]} == {
        "ErrorRate": "within", "ApprovalRate": "within", "DisparateImpact:Age": "within",
        "DisparateImpact:Marital": "within", "LatencyP99": "within"}
    assert evidence["Operational"]["challenger"]["ClientErrors"] == 3
    assert json.loads(s3.get_object(Bucket=BUCKET, Key="ab-tests/t1/evidence/look-001.json")["Body"].read())["Evidence"] == evidence["Evidence"]
    assert s3.head_object(Bucket=BUCKET, Key="ab-tests/t1/evidence/look-001.png")["ContentLength"] > 1000
    # AND the final decision is in the audit trail once, retried look or not (issue 14)
    from sagestep.audit import records as audit

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=AUDIT_BUCKET).get("Contents", [])]
    assert len(keys) == 1 and keys[0].startswith("audit/v1/ab_decision/")
    record = json.loads(s3.get_object(Bucket=AUDIT_BUCKET, Key=keys[0])["Body"].read())
    audit.validate(record)
    assert record["decision"] == "promote" and record["evidence"]["EvidenceS3Uri"].endswith("look-001.json")


def test_replay_input_is_csv_in_feature_order_and_its_output_pairs_back_by_position(s3):
    # GIVEN a plan and one look's merged records of the challenger (JSON requests by feature name)
    winner = load_handler("ab_winner")
    design = {"Metric": "brier", "Variance": 0.08, "MinimumDetectableEffect": -0.05, "Looks": 3, "DatasetConfigS3Uri": CONFIG_URI}
    winner.handler({"Action": "plan", "PlanS3Uri": f"s3://{BUCKET}/ab-tests/t2/plan.json", "Design": design}, None)
    features = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price", "Home",
                "Marital", "Records", "Job"]
    applicant = dict(zip(features, [9, 60, 30, 73, 129, 0, 0, 800, 846, "rent", "married", "no", "freelance"]))
    lines = [json.dumps({"captureData": {"endpointInput": {"observedContentType": "application/json",
                                                           "data": json.dumps({"instances": [{**applicant, "Income": None}]}),
                                                           "encoding": "JSON"},
                                         "endpointOutput": {"data": '{"predictions":[{"score":0.2}]}', "encoding": "JSON"}},
                         "eventMetadata": {"eventId": "e1", "inferenceId": "r1"}, "groundTruthData": {"data": "0"}})]
    event = load_event("ab_winner_replay")
    s3.put_object(Bucket=BUCKET, Key=event["MergedS3Uri"].split("/", 3)[3], Body="\n".join(lines))
    replay = event["ReplayS3Uri"]
    # WHEN the replay input is prepared, and the transform's output is read back
    out = winner.handler({**event, "PlanS3Uri": f"s3://{BUCKET}/ab-tests/t2/plan.json"}, None)
    body = s3.get_object(Bucket=BUCKET, Key="ab-tests/ab-credit-1/replay/Challenger/input/look-002/requests.csv")["Body"].read()
    s3.put_object(Bucket=BUCKET, Key="ab-tests/ab-credit-1/replay/Challenger/output/look-002/requests.csv.out",
                  Body=b"0.61,decline,Income\n")
    # THEN one CSV line in the dataset config's feature order (missing value empty), paired back by position
    assert out["Count"] == 1
    assert body == b"9,60,30,73,,0,0,800,846,rent,married,no,freelance\n"
    assert read_replays(s3, replay, 2) == ({"r1": 0.61}, 0)
    assert read_replays(s3, replay, 1) == ({}, 0)  # a look sees only the replays of its own and earlier looks


def test_variant_metrics_count_server_errors_only_and_read_p99_bounds_from_cloudwatch_percentiles(s3):
    # GIVEN one variant's metrics: 1,000 invocations, 2 server errors, 40 client errors, latencies 1..1000 µs
    put_metrics("Challenger", 1000, 2, 40, [float(v) for v in range(1, 1001)])
    start = dt.datetime.now(UTC) - dt.timedelta(minutes=5)
    out = variant_metrics(boto3.client("cloudwatch"), ENDPOINT, "Challenger", start, start + dt.timedelta(minutes=10), 0.005)
    # THEN errors are the 5xx (the 4xx are the client's), and the p99 and its bounds are the nearest-rank percentiles
    assert (out["Invocations"], out["Errors"], out["ClientErrors"]) == (1000, 2, 40)
    assert out["LatencySamples"] == 1000 and out["LatencyP99Ms"] == pytest.approx(0.990)
    assert out["LatencyP99LowerMs"] < 0.990 < out["LatencyP99UpperMs"]
