"""`sagestep local run` / `history` as a user runs them: exit codes, live lines and the failure cause."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BUCKET = "sagestep-test-artifacts-123456789012"


def sagestep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sagestep.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def seed_workspace(workspace: Path) -> None:
    """Objects in <workspace>/s3/<bucket>/ are local S3 objects, as a previous command would have left them."""
    code = workspace / "s3" / BUCKET / "test-code"
    code.mkdir(parents=True)
    (code / "train.py").write_text((HERE / "jobs" / "train.py").read_text())
    data = workspace / "s3" / BUCKET / "test-data"
    data.mkdir(parents=True)
    (data / "rows.csv").write_text("Income,Age\n129,30\n")


def test_failing_training_script_exits_non_zero_and_prints_its_error(tmp_path):
    # GIVEN a training job whose script writes a failure reason and exits 1
    seed_workspace(tmp_path / "ws")
    execution_input = {
        "CodeS3Uri": f"s3://{BUCKET}/test-code/",
        "DataS3Uri": f"s3://{BUCKET}/test-data/",
        "OutputS3Uri": f"s3://{BUCKET}/models/",
        "Hyperparameters": {"fail": "true"},
    }
    (tmp_path / "in.json").write_text(json.dumps(execution_input))
    # WHEN it runs through the CLI
    result = sagestep(
        "local", "run", str(HERE / "asl" / "training_job.asl.json"), "--input", str(tmp_path / "in.json"),
        "--template", str(HERE / "runtime_template.yaml"), "--workspace", str(tmp_path / "ws"), "--name", "cli-fail",
        "--output-json", str(tmp_path / "out.json"), cwd=tmp_path,
    )
    # THEN the exit code is non-zero, the last line is the status, and the script's error is in the cause
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1].startswith("FAILED arn:aws:states:us-east-1:123456789012:execution:")
    assert "▶ Train" in result.stdout
    assert "hyperparameter fail=true asked for a failure" in result.stderr
    assert json.loads((tmp_path / "out.json").read_text())["execution"]["status"] == "FAILED"
    # AND the history of the run can be read back from the workspace
    history = sagestep("local", "history", "cli-fail", "--workspace", str(tmp_path / "ws"), cwd=tmp_path)
    assert history.returncode == 0 and "TaskFailed" in history.stdout


def test_missing_required_parameter_fails_naming_the_field(tmp_path):
    (tmp_path / "in.json").write_text(json.dumps({"OutputS3Uri": f"s3://{BUCKET}/models/"}))
    result = sagestep(
        "local", "run", str(HERE / "asl" / "training_missing_role.asl.json"), "--input", str(tmp_path / "in.json"),
        "--template", str(HERE / "runtime_template.yaml"), "--workspace", str(tmp_path / "ws"), cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "RoleArn: required field is missing" in result.stderr


def test_bad_input_file_is_one_clear_line_not_a_traceback(tmp_path):
    (tmp_path / "in.json").write_text("{not json")
    result = sagestep("local", "run", "TrainingStateMachine", "--input", str(tmp_path / "in.json"), cwd=tmp_path)
    assert result.returncode == 2
    assert "in.json: not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_endpoints_and_invoke_serve_an_endpoint_left_by_an_earlier_command(tmp_path):
    from sagestep.local import LocalRuntime
    from tests.functional.archives import toy_model

    # GIVEN a workspace with an InService endpoint created by an earlier command
    with LocalRuntime(HERE, workspace=tmp_path / "ws", template_path=HERE / "runtime_template.yaml") as runtime:
        s3, sagemaker = runtime.client("s3"), runtime.client("sagemaker")
        s3.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=toy_model(100))
        s3.put_object(Bucket=BUCKET, Key="code/inference.py", Body=(HERE / "jobs" / "inference.py").read_bytes())
        sagemaker.create_model(ModelName="toy", ExecutionRoleArn="arn:aws:iam::123456789012:role/x", PrimaryContainer={
            "Image": "local", "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{BUCKET}/code/"}})
        sagemaker.create_endpoint_config(EndpointConfigName="toy", ProductionVariants=[
            {"VariantName": "Primary", "ModelName": "toy", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}])
        sagemaker.create_endpoint(EndpointName="toy", EndpointConfigName="toy")
        runtime.endpoints.wait_idle()
    (tmp_path / "rows.csv").write_text("250,1\n")
    common = ["--template", str(HERE / "runtime_template.yaml"), "--workspace", str(tmp_path / "ws")]
    # WHEN later commands list it and score a file with it
    listed = sagestep("local", "endpoints", *common, cwd=tmp_path)
    scored = sagestep("local", "invoke", "toy", "--body", str(tmp_path / "rows.csv"), *common, cwd=tmp_path)
    bad = sagestep("local", "invoke", "toy", "--body", str(HERE / "asl" / "child.asl.json"), *common, cwd=tmp_path)
    # THEN the endpoint is listed with its variant, scores, and a bad request is a clear one-line error
    assert "toy  InService" in listed.stdout and "Primary" in listed.stdout
    assert scored.returncode == 0 and scored.stdout.strip() == "2.500"
    assert bad.returncode == 2 and "the model rejected the request (400)" in bad.stderr
