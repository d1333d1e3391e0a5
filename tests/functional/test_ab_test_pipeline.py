"""Path tests of statemachines/ab_test.asl.json in the local runtime, on models trained on the real credit data.

One runtime and one champion (deployed by the DeploymentStateMachine) are shared; the tests run in file order and
each A/B test ends with the champion serving again, except the last (promotion). Real held-out rows flow through the
endpoint from a traffic thread while the A/B execution runs; as in lending, a label (repaid / defaulted) arrives half a
second later and only for the applicants the serving variant approved.

Challengers that decide differently run the real model through a small serving wrapper (CHALLENGER_PROGRAM) set by
environment variables of their container: a stricter threshold or raised scores (declines more), or applicants
under 25 penalised (unfair).
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
from tests.conftest import BY_HAND, REPO_ROOT, load_event
from tests.functional.archives import tar_dir
from tests.functional.test_deployment_pipeline import ENDPOINT, register, sample_payload

CONFIG = REPO_ROOT / "ml" / "config" / "credit_data.yaml"
CHALLENGER_PROGRAM = '''"""Challenger serving code for the A/B path tests: the real model, its scores changed as the environment says."""
import math
import os

from inference import input_fn, model_fn, output_fn  # noqa: F401
from inference import predict_fn as _predict_fn
from sagestep.serving.inference import Predictions

POWER = float(os.environ.get("CHALLENGER_SCORE_POWER", "1"))  # score ** POWER; below 1 raises scores: more declines
THRESHOLD = os.environ.get("CHALLENGER_THRESHOLD")  # decline from this score on (default: the model's threshold)
YOUNG_PENALTY = float(os.environ.get("CHALLENGER_YOUNG_PENALTY", "0"))  # added to the score of applicants under 25


def _age(row, model):
    value = row.get("Age") if isinstance(row, dict) else row[model.features.index("Age")]
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def predict_fn(data, model):
    out = _predict_fn(data, model)
    scores = [s ** POWER for s in out.scores]
    if YOUNG_PENALTY:
        scores = [min(1.0, s + YOUNG_PENALTY) if _age(row, model) < 25 else s for s, row in zip(scores, data.rows)]
    threshold = float(THRESHOLD) if THRESHOLD else model.threshold
    decisions = ["decline" if s >= threshold else "approve" for s in scores]
    return Predictions(scores=scores, decisions=decisions, reason_codes=out.reason_codes, threshold=threshold)
'''


@pytest.fixture(scope="module")
def ab_models(credit_data, tmp_path_factory):
    """A good model, a weak one (2 boosting rounds at a tiny learning rate: scores near the base rate), the rows."""
    config = load_dataset_config(CONFIG)
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
    return artifacts, load_rows(test_csv, dataset_config=CONFIG)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    # At time scale 0.01 the default 60 endpoint checks last 18 s; starting two model servers on a busy 2-core machine
    # can take longer, so the deadline is 600 checks (3 minutes) here: a deadline, not a wait.
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("ab-ws"), time_scale=0.01,
                      parameter_overrides={**BY_HAND, "MaxWaitAttempts": "600"}) as rt:
        # The dataset config the template's DatasetConfigKey names: protected attributes and the fairness band.
        rt.put_file(CONFIG, f"s3://{rt.bucket('DataBucket')}/configs/credit_data.yaml")
        yield rt


@pytest.fixture(scope="module")
def champion(runtime, ab_models):
    artifacts, _ = ab_models
    arn = register(runtime, "champion", artifacts["good"])
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-champion")
    assert record.status == "SUCCEEDED", record.cause
    return arn


@pytest.fixture(scope="module")
def challenger_code(runtime):
    """The code bundle with CHALLENGER_PROGRAM added beside inference.py."""
    code = runtime.state_machines["TrainingStateMachine"].substitutions["CodeS3Uri"] + "sourcedir.tar.gz"
    s3 = runtime.client("s3")
    source = s3.get_object(Bucket=code.split("/")[2], Key=code.split("/", 3)[3])["Body"].read()
    bundle = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(source)) as original, tarfile.open(fileobj=bundle, mode="w:gz") as out:
        for member in original.getmembers():
            out.addfile(member, original.extractfile(member) if member.isfile() else None)
        data = CHALLENGER_PROGRAM.encode()
        info = tarfile.TarInfo("challenger_inference.py")
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    bucket = runtime.bucket("ArtifactsBucket")
    s3.put_object(Bucket=bucket, Key="test-code/challenger/sourcedir.tar.gz", Body=bundle.getvalue())
    return f"s3://{bucket}/test-code/challenger/sourcedir.tar.gz"


def register_challenger(runtime, name: str, artifact: bytes, code: str, **environment: str) -> str:
    """An Approved package serving `artifact` through CHALLENGER_PROGRAM with these environment settings."""
    bucket = runtime.bucket("ArtifactsBucket")
    s3 = runtime.client("s3")
    s3.put_object(Bucket=bucket, Key=f"test-models/{name}/model.tar.gz", Body=artifact)
    s3.put_object(Bucket=bucket, Key=f"test-models/{name}/sample_payload.tar.gz", Body=sample_payload())
    return runtime.client("sagemaker").create_model_package(
        ModelPackageGroupName=ENDPOINT,  # the credit-data line: its group and endpoint share the name
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{
                "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                "ModelDataUrl": f"s3://{bucket}/test-models/{name}/model.tar.gz",
                "Environment": {"SAGEMAKER_PROGRAM": "challenger_inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": code,
                                **environment},
            }],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        SamplePayloadUrl=f"s3://{bucket}/test-models/{name}/sample_payload.tar.gz",
        CustomerMetadataProperties={"DatasetName": "credit_data",  # lineage, as the training pipeline records it
                                    "DatasetConfigS3Uri": f"s3://{runtime.bucket('DataBucket')}/configs/credit_data.yaml"},
    )["ModelPackageArn"]


def ab_input(arn: str, **overrides) -> dict:
    event = load_event("ab_test_state_machine_split")
    return {**event, "ChallengerModelPackageArn": arn, **overrides}


def run_with_traffic(runtime, rows, name, execution_input, rate=150.0, burst=0):
    traffic = Traffic(runtime, ENDPOINT, rows, rate=rate, labels_after=0.5, seed=len(name), labels="approved").start()
    try:
        arn = runtime.start("ABTestStateMachine", execution_input, name=name)
        sfn = runtime.client("stepfunctions")
        deadline = time.monotonic() + 240
        burst_sent = False
        # Poll the status only, once a second: the full history on every tick would take the CPU from the traffic.
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            if burst and not burst_sent and of_role(traffic.report.by_variant, "Challenger") > 0:
                traffic.burst(burst)  # a broken client, once the A/B config serves
                burst_sent = True
            time.sleep(1.0)
        record = runtime.wait(arn, timeout=5)
    finally:
        report = traffic.stop()
    return record, report


def of_role(counts: dict, role: str) -> int:
    """Requests counted for the test's Champion or Challenger variant (named `<role>-<test id>`)."""
    return sum(n for name, n in counts.items() if name.split("-")[0] == role)


