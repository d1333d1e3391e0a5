"""Path tests of statemachines/ab_test.asl.json in the local runtime, on models trained on the real credit data.

One runtime and one champion (deployed by the DeploymentStateMachine) are shared; the tests run in file order and
each A/B test ends with the champion serving again, except the last (promotion). Real held-out rows flow through the
endpoint from a traffic thread while the A/B execution runs; their true labels arrive a second later.
"""

from __future__ import annotations

import io
import tarfile
import time

import pytest

from sagestep.training.config import load_dataset_config
from sagestep.local import LocalRuntime
from sagestep.local.traffic import Traffic, load_rows
from sagestep.training.preprocess import prepare_data, split_data
from sagestep.training.fit import parse_hyperparameters, train_model
from tests.conftest import REPO_ROOT, load_event
from tests.functional.archives import tar_dir
from tests.functional.test_deployment_pipeline import ENDPOINT, register, sample_payload

FLAKY_PROGRAM = '''"""Challenger serving code that refuses one request in four (a 400), for the error-rate guardrail."""
import zlib

from inference import model_fn, output_fn, predict_fn  # noqa: F401
from inference import input_fn as _input_fn
from sagestep.serving.inference import RequestError


def input_fn(body, content_type):
    if zlib.crc32(bytes(body)) % 4 == 0:
        raise RequestError("flaky challenger: request refused", 400)
    return _input_fn(body, content_type)
'''


@pytest.fixture(scope="module")
def ab_models(credit_data, tmp_path_factory):
    """A good model, a weak one (2 boosting rounds at a tiny learning rate: scores near the base rate), the rows."""
    config = load_dataset_config(REPO_ROOT / "ml" / "config" / "credit_data.yaml")
    splits = split_data(prepare_data(credit_data, config), config)
    artifacts = {}
    for name, params in (("good", {"num_round": "80", "learning_rate": "0.1"}),
                         ("weak", {"num_round": "2", "learning_rate": "0.02"})):
        model = train_model(splits.train, splits.validation, config,
                            parse_hyperparameters({"algorithm": "lightgbm", "seed": "1", **params}), log=lambda _: None).model
        directory = tmp_path_factory.mktemp(name)
        model.save(directory)
        artifacts[name] = tar_dir(directory)
    test_csv = tmp_path_factory.mktemp("rows") / "test.csv"
    splits.test.to_csv(test_csv, index=False)
    rows = load_rows(test_csv, dataset_config=REPO_ROOT / "ml" / "config" / "credit_data.yaml")
    return artifacts, rows


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("ab-ws"), time_scale=0.01) as rt:
        yield rt


@pytest.fixture(scope="module")
def champion(runtime, ab_models):
    artifacts, _ = ab_models
    arn = register(runtime, "champion", artifacts["good"])
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-champion")
    assert record.status == "SUCCEEDED", record.cause
    return arn


def ab_input(arn: str, **overrides) -> dict:
    event = load_event("ab_test_state_machine_split")
    return {**event, "ChallengerModelPackageArn": arn, **overrides}


def run_with_traffic(runtime, rows, name, execution_input, rate=150.0):
    traffic = Traffic(runtime, ENDPOINT, rows, rate=rate, labels_after=0.5, seed=len(name)).start()
    try:
        arn = runtime.start("ABTestStateMachine", execution_input, name=name)
        sfn = runtime.client("stepfunctions")
        deadline = time.monotonic() + 180
        # Poll the status only, once a second: the full history on every tick would take the CPU from the traffic.
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(1.0)
        record = runtime.wait(arn, timeout=5)
    finally:
        report = traffic.stop()
    return record, report


def live_config(runtime) -> str:
    runtime.endpoints.wait_idle()
    return runtime.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]


def package(runtime, arn) -> dict:
    return runtime.client("sagemaker").describe_model_package(ModelPackageName=arn)


def test_identical_models_keep_the_champion_at_n_max(runtime, ab_models, champion):
    # GIVEN the champion's own artifact registered again as the challenger
    artifacts, rows = ab_models
    before = live_config(runtime)
    same = register(runtime, "same", artifacts["good"])
    # WHEN the A/B test runs to its maximum sample
    record, _ = run_with_traffic(runtime, rows, "ab-identical", ab_input(same, Alpha=0.01, MaxLooks=8))  # a false promotion ≤ 0.5%
    # THEN no promotion: the champion config serves again, the challenger is rejected with the evidence
    assert record.status == "SUCCEEDED", record.cause
    assert record.output["Decision"]["Decision"] == "keep_champion", record.output["Decision"]
    evidence = runtime.read_json(record.output["Decision"]["EvidenceS3Uri"])
    assert evidence["Evidence"]["TestDecision"] == "champion_wins_or_equal"
    assert evidence["Evidence"]["Look"]["InformationFraction"] >= 1.0  # stopped because n_max was reached
    assert live_config(runtime) == before
    meta = package(runtime, same)
    assert meta["ModelApprovalStatus"] == "Rejected"
    assert meta["CustomerMetadataProperties"]["ABDecision"] == "keep_champion"


