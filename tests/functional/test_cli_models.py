"""`sagestep models list|approve|reject` on a workspace, as separate commands (the registry persists between them)."""

from __future__ import annotations

import subprocess
import sys

from sagestep.local import LocalRuntime
from tests.conftest import BY_HAND, REPO_ROOT


def sagestep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sagestep.cli", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_approve_in_a_later_command_changes_the_status_and_records_who_and_why(tmp_path):
    # GIVEN a workspace whose registry holds a package pending approval (left by an earlier command)
    with LocalRuntime(REPO_ROOT, workspace=tmp_path, parameter_overrides=BY_HAND) as runtime:
        runtime.client("sagemaker").create_model_package_group(ModelPackageGroupName="sagestep-dev-credit-data")
        arn = runtime.client("sagemaker").create_model_package(
            ModelPackageGroupName="sagestep-dev-credit-data",
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": "local", "ModelDataUrl": "s3://sagestep-dev-artifacts-123456789012/m/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={"TestAuc": "0.846", "Algorithm": "lightgbm"},
        )["ModelPackageArn"]
    # WHEN a reviewer approves it with the CLI
    approved = sagestep("models", "approve", arn, "--by", "Ana Risk", "--reason", "AUC and fairness reviewed", "--workspace", str(tmp_path))
    # THEN the registry says Approved, by whom and why, in the next command too
    assert approved.returncode == 0, approved.stderr
    listed = sagestep("models", "list", "--workspace", str(tmp_path))
    assert "Approved" in listed.stdout and "Ana Risk" in listed.stdout and "AUC and fairness reviewed" in listed.stdout
    assert listed.stdout.startswith("credit-data  "), listed.stdout  # the model line leads each row
    rejected = sagestep("models", "reject", arn, "--by", "Ana Risk", "--reason", " ", "--workspace", str(tmp_path))
    assert rejected.returncode == 2 and "--reason must say why" in rejected.stderr