def live_config(runtime) -> str:
    runtime.endpoints.wait_idle()
    return runtime.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]


def package(runtime, arn) -> dict:
    return runtime.client("sagemaker").describe_model_package(ModelPackageName=arn)


def evidence_of(runtime, record) -> dict:
    return runtime.read_json(record.output["Decision"]["EvidenceS3Uri"])


def guardrail(evidence: dict, name: str) -> dict:
    return {g["Name"]: g for g in evidence["Evidence"]["Guardrails"]}[name]


def test_challenger_that_declines_more_but_is_no_better_on_the_same_labelled_requests_is_not_promoted(
    runtime, ab_models, champion, challenger_code
):
    # GIVEN the champion's model with a stricter threshold (decline from 0.2 instead of 0.5): the same scores, so no
    # better, but it approves about half the applicants instead of 83%, and only approved applicants get an outcome
    artifacts, rows = ab_models
    before = live_config(runtime)
    stricter = register_challenger(runtime, "stricter", artifacts["good"], challenger_code, CHALLENGER_THRESHOLD="0.2")
    # WHEN the A/B test runs with split traffic (the other model replays each variant's labelled requests). On this
    # data a stricter threshold also fails the fairness guardrail (Marital DI 0.6; tested on its own below): here the
    # guardrails wait (MinCount) so that the loss test alone decides
    record, _ = run_with_traffic(runtime, rows, "ab-stricter", ab_input(stricter, Guardrails={"MinCount": 1_000_000}))
    # THEN no promotion: on the same labelled requests the two models' losses are equal
    assert record.status == "SUCCEEDED", record.cause
    assert record.output["Decision"]["Decision"] == "keep_champion", record.output["Decision"]
    evidence = evidence_of(runtime, record)["Evidence"]
    assert evidence["TestDecision"] == "champion_wins_or_equal" and evidence["Look"]["Effect"] == 0.0
    assert evidence["Look"]["LabelledServedByChallenger"] > 0  # the challenger's labelled requests were paired too
    # AND yet on its own approved applicants the challenger's Brier score looks far better (the biased comparison
    # a split test on each arm's own labels would have made)
    reported = evidence["Reported"]
    assert reported["ChallengerOnOwnDecisions"]["BrierScore"] < reported["ChampionOnOwnDecisions"]["BrierScore"] - 0.02
    assert live_config(runtime) == before


