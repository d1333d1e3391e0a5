"""Local real-time endpoints: model servers per variant, weighted routing, data capture, failure and update."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sagestep.local import LocalRuntime
from tests.functional.archives import toy_model

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory):
    with LocalRuntime(HERE, workspace=tmp_path_factory.mktemp("ws"), template_path=HERE / "runtime_template.yaml", time_scale=0.001) as rt:
        bucket = rt.bucket("ArtifactsBucket")
        s3, sagemaker = rt.client("s3"), rt.client("sagemaker")
        s3.put_object(Bucket=bucket, Key="code/inference.py", Body=(HERE / "jobs" / "inference.py").read_bytes())
        for name, scale in (("champion", 1000.0), ("challenger", 100.0)):
            s3.put_object(Bucket=bucket, Key=f"models/{name}.tar.gz", Body=toy_model(scale))
            sagemaker.create_model(
                ModelName=name,
                ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                PrimaryContainer={
                    "Image": "local",
                    "ModelDataUrl": f"s3://{bucket}/models/{name}.tar.gz",
                    "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{bucket}/code/"},
                },
            )
        sagemaker.create_model(
            ModelName="broken",
            ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
            PrimaryContainer={
                "Image": "local",
                "ModelDataUrl": f"s3://{bucket}/models/missing.tar.gz",
                "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{bucket}/code/"},
            },
        )
        yield rt


def variant(name: str, model: str, weight: float) -> dict:
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large", "InitialVariantWeight": weight}


def wait_status(sagemaker, endpoint: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
        if described["EndpointStatus"] not in ("Creating", "Updating") or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def test_two_variant_endpoint_routes_by_weight_and_target_and_captures(runtime):
    sagemaker, smr = runtime.client("sagemaker"), runtime.client("sagemaker-runtime")
    bucket = runtime.bucket("ArtifactsBucket")
    sagemaker.create_endpoint_config(
        EndpointConfigName="ab-config",
        ProductionVariants=[variant("Champion", "champion", 0.9), variant("Challenger", "challenger", 0.1)],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{bucket}/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    )
    sagemaker.create_endpoint(EndpointName="credit", EndpointConfigName="ab-config")
    assert sagemaker.describe_endpoint(EndpointName="credit")["EndpointStatus"] == "Creating"
    assert wait_status(sagemaker, "credit")["EndpointStatus"] == "InService"

    # TargetVariant reaches that variant's model
    response = smr.invoke_endpoint(EndpointName="credit", TargetVariant="Challenger", ContentType="text/csv", Body=b"250,1", InferenceId="req-1")
    assert response["Body"].read() == b"2.500" and response["InvokedProductionVariant"] == "Challenger"
    # weights split traffic (90/10)
    counts = {"Champion": 0, "Challenger": 0}
    for i in range(200):
        counts[smr.invoke_endpoint(EndpointName="credit", ContentType="text/csv", Body=b"250,1", InferenceId=f"w-{i}")["InvokedProductionVariant"]] += 1
    assert 150 <= counts["Champion"] <= 195
    # UpdateEndpointWeightsAndCapacities moves all traffic
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName="credit", DesiredWeightsAndCapacities=[{"VariantName": "Champion", "DesiredWeight": 0.0}, {"VariantName": "Challenger", "DesiredWeight": 1.0}]
    )
    assert {smr.invoke_endpoint(EndpointName="credit", ContentType="text/csv", Body=b"1,1")["InvokedProductionVariant"] for _ in range(20)} == {"Challenger"}
    # a bad request is the model's 4xx, as ModelError with the original message, and the server keeps serving
    with pytest.raises(smr.exceptions.ModelError) as error:
        smr.invoke_endpoint(EndpointName="credit", ContentType="text/csv", Body=b"abc,1")
    assert error.value.response["OriginalStatusCode"] == 400 and "not numeric" in error.value.response["OriginalMessage"]
    assert smr.invoke_endpoint(EndpointName="credit", ContentType="text/csv", Body=b"100,1")["Body"].read() == b"1.000"

    # capture files appear in the SageMaker layout once the servers flush
    runtime.endpoints.stop_all()
    runtime.flush_metrics()
    keys = [o["Key"] for o in runtime.client("s3").list_objects_v2(Bucket=bucket, Prefix="capture/credit/")["Contents"]]
    assert any(k.startswith("capture/credit/Challenger/") and k.endswith(".jsonl") for k in keys)
    records = []
    for key in keys:
        body = runtime.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        records += [json.loads(line) for line in body.splitlines()]
    first = next(r for r in records if r["eventMetadata"].get("inferenceId") == "req-1")
    assert first["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT", "data": "250,1", "encoding": "CSV"}
    assert first["captureData"]["endpointOutput"]["data"] == "2.500"


def test_endpoint_whose_model_cannot_load_is_failed_with_the_reason(runtime):
    sagemaker = runtime.client("sagemaker")
    sagemaker.create_endpoint_config(EndpointConfigName="broken-config", ProductionVariants=[variant("Only", "broken", 1.0)])
    sagemaker.create_endpoint(EndpointName="broken", EndpointConfigName="broken-config")
    described = wait_status(sagemaker, "broken")
    assert described["EndpointStatus"] == "Failed"
    assert "missing.tar.gz" in described["FailureReason"] or "download" in described["FailureReason"]


def test_failed_update_keeps_the_previous_config_in_service(runtime):
    sagemaker, smr = runtime.client("sagemaker"), runtime.client("sagemaker-runtime")
    sagemaker.create_endpoint_config(EndpointConfigName="blue", ProductionVariants=[variant("Only", "champion", 1.0)])
    sagemaker.create_endpoint(EndpointName="bluegreen", EndpointConfigName="blue")
    assert wait_status(sagemaker, "bluegreen")["EndpointStatus"] == "InService"
    sagemaker.create_endpoint_config(EndpointConfigName="green-broken", ProductionVariants=[variant("Only", "broken", 1.0)])
    sagemaker.update_endpoint(EndpointName="bluegreen", EndpointConfigName="green-broken")
    described = wait_status(sagemaker, "bluegreen")
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == "blue"
    assert described["FailureReason"]
    assert smr.invoke_endpoint(EndpointName="bluegreen", ContentType="text/csv", Body=b"500,1")["Body"].read() == b"0.500"


def test_invocations_are_published_as_sagemaker_cloudwatch_metrics(runtime):
    sagemaker, smr = runtime.client("sagemaker"), runtime.client("sagemaker-runtime")
    sagemaker.create_endpoint_config(EndpointConfigName="metrics", ProductionVariants=[variant("Only", "champion", 1.0)])
    sagemaker.create_endpoint(EndpointName="metered", EndpointConfigName="metrics")
    assert wait_status(sagemaker, "metered")["EndpointStatus"] == "InService"
    for _ in range(5):
        smr.invoke_endpoint(EndpointName="metered", ContentType="text/csv", Body=b"100,1")
    with pytest.raises(smr.exceptions.ModelError):
        smr.invoke_endpoint(EndpointName="metered", ContentType="text/csv", Body=b"x,1")
    runtime.flush_metrics()
    cloudwatch = runtime.client("cloudwatch")
    dims = [{"Name": "EndpointName", "Value": "metered"}, {"Name": "VariantName", "Value": "Only"}]
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    def total(metric):
        points = cloudwatch.get_metric_statistics(Namespace="AWS/SageMaker", MetricName=metric, Dimensions=dims,
                                                  StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(hours=1),
                                                  Period=3600, Statistics=["Sum", "SampleCount"])["Datapoints"]
        return sum(p["Sum"] for p in points)
    assert total("Invocations") == 6
    assert total("Invocation4XXErrors") == 1


def test_shadow_variant_gets_a_copy_of_production_traffic_and_only_its_capture(runtime):
    sagemaker, smr = runtime.client("sagemaker"), runtime.client("sagemaker-runtime")
    bucket = runtime.bucket("ArtifactsBucket")
    sagemaker.create_endpoint_config(
        EndpointConfigName="shadow-config",
        ProductionVariants=[variant("Champion", "champion", 1.0)],
        ShadowProductionVariants=[variant("Challenger", "challenger", 1.0)],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": f"s3://{bucket}/shadow-capture",
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]},
    )
    described = sagemaker.describe_endpoint_config(EndpointConfigName="shadow-config")
    assert described["ShadowProductionVariants"][0]["VariantName"] == "Challenger"
    sagemaker.create_endpoint(EndpointName="shadowed", EndpointConfigName="shadow-config")
    assert wait_status(sagemaker, "shadowed")["EndpointStatus"] == "InService"
    # WHEN requests arrive THEN the production variant answers and the shadow's answer is captured with the same id
    for i in range(5):
        response = smr.invoke_endpoint(EndpointName="shadowed", ContentType="text/csv", Body=b"500,1", InferenceId=f"s-{i}")
        assert response["InvokedProductionVariant"] == "Champion" and response["Body"].read() == b"0.500"
    runtime.endpoints.stop("shadowed")
    runtime.flush_metrics()
    s3 = runtime.client("s3")
    shadow_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="shadow-capture/shadowed/Challenger/")["Contents"]]
    records = [json.loads(line) for key in shadow_keys for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()]
    assert sorted(r["eventMetadata"]["inferenceId"] for r in records) == [f"s-{i}" for i in range(5)]
    assert {r["captureData"]["endpointOutput"]["data"] for r in records} == {"5.000"}
