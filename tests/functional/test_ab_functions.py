"""The merge_ground_truth and ab_winner Lambda handlers against moto's S3 and CloudWatch: a look, the next look, and
a retried look (same cutoff) giving the same merged file and the same decision."""

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

from tests.conftest import REPO_ROOT, load_event

BUCKET = "sagestep-dev-artifacts-123456789012"
UTC = dt.timezone.utc


def load_handler(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_app", REPO_ROOT / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    for key, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(key, value)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put_captures(s3, variant: str, start: dt.datetime, ids: list[str], scores: list[float]) -> None:
    lines = []
    for i, (inference_id, score) in enumerate(zip(ids, scores)):
        when = start + dt.timedelta(seconds=i)
        lines.append(json.dumps({
            "captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": "{}", "encoding": "JSON"},
                            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                               "data": json.dumps({"predictions": [{"score": score, "decision": "approve"}]}), "encoding": "JSON"}},
            "eventMetadata": {"eventId": f"e-{inference_id}", "inferenceId": inference_id, "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "eventVersion": "0"}))
    s3.put_object(Bucket=BUCKET, Key=f"capture/sagestep-dev-credit/{variant}/{start:%Y/%m/%d/%H}/{variant}-{start:%M%S}.jsonl",
                  Body="\n".join(lines) + "\n")


def put_labels(s3, ids: list[str], labels: list[int], tag: str) -> None:
    now = dt.datetime.now(UTC)
    body = "\n".join(json.dumps({"groundTruthData": {"data": str(y), "encoding": "CSV"}, "eventMetadata": {"eventId": i},
                                 "eventVersion": "0"}) for i, y in zip(ids, labels)) + "\n"
    s3.put_object(Bucket=BUCKET, Key=f"ground-truth/sagestep-dev-credit/{now:%Y/%m/%d/%H}/labels-{tag}.jsonl", Body=body)


def merge_event(variant: str, at: dt.datetime) -> dict:
    event = load_event("merge_ground_truth_credit_look")
    return {**event, "CaptureS3Uri": f"s3://{BUCKET}/capture/sagestep-dev-credit/{variant}/",
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
    winner = load_handler("ab_winner")
    design = {k: v for k, v in load_event("ab_test_state_machine_split").items()
              if k in ("Metric", "Mode", "Variance", "MinimumDetectableEffect", "Alpha", "Power", "Looks", "TrafficShare")}
    plan = winner.handler({"Action": "plan", "PlanS3Uri": f"s3://{BUCKET}/ab-tests/t1/plan.json", "Design": design}, None)
    assert plan["NMax"] > 0 and len(plan["Boundaries"]) == design["Looks"]
    rng = random.Random(7)
    start = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    for variant, noise in (("Champion", 0.45), ("Challenger", 0.1)):  # the challenger's scores are much closer to the labels
        ids = [f"{variant}-{i}" for i in range(plan["NMax"])]
        labels = [rng.randint(0, 1) for _ in ids]
        scores = [min(1.0, max(0.0, y + rng.uniform(-noise, noise) if y == 0 else y - rng.uniform(0, noise))) for y in labels]
        put_captures(s3, variant, start, ids, scores)
        put_labels(s3, ids, labels, variant)
    at = dt.datetime.now(UTC) + dt.timedelta(seconds=1)
    merge = load_handler("merge_ground_truth")
    for variant in ("Champion", "Challenger"):
        assert merge.handler(merge_event(variant, at), None)["Merged"] == plan["NMax"]
    event = load_event("ab_winner_decide")
    event.update(PlanS3Uri=f"s3://{BUCKET}/ab-tests/t1/plan.json", StartTime=(start - dt.timedelta(minutes=1)).isoformat(),
                 LookCutoffs=[at.isoformat()], EvidenceS3Prefix=f"s3://{BUCKET}/ab-tests/t1/evidence",
                 Variants={v: {"VariantName": v, "MergedS3Uri": f"s3://{BUCKET}/ab-tests/t1/merged/{v}/"} for v in ("Champion", "Challenger")})
    first = winner.handler(event, None)
    evidence = json.loads(s3.get_object(Bucket=BUCKET, Key="ab-tests/t1/evidence/look-001.json")["Body"].read())
    again = winner.handler(event, None)
    assert first == again
    assert first["Decision"] == "promote", first["Reasons"]
    assert json.loads(s3.get_object(Bucket=BUCKET, Key="ab-tests/t1/evidence/look-001.json")["Body"].read())["Evidence"] == evidence["Evidence"]
    assert s3.head_object(Bucket=BUCKET, Key="ab-tests/t1/evidence/look-001.png")["ContentLength"] > 1000