def test_approval_rate_guardrail_aborts_and_restores_the_champion(runtime, ab_models, champion, challenger_code):
    # GIVEN a shadow challenger that would decline far more applicants (score^0.5) than a ±5-point band allows
    artifacts, rows = ab_models
    before = live_config(runtime)
    harsh = register_challenger(runtime, "harsh", artifacts["good"], challenger_code, CHALLENGER_SCORE_POWER="0.5")
    record, _ = run_with_traffic(runtime, rows, "ab-harsh", ab_input(
        harsh, Mode="shadow", TrafficShare=1.0, Guardrails={"ApprovalRateBand": [-0.05, 0.05], "MinCount": 30}))
    # THEN abort on the approval-rate guardrail; the champion's config serves again; the reason is on the package
    assert record.status == "SUCCEEDED", record.cause
    decision = record.output["Decision"]
    assert decision["Decision"] == "abort", decision
    assert guardrail(evidence_of(runtime, record), "ApprovalRate")["State"] == "breached"
    assert "approves" in decision["Reasons"][0]
    assert live_config(runtime) == before
    meta = package(runtime, harsh)
    assert meta["ModelApprovalStatus"] == "Rejected" and "approves" in meta["ApprovalDescription"]


def test_fairness_guardrail_on_shadow_decisions_aborts_and_restores_the_champion(runtime, ab_models, champion,
                                                                                challenger_code):
    # GIVEN a shadow challenger that adds 0.45 to the score of every applicant under 25: it declines most of them, so
    # the breach is clear with the 25-30 young applicants the test's own sample size brings, however fast they come
    artifacts, rows = ab_models
    before = live_config(runtime)
    unfair = register_challenger(runtime, "unfair", artifacts["good"], challenger_code, CHALLENGER_YOUNG_PENALTY="0.45")
    record, report = run_with_traffic(runtime, rows, "ab-unfair", ab_input(
        # applicants under 25 are about a tenth of the traffic: 15 of them let the guardrail decide
        unfair, Mode="shadow", TrafficShare=1.0, Guardrails={"ApprovalRateBand": [-0.5, 0.5], "MinCount": 15}))
    # THEN its decisions' disparate impact for Age is outside [0.8, 1.25]: abort, champion restored, reason recorded
    # shadow: every answer came from the champion
    assert of_role(report.by_variant, "Challenger") == 0 < of_role(report.by_variant, "Champion")
    assert record.status == "SUCCEEDED", record.cause
    decision = record.output["Decision"]
    assert decision["Decision"] == "abort", decision
    state = guardrail(evidence_of(runtime, record), "DisparateImpact:Age")
    assert state["State"] == "breached" and state["Interval"][1] < 0.8
    assert live_config(runtime) == before
    assert "disparate impact of Age" in package(runtime, unfair)["ApprovalDescription"]


