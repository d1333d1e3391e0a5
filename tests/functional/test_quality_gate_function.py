"""The quality gate Lambda handler against moto's S3 and SageMaker Model Registry."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from moto import mock_aws

from sagestep.training.config import load_dataset_config
from sagestep.aws.envvars import MissingSetting
from sagestep.training.preprocess import validate_data
from sagestep.aws.s3io import S3ObjectError

REPO_ROOT = Path(__file__).resolve().parents[2]
BUCKET = "sagestep-artifacts"
PREFIX = "sagestep-dev-"
GROUP = "sagestep-dev-credit-data"  # the model line of the credit_data config
EVENT = {
    "EvaluationS3Uri": f"s3://{BUCKET}/runs/exec-1/evaluation/",
    "PreprocessS3Uri": f"s3://{BUCKET}/runs/exec-1/preprocess/",
    "TrainingJobName": "exec-1-train",
    "HyperParameters": {"algorithm": "lightgbm", "num_round": "1000", "learning_rate": "0.05"},
    "ModelDataUrl": f"s3://{BUCKET}/runs/exec-1/train/exec-1-train/output/model.tar.gz",
    "ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:TrainingStateMachine:exec-1",
    "DataS3Uri": "s3://sagestep-data/credit_data/",
    "DatasetConfigS3Uri": "s3://sagestep-data/configs/credit_data.yaml",
    "CodeS3Uri": f"s3://{BUCKET}/code/sagestep-code.tar.gz",
    "RunS3Uri": f"s3://{BUCKET}/runs/exec-1/",
}
SUMMARY = {"auc": 0.852, "ks": 0.55, "gini": 0.704, "n_test": 891,
           "disparate_impact[Age]": 0.89, "disparate_impact[Marital]": 0.90}


def load_handler() -> ModuleType:
    path = REPO_ROOT / "functions" / "quality_gate" / "app.py"
    spec = importlib.util.spec_from_file_location("quality_gate_app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AUDIT_BUCKET = "sagestep-dev-audit-123456789012"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """moto S3 and SageMaker; the credit-data line's group exists unless a test asks for a new line."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("MODEL_LINE_PREFIX", PREFIX)
    monkeypatch.setenv("AUDIT_BUCKET_NAME", AUDIT_BUCKET)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "sagestep-dev")
    with mock_aws():
        s3 = boto3.client("s3")
        sagemaker = boto3.client("sagemaker")
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket=AUDIT_BUCKET)
        yield {"s3": s3, "sagemaker": sagemaker}


@pytest.fixture
def line(aws: dict) -> dict:
    aws["sagemaker"].create_model_package_group(ModelPackageGroupName=GROUP)
    return aws


@pytest.fixture(scope="module")
def documents(credit_data) -> dict[str, dict]:
    config = load_dataset_config(REPO_ROOT / "ml" / "config" / "credit_data.yaml")
    return {
        "runs/exec-1/preprocess/report/validation_report.json": validate_data({"credit_data.csv": credit_data}, config),
        "runs/exec-1/preprocess/report/manifest.json": {
            "code": {"version": "0.1.0", "sha256": "c" * 64},
            "config": {"path": "credit_data.yaml", "sha256": "d" * 64},
            "inputs": [{"path": "credit_data.csv", "sha256": "a" * 64, "size_bytes": 312658, "rows": 4454}],
            "outputs": {"train": {"sha256": "1" * 64}, "validation": {"sha256": "2" * 64}, "test": {"sha256": "3" * 64}},
        },
        "runs/exec-1/preprocess/config/dataset_config.json": config.to_dict(),
        "runs/exec-1/evaluation/summary.json": SUMMARY,
    }


def put_documents(s3, documents: dict[str, dict], **overrides: dict) -> None:
    for key, body in {**documents, **overrides}.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())


def register(sagemaker, status: str, test_auc: str, dataset: str = "credit_data") -> str:
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
        CustomerMetadataProperties={"TestAuc": test_auc, "DatasetName": dataset},
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagestep:1",
                            "ModelDataUrl": f"s3://{BUCKET}/old/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]


def test_first_model_of_a_new_line_passes_without_champion_and_names_the_group_to_create(aws, documents):
    # GIVEN the evaluation documents in S3 and no package group for the credit-data line yet
    put_documents(aws["s3"], documents)
    # WHEN the handler runs
    result = load_handler().handler(EVENT, None)
    # THEN the candidate passes, there is no champion, and the lineage map is ready for registration
    assert result["Passed"] is True and result["Reasons"] == []
    assert result["ChampionModelPackageArn"] is None
    meta = result["CustomerMetadataProperties"]
    assert meta["TestAuc"] == "0.852000" and meta["QualityGate"] == "Passed"
    assert meta["ExecutionArn"] == EVENT["ExecutionArn"] and meta["TrainingJobName"] == "exec-1-train"
    assert meta["HyperParameters"] == "algorithm=lightgbm learning_rate=0.05 num_round=1000"
    assert meta["ModelLine"] == "credit-data" and meta["DatasetConfigS3Uri"] == EVENT["DatasetConfigS3Uri"]
    assert meta["ReportS3Uri"] == f"s3://{BUCKET}/runs/exec-1/report/report.html"
    assert (result["ModelPackageGroupName"], result["ModelLineExists"]) == (GROUP, False)
    json.dumps(result)
    # AND the decision is written to the run for its report
    record = json.loads(aws["s3"].get_object(Bucket=BUCKET, Key="runs/exec-1/gate/gate.json")["Body"].read())
    assert record["Gate"]["Passed"] is True and record["DatasetConfigS3Uri"] == EVENT["DatasetConfigS3Uri"]


