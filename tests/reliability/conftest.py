"""The reliability catalogue: one local cloud shared by every case that needs one (a deployed credit-data model line),
and the summary line printed at the end of the run."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sagestep.local import LocalRuntime
from tests.conftest import REPO_ROOT, load_event
from tests.reliability.catalogue import BAD_INPUT, CLEAR, DESIGNED, FAULT, run_cli

LINE = "sagestep-dev-credit-data"  # the credit_data model line: its group and its endpoint
SEED_EXECUTION = "seed-deploy-v1"
OVERRIDES = {"DeployOnApprovalState": "DISABLED", "RetrainOnNewDataState": "DISABLED"}

_LEDGER: list[dict] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "reliability":
            _LEDGER.append(json.loads(value))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001 - pytest's hook
    if not _LEDGER:
        return
    count = lambda key, value: sum(1 for e in _LEDGER if e[key] == value)  # noqa: E731
    line = (f"{count('kind', BAD_INPUT)} bad inputs, {count('kind', FAULT)} faults: {count('outcome', CLEAR)} clear, "
            f"{count('outcome', DESIGNED)} designed state, {sum(e['inputs_changed'] > 0 for e in _LEDGER)} inputs changed, "
            f"{sum(1 for e in _LEDGER if e['unusable'])} unusable workspaces")
    unclear = [e["id"] for e in _LEDGER if e["outcome"] == "unclear"]
    terminalreporter.write_sep("=", "reliability catalogue")
    terminalreporter.write_line(line)
    if unclear:
        terminalreporter.write_line(f"unclear: {', '.join(unclear)}")


@dataclass
class World:
    """The shared local cloud and what it was seeded with."""

    runtime: LocalRuntime
    workspace: Path
    serving_arn: str  # Approved and live on the line's endpoint
    pending_arn: str  # PendingManualApproval
    bucket: str
    data_bucket: str

    def argv(self) -> list[str]:
        return ["--workspace", str(self.workspace), "--template", str(REPO_ROOT / "template.yaml")]

    def usable(self, registry: bool = True) -> str | None:
        """None when the workspace still answers its everyday commands (`local history`, and `models list` unless the
        case cannot have touched the registry); else what failed."""
        commands = [["local", "history", SEED_EXECUTION, "--workspace", str(self.workspace)]]
        for argv in commands + ([["models", "list", *self.argv()]] if registry else []):
            result = run_cli(argv)
            if result.code != 0:
                return f"sagestep {' '.join(argv[:2])}: exit {result.code}: {result.err[-400:]}"
        return None


def _model_artifact(credit_data, directory: Path) -> bytes:
    from sagestep.training.config import load_dataset_config
    from sagestep.training.fit import parse_hyperparameters, train_model
    from sagestep.training.preprocess import prepare_data, split_data
    from tests.functional.archives import tar_dir

    config = load_dataset_config(REPO_ROOT / "ml" / "config" / "credit_data.yaml")
    splits = split_data(prepare_data(credit_data, config), config)
    params = parse_hyperparameters({"algorithm": "lightgbm", "num_round": "40", "learning_rate": "0.1", "seed": "1"})
    train_model(splits.train, splits.validation, config, params, log=lambda _: None).model.save(directory)
    return tar_dir(directory)


def register(runtime: LocalRuntime, name: str, artifact: bytes, status: str, group: str = LINE,
             submit_directory: str | None = None) -> str:
    from tests.functional.archives import tar_gz

    bucket = runtime.bucket("ArtifactsBucket")
    s3, sagemaker = runtime.client("s3"), runtime.client("sagemaker")
    event = load_event("smoke_test_credit_data")
    sample = (",".join(event["FeatureNames"]) + "\n" + "\n".join(event["Rows"]) + "\n").encode()
    s3.put_object(Bucket=bucket, Key=f"reliability/{name}/model.tar.gz", Body=artifact)
    s3.put_object(Bucket=bucket, Key=f"reliability/{name}/sample_payload.tar.gz", Body=tar_gz({"sample.csv": sample}))
    code = submit_directory or runtime.state_machines["TrainingStateMachine"].substitutions["CodeS3Uri"] + "sourcedir.tar.gz"
    groups = sagemaker.list_model_package_groups(MaxResults=100)["ModelPackageGroupSummaryList"]
    if group not in {g["ModelPackageGroupName"] for g in groups}:
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    return sagemaker.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                            "ModelDataUrl": f"s3://{bucket}/reliability/{name}/model.tar.gz",
                            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": code}}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]},
        SamplePayloadUrl=f"s3://{bucket}/reliability/{name}/sample_payload.tar.gz",
        CustomerMetadataProperties={"DatasetName": "credit_data", "Algorithm": "lightgbm",
                                    "DatasetConfigS3Uri": f"s3://{runtime.bucket('DataBucket')}/configs/credit_data.yaml"},
    )["ModelPackageArn"]


@pytest.fixture(scope="package")  # a process holds one local cloud at a time: gone before other packages run
def world(tmp_path_factory: pytest.TempPathFactory, credit_data) -> Iterator[World]:
    workspace = tmp_path_factory.mktemp("reliability-ws")
    with LocalRuntime(REPO_ROOT, workspace=workspace, time_scale=0.01, parameter_overrides=OVERRIDES) as runtime:
        artifact = _model_artifact(credit_data, tmp_path_factory.mktemp("model"))
        serving = register(runtime, "v1", artifact, "Approved")
        record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": serving}, name=SEED_EXECUTION, timeout=300)
        assert record.status == "SUCCEEDED", record.cause
        pending = register(runtime, "v2", artifact, "PendingManualApproval")
        yield World(runtime, workspace, serving, pending, runtime.bucket("ArtifactsBucket"), runtime.bucket("DataBucket"))


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1):  # noqa: ANN001, ANN201
    """Poll until predicate() is truthy (its value) or the timeout passes (None): a generous bound, not a deadline
    real work is measured against."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None