def test_error_rate_guardrail_aborts_and_restores_the_champion(runtime, ab_models, champion):
    artifacts, rows = ab_models
    before = live_config(runtime)
    bucket = runtime.bucket("ArtifactsBucket")
    code = runtime.state_machines["TrainingStateMachine"].substitutions["CodeS3Uri"] + "sourcedir.tar.gz"
    s3 = runtime.client("s3")
    source = s3.get_object(Bucket=code.split("/")[2], Key=code.split("/", 3)[3])["Body"].read()
    flaky = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(source)) as original, tarfile.open(fileobj=flaky, mode="w:gz") as out:
        for member in original.getmembers():
            out.addfile(member, original.extractfile(member) if member.isfile() else None)
        data = FLAKY_PROGRAM.encode()
        info = tarfile.TarInfo("flaky_inference.py")
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=bucket, Key="test-code/flaky/sourcedir.tar.gz", Body=flaky.getvalue())
    arn = register_program(runtime, "flaky", artifacts["good"], f"s3://{bucket}/test-code/flaky/sourcedir.tar.gz", "flaky_inference.py")
    record, report = run_with_traffic(runtime, rows, "ab-flaky", ab_input(arn))
    assert report.errors_by_variant.get("Challenger", 0) > 0
    assert record.status == "SUCCEEDED", record.cause
    assert record.output["Decision"]["Decision"] == "abort", record.output["Decision"]
    assert "error rate" in record.output["Decision"]["Reasons"][0]
    assert live_config(runtime) == before
    assert package(runtime, arn)["ModelApprovalStatus"] == "Rejected"


def test_failed_update_restores_the_champion(runtime, ab_models, champion):
    _, rows = ab_models
    before = live_config(runtime)
    broken = register(runtime, "broken-ab", b"this is not a tarball")
    record, _ = run_with_traffic(runtime, rows, "ab-broken", ab_input(broken))
    assert record.status == "FAILED" and record.error == "UpdateRolledBack", (record.error, record.cause)
    assert "Restore champion" in record.states_entered()
    assert live_config(runtime) == before
    assert any("A/B test failed" in (n["Subject"] or "") for n in runtime.notifications())


def test_clearly_better_challenger_is_promoted_with_evidence(runtime, ab_models, tmp_path):
    # GIVEN a weak champion serving, and the good model as the challenger
    artifacts, rows = ab_models
    weak = register(runtime, "weak", artifacts["weak"])
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": weak}, name="deploy-weak")
    assert record.status == "SUCCEEDED", record.cause
    good = register(runtime, "good", artifacts["good"])
    # WHEN the A/B test runs
    record, _ = run_with_traffic(runtime, rows, "ab-better", ab_input(good))
    # THEN the challenger is promoted: a single-variant config with it, approved, the evidence stored on both packages
    assert record.status == "SUCCEEDED", record.cause
    decision = record.output["Decision"]
    assert decision["Decision"] == "promote", decision
    assert "Shift traffic to challenger" in record.states_entered()
    config = runtime.client("sagemaker").describe_endpoint_config(EndpointConfigName=live_config(runtime))
    assert [v["VariantName"] for v in config["ProductionVariants"]] == ["Primary"]
    assert config["ProductionVariants"][0]["ModelName"] == record.output["Names"]["Model"]
    evidence = runtime.read_json(decision["EvidenceS3Uri"])
    assert evidence["Evidence"]["TestDecision"] == "challenger_wins"
    assert evidence["Evidence"]["Reported"]["Challenger"]["BrierScore"] < evidence["Evidence"]["Reported"]["Champion"]["BrierScore"]
    plot = decision["EvidenceS3Uri"].replace(".json", ".png").split("/", 3)
    assert runtime.client("s3").head_object(Bucket=plot[2], Key=plot[3])["ContentLength"] > 1000  # statistic vs boundary
    meta = package(runtime, good)
    assert meta["ModelApprovalStatus"] == "Approved"
    assert meta["CustomerMetadataProperties"]["ABEvidence"] == decision["EvidenceS3Uri"]
    assert package(runtime, weak)["CustomerMetadataProperties"]["ABDecision"] == "promote"


def register_program(runtime, name: str, artifact: bytes, submit_directory: str, program: str) -> str:
    """An Approved package whose container runs `program` from `submit_directory` (as training + approval would)."""
    bucket = runtime.bucket("ArtifactsBucket")
    s3 = runtime.client("s3")
    s3.put_object(Bucket=bucket, Key=f"test-models/{name}/model.tar.gz", Body=artifact)
    s3.put_object(Bucket=bucket, Key=f"test-models/{name}/sample_payload.tar.gz", Body=sample_payload())
    return runtime.client("sagemaker").create_model_package(
        ModelPackageGroupName=ENDPOINT,  # the credit-data line (its group exists: register() made it)
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{
                "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                "ModelDataUrl": f"s3://{bucket}/test-models/{name}/model.tar.gz",
                "Environment": {"SAGEMAKER_PROGRAM": program, "SAGEMAKER_SUBMIT_DIRECTORY": submit_directory},
            }],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        SamplePayloadUrl=f"s3://{bucket}/test-models/{name}/sample_payload.tar.gz",
        CustomerMetadataProperties={"DatasetName": "credit_data"},
    )["ModelPackageArn"]


def test_shadow_mode_pairs_requests_and_keeps_a_worse_challenger_out(runtime, ab_models):
    # GIVEN the good model serving (promoted above) and the weak model as a shadow challenger
    artifacts, rows = ab_models
    before = live_config(runtime)
    weak = register(runtime, "weak-shadow", artifacts["weak"])
    # WHEN the A/B test runs in shadow mode (every request scored by both, paired differences)
    record, report = run_with_traffic(runtime, rows, "ab-shadow", ab_input(weak, Mode="shadow"))
    # THEN all answers came from the champion, the paired test keeps it, and the challenger is rejected
    assert record.status == "SUCCEEDED", record.cause
    assert "Challenger" not in report.by_variant and report.by_variant.get("Champion", 0) > 0
    decision = record.output["Decision"]
    assert decision["Decision"] == "keep_champion", decision
    evidence = runtime.read_json(decision["EvidenceS3Uri"])
    assert evidence["Evidence"]["Mode"] == "shadow"
    assert package(runtime, weak)["ModelApprovalStatus"] == "Rejected"
    assert live_config(runtime) == before  # the config that served before the test serves again