def test_failed_update_restores_the_champion(runtime, ab_models, champion):
    _, rows = ab_models
    before = live_config(runtime)
    broken = register(runtime, "broken-ab", b"this is not a tarball")
    record, _ = run_with_traffic(runtime, rows, "ab-broken", ab_input(broken))
    assert record.status == "FAILED" and record.error == "UpdateRolledBack", (record.error, record.cause)
    assert "Restore champion" in record.states_entered()
    assert live_config(runtime) == before
    assert any("A/B test failed" in (n["Subject"] or "") for n in runtime.notifications())


def test_clearly_better_challenger_is_promoted_with_evidence_and_a_burst_of_client_errors_aborts_nothing(
    runtime, ab_models
):
    # GIVEN a weak champion serving, the good model as the challenger, and a client sending 150 malformed requests
    artifacts, rows = ab_models
    weak = register(runtime, "weak", artifacts["weak"])
    record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": weak}, name="deploy-weak")
    assert record.status == "SUCCEEDED", record.cause
    good = register(runtime, "good", artifacts["good"])
    # WHEN the A/B test runs (the weak champion approves nearly everyone: the good model's approval rate is lower by
    # more than the default ±5 points, so this test allows ±30)
    record, report = run_with_traffic(runtime, rows, "ab-better", ab_input(
        good, MaxLooks=6, Guardrails={"MinCount": 30, "ApprovalRateBand": [-0.3, 0.3]}), burst=150)
    # THEN the challenger is promoted: a single-variant config with it, approved, the evidence stored on both packages
    assert record.status == "SUCCEEDED", record.cause
    decision = record.output["Decision"]
    assert decision["Decision"] == "promote", decision
    assert "Shift traffic to challenger" in record.states_entered()
    config = runtime.client("sagemaker").describe_endpoint_config(EndpointConfigName=live_config(runtime))
    assert [v["VariantName"] for v in config["ProductionVariants"]] == ["Primary"]
    assert config["ProductionVariants"][0]["ModelName"] == record.output["Names"]["Model"]
    document = evidence_of(runtime, record)
    evidence = document["Evidence"]
    assert evidence["TestDecision"] == "challenger_wins"
    assert evidence["Reported"]["Challenger"]["BrierScore"] < evidence["Reported"]["Champion"]["BrierScore"]
    # AND every guardrail was checked first; the 4xx burst (the client's fault) counted as client errors only
    assert all(g["State"] == "within" for g in evidence["Guardrails"])
    assert of_role(report.client_errors_by_variant, "Challenger") > 0
    assert document["Operational"]["challenger"]["ClientErrors"] > 0
    # AND the latency guardrail read CloudWatch p99 percentiles, computed locally from the raw ModelLatency values
    latency = document["Operational"]["champion"]
    assert latency["LatencyStatistic"] == "p99" and latency["LatencyP99LowerMs"] <= latency["LatencyP99Ms"]
    plot = decision["EvidenceS3Uri"].replace(".json", ".png").split("/", 3)
    assert runtime.client("s3").head_object(Bucket=plot[2], Key=plot[3])["ContentLength"] > 1000
    meta = package(runtime, good)
    assert meta["ModelApprovalStatus"] == "Approved"
    assert meta["CustomerMetadataProperties"]["ABEvidence"] == decision["EvidenceS3Uri"]
    assert package(runtime, weak)["CustomerMetadataProperties"]["ABDecision"] == "promote"
