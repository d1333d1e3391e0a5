"""The deployment's deadline path, in a runtime of its own (MaxWaitAttempts=1)."""

from __future__ import annotations

from sagestep.local import LocalRuntime
from tests.conftest import REPO_ROOT
from tests.functional.test_deployment_pipeline import register


def test_endpoint_not_in_service_before_the_deadline_times_out_and_is_removed(tmp_path, trained_models):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path, time_scale=0.001, parameter_overrides={"MaxWaitAttempts": "1"}) as runtime:
        arn = register(runtime, "v1", trained_models["v1"])
        record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-timeout")
        assert record.status == "FAILED" and record.error == "DeploymentTimedOut"
        assert "Delete new endpoint" in record.states_entered()
        assert runtime.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_first_deployment_whose_endpoint_fails_is_removed_and_notified(tmp_path):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path, time_scale=0.01) as runtime:
        arn = register(runtime, "broken", b"this is not a tarball")
        record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-failed")
        assert record.status == "FAILED" and record.error == "EndpointFailed"
        assert "Delete new endpoint" in record.states_entered()
        assert runtime.client("sagemaker").list_endpoints()["Endpoints"] == []
        assert any("deployment failed" in (n["Subject"] or "") for n in runtime.notifications())
