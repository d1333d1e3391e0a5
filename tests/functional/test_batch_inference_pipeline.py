"""Batch scoring (statemachines/batch_inference.asl.json) of real held-out rows with a real model, locally."""

from __future__ import annotations

import json

from sagestep.local import LocalRuntime
from tests.conftest import BY_HAND, REPO_ROOT, load_event
from tests.functional.test_deployment_pipeline import register


def test_batch_scoring_joins_scores_to_rows_and_captures_them(tmp_path, trained_models):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path, time_scale=0.01, parameter_overrides=BY_HAND) as runtime:
        # GIVEN an approved package and real rows (no header, model feature order) under an S3 prefix
        arn = register(runtime, "v1", trained_models["v1"])
        bucket = runtime.bucket("ArtifactsBucket")
        rows = load_event("smoke_test_credit_data")["Rows"]
        runtime.client("s3").put_object(Bucket=bucket, Key="batch-in/applications.csv", Body=("\n".join(rows) + "\n").encode())
        execution_input = {"ModelPackageArn": arn, "InputS3Uri": f"s3://{bucket}/batch-in/", "OutputS3Uri": f"s3://{bucket}/batch-out/"}
        # WHEN the batch machine runs
        record = runtime.run("BatchInferenceStateMachine", execution_input, name="batch-1")
        # THEN every row comes back joined with score, decision and reasons, and the batch is captured
        assert record.status == "SUCCEEDED", record.cause
        s3 = runtime.client("s3")
        out = s3.get_object(Bucket=bucket, Key="batch-out/applications.csv.out")["Body"].read().decode().splitlines()
        assert len(out) == len(rows)
        for row, line in zip(rows, out):
            assert line.startswith(row + ",")
            score, decision = line[len(row) + 1:].split(",")[:2]
            assert 0 <= float(score) <= 1 and decision in ("approve", "decline")
        # (under the model line's group: each line's batch captures apart, as its endpoint captures are)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="batch-capture/sagestep-dev-credit-data/")["Contents"]]
        first = json.loads(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().decode().splitlines()[0])
        assert first["captureData"]["endpointInput"]["data"] == rows[0]
        assert first["eventMetadata"]["inferenceId"] == "applications.csv:0"
