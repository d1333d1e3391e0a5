"""The deployment's deadline path, in a runtime of its own (MaxWaitAttempts=1)."""

from __future__ import annotations

import io
import tarfile

from sagestep.local import LocalRuntime
from tests.conftest import BY_HAND, REPO_ROOT
from tests.functional.test_deployment_pipeline import register


def test_endpoint_not_in_service_before_the_deadline_times_out_and_is_removed(tmp_path, trained_models):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path, time_scale=0.001, parameter_overrides={**BY_HAND, "MaxWaitAttempts": "1"}) as runtime:
        arn = register(runtime, "v1", trained_models["v1"])
        # an endpoint that never becomes InService (no capacity): a slow machine alone never makes a deadline expire
        runtime.inject_fault("endpoint", "start", "Stuck")
        record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-timeout")
        assert record.status == "FAILED" and record.error == "DeploymentTimedOut"
        assert "Delete new endpoint" in record.states_entered()
        assert runtime.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_first_deployment_whose_endpoint_fails_is_removed_and_notified(tmp_path):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path, time_scale=0.01, parameter_overrides=BY_HAND) as runtime:
        arn = register(runtime, "broken", b"this is not a tarball")
        record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-failed")
        assert record.status == "FAILED" and record.error == "EndpointFailed"
        assert "Delete new endpoint" in record.states_entered()
        assert runtime.client("sagemaker").list_endpoints()["Endpoints"] == []
        assert any("deployment failed" in (n["Subject"] or "") for n in runtime.notifications())


def test_a_model_server_slow_to_start_does_not_expire_the_deployment_deadline(tmp_path, trained_models):
    # GIVEN a model whose server takes seconds to start (a busy machine) and a deadline of one 30 s wait at 1/1000
    # of real time (30 ms): only the virtual clock, which holds a Wait while real work is in flight, lets it pass
    with LocalRuntime(REPO_ROOT, workspace=tmp_path, time_scale=0.001, parameter_overrides={**BY_HAND, "MaxWaitAttempts": "1"}) as runtime:
        bucket = runtime.bucket("ArtifactsBucket")
        code = runtime.state_machines["TrainingStateMachine"].substitutions["CodeS3Uri"] + "sourcedir.tar.gz"
        s3 = runtime.client("s3")
        source = s3.get_object(Bucket=code.split("/")[2], Key=code.split("/", 3)[3])["Body"].read()
        slow = io.BytesIO()
        with tarfile.open(fileobj=io.BytesIO(source)) as original, tarfile.open(fileobj=slow, mode="w:gz") as out:
            for member in original.getmembers():
                content = original.extractfile(member).read() if member.isfile() else None
                if member.name == "inference.py":
                    member.name = "real_inference.py"
                _add(out, member.name, content) if content is not None else out.addfile(member)
            _add(out, "inference.py", b"import time\ntime.sleep(4)\nfrom real_inference import *  # noqa\n")
        s3.put_object(Bucket=bucket, Key="test-code/slow/sourcedir.tar.gz", Body=slow.getvalue())
        arn = register(runtime, "slow", trained_models["v1"], submit_directory=f"s3://{bucket}/test-code/slow/sourcedir.tar.gz")
        # WHEN it is deployed
        record = runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, name="deploy-slow-start")
        # THEN the deployment waited for the real work and succeeded
        assert record.status == "SUCCEEDED", record.cause
        assert runtime.client("sagemaker").describe_endpoint(EndpointName="sagestep-dev-credit-data")["EndpointStatus"] == "InService"


def _add(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    archive.addfile(info, io.BytesIO(content))
