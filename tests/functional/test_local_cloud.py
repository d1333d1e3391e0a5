"""`sagestep local up`: a long-lived local cloud that standard AWS clients and every sagestep command use, whose
state survives `kill -9`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest

from tests.conftest import REPO_ROOT, load_event

AWS = str(Path(sys.executable).parent / "aws")
CREDIT_CSV = REPO_ROOT / "data" / "credit_data" / "credit_data.csv"
CREDIT_CONFIG = REPO_ROOT / "ml" / "config" / "credit_data.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def cloud_up(workspace: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """`sagestep local up` in its own process; yields its URL, the process and its output file."""
    port = _free_port()
    log = workspace.parent / f"cloud-{port}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sagestep", "local", "up", "--workspace", str(workspace), "--port", str(port),
             "--time-scale", "0.01", *extra],
            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        while not _answers(url):
            assert process.poll() is None, f"local up exited {process.returncode}:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield url, process, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_sagestep/info", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def aws(url: str, *args: str) -> dict:
    """The AWS CLI (v1), as a user runs it against the local cloud; JSON output parsed."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)
    result = subprocess.run([AWS, "--endpoint-url", url, "--output", "json", *args], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, f"aws {' '.join(args)} failed: {result.stderr}"
    if args[0] == "s3":  # the high-level s3 commands print progress lines, not JSON
        return {"output": result.stdout}
    return json.loads(result.stdout) if result.stdout.strip() else {}


def client(url: str, service: str):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _stack(url: str) -> dict[str, str]:
    sfn = client(url, "stepfunctions")
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    buckets = [b["Name"] for b in client(url, "s3").list_buckets()["Buckets"]]
    return {"training": next(a for n, a in machines.items() if n.endswith("-training")),
            "deployment": next(a for n, a in machines.items() if n.endswith("-deployment")),
            "data": next(b for b in buckets if "-data-" in b)}


def _wait_execution(url: str, arn: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        described = aws(url, "stepfunctions", "describe-execution", "--execution-arn", arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(1)


def _training_input(data_bucket: str) -> dict:
    execution_input = load_event("training_state_machine_credit_data")
    execution_input["DataS3Uri"] = f"s3://{data_bucket}/datasets/credit_data/"
    execution_input["DatasetConfigS3Uri"] = f"s3://{data_bucket}/configs/credit_data.yaml"
    return execution_input


def _only_execution(url: str, machine_arn: str, timeout: float = 120) -> str:
    """The one execution of a machine that something other than this test started (a rule of the template)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = aws(url, "stepfunctions", "list-executions", "--state-machine-arn", machine_arn)["executions"]
        if listed or time.monotonic() > deadline:
            assert len(listed) == 1, listed
            return listed[0]["executionArn"]
        time.sleep(1)


def test_standard_clients_upload_approve_and_score_while_the_templates_rules_train_and_deploy(tmp_path):
    with cloud_up(tmp_path / "ws") as (url, _process, log):
        stack = _stack(url)
        # GIVEN a user's config and data uploaded with the AWS CLI
        aws(url, "s3", "cp", str(CREDIT_CONFIG), f"s3://{stack['data']}/configs/credit_data.yaml")
        aws(url, "s3", "cp", str(CREDIT_CSV), f"s3://{stack['data']}/datasets/credit_data/credit_data.csv")
        listed = aws(url, "s3api", "list-objects-v2", "--bucket", stack["data"])
        assert {o["Key"] for o in listed["Contents"]} >= {"datasets/credit_data/credit_data.csv", "configs/credit_data.yaml"}
        # WHEN the template's RetrainOnNewData rule starts training, followed with the AWS CLI
        training = _only_execution(url, stack["training"])
        described = _wait_execution(url, training)
        assert described["status"] == "SUCCEEDED", log.read_text()[-3000:]
        history = aws(url, "stepfunctions", "get-execution-history", "--execution-arn", training)
        assert any(e["type"] == "ExecutionSucceeded" for e in history["events"])
        # THEN the registry answers the AWS CLI, and an approval through it makes the DeployOnApproval rule deploy
        group = json.loads(described["output"])["Registered"]["ModelPackageArn"].split("/")[1]
        packages = aws(url, "sagemaker", "list-model-packages", "--model-package-group-name", group)
        arn = packages["ModelPackageSummaryList"][0]["ModelPackageArn"]
        assert aws(url, "sagemaker", "describe-model-package", "--model-package-name", arn)["ModelApprovalStatus"] == "PendingManualApproval"
        aws(url, "sagemaker", "update-model-package", "--model-package-arn", arn, "--model-approval-status", "Approved",
            "--approval-description", "reviewed by the test")
        deployment = _only_execution(url, stack["deployment"])
        assert _wait_execution(url, deployment)["status"] == "SUCCEEDED", log.read_text()[-3000:]
        endpoint = client(url, "sagemaker").list_endpoints()["Endpoints"][0]["EndpointName"]
        row = "5,36,46,75,0,0,0,1000,1400,owner,married,no,fixed"
        body = tmp_path / "row.csv"
        body.write_text(row + "\n")
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        out = tmp_path / "answer.json"
        scored = subprocess.run([AWS, "--endpoint-url", url, "sagemaker-runtime", "invoke-endpoint", "--endpoint-name",
                                 endpoint, "--content-type", "text/csv", "--body", f"fileb://{body}", str(out)],
                                capture_output=True, text=True, env=env, timeout=120)
        assert scored.returncode == 0, scored.stderr
        answer = json.loads(out.read_text())
        assert answer["predictions"][0]["decision"] in ("approve", "decline")
        # and the cloud said what happened, one line per change
        assert f"execution {training.rsplit(':', 1)[-1]}" in log.read_text() and "SUCCEEDED" in log.read_text()


def test_a_second_cloud_on_the_same_workspace_is_refused_clearly(tmp_path):
    with cloud_up(tmp_path / "ws") as (url, _process, _log):
        second = subprocess.run([sys.executable, "-m", "sagestep", "local", "up", "--workspace", str(tmp_path / "ws"),
                                 "--port", str(_free_port())], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert "already serves" in second.stderr and url in second.stderr and "Traceback" not in second.stderr


def test_a_command_while_the_cloud_is_up_uses_it(tmp_path):
    with cloud_up(tmp_path / "ws") as (url, process, log):
        (tmp_path / "in.json").write_text("{}")
        asl = tmp_path / "wait.asl.json"
        asl.write_text(json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 1, "End": True}}}))
        result = subprocess.run([sys.executable, "-m", "sagestep", "local", "run", str(asl), "--input",
                                 str(tmp_path / "in.json"), "--name", "from-a-command", "--workspace", str(tmp_path / "ws")],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        # the execution ran in the cloud (its live line), and the command started no cloud of its own
        deadline = time.monotonic() + 30
        while "execution from-a-command" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "execution from-a-command (local-wait) SUCCEEDED" in log.read_text()
        info = json.loads((tmp_path / "ws" / "cloud.json").read_text())
        assert info["pid"] == process.pid and info["url"] == url


# the test starts its trainings itself: the rule that trains on uploads stays off
BY_HAND_ARGS = ("--parameter-overrides", "RetrainOnNewDataState=DISABLED", "DeployOnApprovalState=DISABLED")


def test_kill_9_mid_training_keeps_acknowledged_objects_and_finished_executions(tmp_path):
    workspace = tmp_path / "ws"
    with cloud_up(workspace, *BY_HAND_ARGS) as (url, process, log):
        stack = _stack(url)
        s3 = client(url, "s3")
        # GIVEN acknowledged uploads and a finished (failed) execution
        s3.upload_file(str(CREDIT_CSV), stack["data"], "datasets/credit_data/credit_data.csv")
        s3.upload_file(str(CREDIT_CONFIG), stack["data"], "configs/credit_data.yaml")
        s3.put_object(Bucket=stack["data"], Key="notes/acknowledged.txt", Body=b"kept")
        sfn = client(url, "stepfunctions")
        broken = _training_input(stack["data"]) | {"DataS3Uri": f"s3://{stack['data']}/datasets/missing/"}
        failed = sfn.start_execution(stateMachineArn=stack["training"], name="finished-before-the-crash", input=json.dumps(broken))
        assert _wait_execution(url, failed["executionArn"])["status"] == "FAILED"
        # WHEN the cloud is killed while a training job runs
        running = sfn.start_execution(stateMachineArn=stack["training"], name="killed-mid-training",
                                      input=json.dumps(_training_input(stack["data"])))
        sagemaker = client(url, "sagemaker")
        deadline = time.monotonic() + 600
        while not sagemaker.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        process.kill()
        process.wait()
    # THEN a new cloud on the workspace has every acknowledged object and the finished execution, and the
    # interrupted execution ended ABORTED instead of vanishing
    with cloud_up(workspace, *BY_HAND_ARGS) as (url, _process, log):
        s3 = client(url, "s3")
        assert s3.get_object(Bucket=stack["data"], Key="notes/acknowledged.txt")["Body"].read() == b"kept"
        assert s3.get_object(Bucket=stack["data"], Key="datasets/credit_data/credit_data.csv")["Body"].read() == CREDIT_CSV.read_bytes()
        sfn = client(url, "stepfunctions")
        finished = sfn.describe_execution(executionArn=failed["executionArn"])
        assert finished["status"] == "FAILED"
        assert any(e["type"] == "ExecutionFailed" for e in sfn.get_execution_history(executionArn=failed["executionArn"])["events"])
        assert sfn.describe_execution(executionArn=running["executionArn"])["status"] == "ABORTED"
        with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
            sfn.start_execution(stateMachineArn=stack["training"], name="finished-before-the-crash", input="{}")
        # and the workspace is usable: new objects, new executions
        s3.put_object(Bucket=stack["data"], Key="notes/after.txt", Body=b"new")
        again = sfn.start_execution(stateMachineArn=stack["training"], name="after-the-crash", input=json.dumps(broken))
        assert _wait_execution(url, again["executionArn"])["status"] == "FAILED"