def test_candidate_is_compared_with_the_latest_approved_package(line, documents):
    # GIVEN an older approved package, a newer approved champion with AUC 0.90 and a pending, better one
    put_documents(line["s3"], documents)
    register(line["sagemaker"], "Approved", "0.70")
    champion_arn = register(line["sagemaker"], "Approved", "0.90")
    register(line["sagemaker"], "PendingManualApproval", "0.99")
    # WHEN the handler runs
    result = load_handler().handler(EVENT, None)
    # THEN the newest approved package is the champion and the candidate (0.852 < 0.90 - 0.01) fails against it
    assert result["ChampionModelPackageArn"] == champion_arn
    assert result["Passed"] is False
    assert result["Reasons"] == [
        f"candidate AUC 0.8520 < champion AUC 0.9000 − margin 0.01 = 0.8900 (champion {champion_arn})"]
    assert result["CustomerMetadataProperties"]["QualityGate"] == "Failed"


def test_candidate_within_margin_of_the_champion_passes(line, documents):
    put_documents(line["s3"], documents)
    register(line["sagemaker"], "Approved", "0.86")
    result = load_handler().handler(EVENT, None)
    assert result["Passed"] is True and result["ChampionModelPackageArn"] is not None


def test_champion_of_another_dataset_is_not_compared(line, documents):
    # GIVEN the newest approved package was trained on another dataset
    put_documents(line["s3"], documents)
    same_dataset = register(line["sagemaker"], "Approved", "0.85")
    register(line["sagemaker"], "Approved", "0.95", dataset="german_credit")
    # WHEN the handler runs THEN the champion is the latest approved credit_data package
    result = load_handler().handler(EVENT, None)
    assert result["ChampionModelPackageArn"] == same_dataset and result["Passed"] is True


def test_unfair_candidate_fails_with_the_attribute_named(aws, documents):
    put_documents(aws["s3"], documents, **{"runs/exec-1/evaluation/summary.json": {
        **SUMMARY, "disparate_impact[Age]": 0.71}})
    result = load_handler().handler(EVENT, None)
    assert result["Passed"] is False
    assert result["Reasons"] == ["disparate impact of Age is 0.710, outside [0.8, 1.25]"]


def test_missing_evaluation_summary_names_the_object(aws, documents):
    # GIVEN the preprocess documents but no evaluation summary
    put_documents(aws["s3"], {k: v for k, v in documents.items() if not k.endswith("summary.json")})
    # WHEN the handler runs THEN the error names the missing URI
    with pytest.raises(S3ObjectError, match=rf"s3://{BUCKET}/runs/exec-1/evaluation/summary.json: object not found"):
        load_handler().handler(EVENT, None)


def test_missing_prefix_setting_fails_fast(aws, documents, monkeypatch):
    monkeypatch.delenv("MODEL_LINE_PREFIX")
    with pytest.raises(MissingSetting, match="MODEL_LINE_PREFIX"):
        load_handler().handler(EVENT, None)


def test_the_decision_is_audited_once_and_the_model_card_follows_aws_schema(line, documents):
    from sagestep.audit import records as audit
    from sagestep.validate import model_card

    # GIVEN the documents of a run
    put_documents(line["s3"], documents)
    # WHEN the gate decides, and is invoked again for the same execution (a Lambda retry)
    result = load_handler().handler(EVENT, None)
    load_handler().handler(EVENT, None)
    # THEN one audit record holds the decision, its reasons and the metrics, valid against the record schema
    keys = [o["Key"] for o in line["s3"].list_objects_v2(Bucket=AUDIT_BUCKET).get("Contents", [])]
    assert len(keys) == 1 and keys[0].startswith("audit/v1/gate_decision/")
    record = json.loads(line["s3"].get_object(Bucket=AUDIT_BUCKET, Key=keys[0])["Body"].read())
    audit.validate(record)
    assert record["decision"] == ("passed" if result["Passed"] else "refused") and record["reasons"] == result["Reasons"]
    assert record["evidence"]["metrics"]["TestAuc"] == result["CustomerMetadataProperties"]["TestAuc"]
    # AND the model card content is valid against AWS's model card schema, with the package link the pipeline adds
    card = model_card.check({**result["ModelCard"], "model_package_details": {
        "model_package_arn": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/1",
        "model_package_group_name": GROUP, "model_approval_status": "PendingManualApproval"}})
    assert card["training_details"]["training_job_details"]["training_arn"].endswith("training-job/exec-1-train")
    assert {g["name"] for g in card["evaluation_details"][0]["metric_groups"]} == {"performance", "fairness"}
    # AND a card that breaks the schema is refused with the path of the problem
    broken = {**result["ModelCard"], "intended_uses": {**result["ModelCard"]["intended_uses"], "risk_rating": "Severe"}}
    with pytest.raises(model_card.ModelCardError, match="intended_uses/risk_rating"):
        model_card.check(broken)
