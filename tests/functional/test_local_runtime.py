"""Scenario tests of the local runtime itself, on small ASL files and a small SAM template (tests/functional/)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sagestep.local import LocalRuntime

HERE = Path(__file__).parent
ASL = HERE / "asl"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory):
    workspace = tmp_path_factory.mktemp("workspace")
    with LocalRuntime(HERE, workspace=workspace, template_path=HERE / "runtime_template.yaml", time_scale=0.001) as rt:
        bucket = rt.bucket("ArtifactsBucket")
        s3 = rt.client("s3")
        for script in (HERE / "jobs").glob("*.py"):
            s3.put_object(Bucket=bucket, Key=f"test-code/{script.name}", Body=script.read_bytes())
        s3.put_object(Bucket=bucket, Key="test-data/rows.csv", Body=b"Income,Age\n129,30\n131,58\n")
        yield rt


def job_input(rt: LocalRuntime, script: str, **extra) -> dict:
    bucket = rt.bucket("ArtifactsBucket")
    return {
        "Script": script,
        "Index": 0,
        "MaxRuntime": 600,
        "CodeS3Uri": f"s3://{bucket}/test-code/",
        "DataS3Uri": f"s3://{bucket}/test-data/",
        "OutputS3Uri": f"s3://{bucket}/out/{script}/",
        **extra,
    }


def test_processing_job_runs_the_script_and_uploads_its_outputs(runtime):
    # GIVEN a processing job whose script copies its input channel to its output
    # WHEN the state machine runs
    record = runtime.run(str(ASL / "processing_job.asl.json"), job_input(runtime, "succeed.py"), name="copy-job")
    # THEN it succeeds, the job is Completed and the output object exists in S3
    assert record.status == "SUCCEEDED", record.cause
    assert record.output["Job"]["Status"] == "Completed"
    body = runtime.client("s3").get_object(Bucket=runtime.bucket("ArtifactsBucket"), Key="out/succeed.py/copied-rows.csv")["Body"].read()
    assert body.startswith(b"Income,Age")


def test_failing_script_fails_the_execution_with_its_stderr_in_the_cause(runtime):
    # GIVEN a processing job whose script exits 3 after printing a traceback
    record = runtime.run(str(ASL / "processing_job.asl.json"), job_input(runtime, "fail.py"), name="failing-job")
    # THEN the execution fails with States.TaskFailed and the script's error is in the cause
    assert record.status == "FAILED"
    assert record.error == "States.TaskFailed"
    cause = json.loads(record.cause)
    assert cause["ProcessingJobStatus"] == "Failed"
    assert "exit code 3" in cause["FailureReason"]
    assert "non-numeric value 'n/a'" in cause["FailureReason"]


def test_job_past_its_max_runtime_is_stopped(runtime):
    # GIVEN a job script that runs longer than StoppingCondition.MaxRuntimeInSeconds
    bucket = runtime.bucket("ArtifactsBucket")
    runtime.client("s3").put_object(Bucket=bucket, Key="slow-code/slow.py", Body=b"import time\ntime.sleep(30)\n")
    execution_input = job_input(runtime, "slow.py", MaxRuntime=1, CodeS3Uri=f"s3://{bucket}/slow-code/")
    record = runtime.run(str(ASL / "processing_job.asl.json"), execution_input, name="slow-job")
    # THEN the job ends Stopped and the execution fails
    assert record.status == "FAILED"
    assert json.loads(record.cause)["ProcessingJobStatus"] == "Stopped"


def test_throttled_create_is_retried_then_succeeds(runtime):
    # GIVEN CreateProcessingJob is throttled once
    runtime.inject_fault("sagemaker", "createProcessingJob", "ThrottlingException", times=1)
    record = runtime.run(str(ASL / "retry_then_catch.asl.json"), job_input(runtime, "succeed.py"), name="retry-job")
    # THEN the Retry fires (with the time scale, no real back-off) and the job succeeds on the second attempt
    assert record.status == "SUCCEEDED", record.cause
    failed = [e for e in record.history if e["type"] == "TaskFailed"]
    assert len(failed) == 1 and failed[0]["taskFailedEventDetails"]["error"] == "SageMaker.AmazonSageMakerException"


def test_failure_is_caught_notified_and_ends_in_the_named_fail_state(runtime):
    record = runtime.run(str(ASL / "retry_then_catch.asl.json"), job_input(runtime, "fail.py"), name="caught-job")
    assert record.status == "FAILED"
    assert "Notify failure" in record.states_entered() and "Job failed" in record.states_entered()
    messages = [n["Message"] for n in runtime.notifications()]
    assert any("non-numeric value" in m for m in messages)


def test_parameters_missing_role_arn_fail_naming_the_field(runtime):
    bucket = runtime.bucket("ArtifactsBucket")
    record = runtime.run(str(ASL / "training_missing_role.asl.json"), {"OutputS3Uri": f"s3://{bucket}/models/"})
    assert record.status == "FAILED"
    assert record.error == "SageMaker.AmazonSageMakerException"
    assert "RoleArn: required field is missing" in record.cause


def test_training_job_writes_model_tarball_and_metrics_from_regexes(runtime):
    bucket = runtime.bucket("ArtifactsBucket")
    execution_input = job_input(runtime, "train.py", Hyperparameters={"depth": "3"}, OutputS3Uri=f"s3://{bucket}/models/")
    record = runtime.run(str(ASL / "training_job.asl.json"), execution_input, name="train-ok")
    assert record.status == "SUCCEEDED", record.cause
    assert record.output["ModelDataUrl"] == f"s3://{bucket}/models/train-ok-train-0/output/model.tar.gz"
    assert record.output["Metrics"][0]["MetricName"] == "validation:auc"
    assert record.output["Metrics"][0]["Value"] == pytest.approx(0.72)


def test_training_failure_reason_comes_from_the_failure_file(runtime):
    bucket = runtime.bucket("ArtifactsBucket")
    execution_input = job_input(runtime, "train.py", Hyperparameters={"fail": "true"}, OutputS3Uri=f"s3://{bucket}/models/")
    record = runtime.run(str(ASL / "training_job.asl.json"), execution_input, name="train-fail")
    assert record.status == "FAILED"
    assert "hyperparameter fail=true asked for a failure" in json.loads(record.cause)["FailureReason"]


def test_jobs_run_inside_map_iterations_and_parallel_branches(runtime):
    execution_input = job_input(runtime, "succeed.py", Items=["a", "b", "c"])
    record = runtime.run(str(ASL / "map_and_parallel.asl.json"), execution_input, name="fan-out")
    assert record.status == "SUCCEEDED", record.cause
    assert record.output["Mapped"] == [{"Status": "Completed"}] * 3
    assert record.output["Branches"] == [{"Status": "Completed"}, {"Greeting": "hello-test"}]


def test_child_machine_runs_with_start_execution_sync_and_jsonata_summarises(runtime):
    record = runtime.run(str(ASL / "parent_child.asl.json"), {"Item": "loan-17", "Numbers": [1, 2, 3.5]}, name="parent")
    assert record.status == "SUCCEEDED", record.cause
    assert record.output == {"greeting": "hello-test", "shout": "LOAN-17", "total": 6.5, "status": "SUCCEEDED"}


def test_lambda_gets_template_environment_and_a_raising_handler_is_a_lambda_error(runtime):
    record = runtime.run(str(ASL / "lambda_tasks.asl.json"), {"Item": "loan-9"}, name="lambdas")
    assert record.status == "FAILED"
    echo = next(e for e in record.history if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "Echo")
    assert json.loads(echo["stateExitedEventDetails"]["output"])["Echo"] == {"Greeting": "hello-test", "Stage": "test"}
    assert record.error == "ScoringConfigError"
    assert "cannot score loan-9" in record.cause


def test_warm_lambda_environment_serves_later_executions_until_the_code_changes(runtime):
    def environment() -> str:
        record = runtime.run(str(ASL / "child.asl.json"), {"Item": "loan-3"})
        assert record.status == "SUCCEEDED", record.cause
        return record.output["LogStream"]

    # GIVEN the echo function, invoked by one execution (whose thread ends with it)
    first = environment()
    # WHEN two more executions invoke it THEN the same execution environment answers, as Lambda reuses a warm one
    assert environment() == environment() == first
    # WHEN its code changes THEN a new environment answers (as after a deployment)
    app = HERE / "functions" / "echo" / "app.py"
    os.utime(app)
    assert environment() != first


def test_wait_follows_the_time_scale_and_aws_sdk_enums_are_validated(runtime):
    # GIVEN a one-hour Wait (0.001 time scale → 3.6 s) and an aws-sdk call with an enum value that does not exist
    record = runtime.run(str(ASL / "wait_and_sdk.asl.json"), {"SortBy": "Size"}, name="wait-sdk")
    # THEN the wait ends in seconds and the call fails naming the field and the allowed values
    assert record.status == "FAILED"
    assert "SortBy: 'Size' is not one of Name, CreationTime" in record.cause


def test_execution_without_a_name_gets_a_uuid_and_history_is_saved(runtime):
    record = runtime.run(str(ASL / "parent_child.asl.json"), {"Item": "x", "Numbers": [1]})
    assert record.name != "None" and len(record.name) == 36
    saved = runtime.workspace.find_execution(record.execution_arn)
    assert saved["execution"]["status"] == "SUCCEEDED"


def test_failed_job_inside_a_parallel_branch_fails_the_execution_with_task_failed(runtime):
    # GIVEN Map items whose jobs succeed and a Parallel branch whose job script fails
    execution_input = job_input(runtime, "fail.py", Items=[])
    record = runtime.run(str(ASL / "map_and_parallel.asl.json"), execution_input, name="branch-fails")
    # THEN the branch's States.TaskFailed surfaces (moto alone crashes with States.Runtime here)
    assert record.status == "FAILED"
    assert record.error == "States.TaskFailed"
    assert "non-numeric value" in record.cause


def test_batch_transform_serves_the_script_mode_model_and_joins_input(runtime):
    # GIVEN a model artifact, a script-mode inference program and CSV rows in S3
    from tests.functional.archives import toy_model

    bucket = runtime.bucket("ArtifactsBucket")
    s3 = runtime.client("s3")
    s3.put_object(Bucket=bucket, Key="transform/model.tar.gz", Body=toy_model(1000))
    s3.put_object(Bucket=bucket, Key="transform/code/inference.py", Body=(HERE / "jobs" / "inference.py").read_bytes())
    s3.put_object(Bucket=bucket, Key="transform/in/rows.csv", Body=b"1290,30\n2500,41\n")
    execution_input = {
        "ModelDataUrl": f"s3://{bucket}/transform/model.tar.gz",
        "CodeS3Uri": f"s3://{bucket}/transform/code/",
        "InputS3Uri": f"s3://{bucket}/transform/in/",
        "OutputS3Uri": f"s3://{bucket}/transform/out/",
    }
    # WHEN CreateModel and createTransformJob.sync run
    record = runtime.run(str(ASL / "batch_transform.asl.json"), execution_input, name="batch-score")
    # THEN each input line is joined with its score
    assert record.status == "SUCCEEDED", record.cause
    out = s3.get_object(Bucket=bucket, Key="transform/out/rows.csv.out")["Body"].read().decode()
    assert out.splitlines() == ["1290,30,1.290", "2500,41,2.500"]


def test_jsonata_division_sees_every_states_reference(runtime):
    # moto's reference scan mistakes `a / b ... /` for a regex literal and drops $states.input between the slashes
    record = runtime.run(str(ASL / "jsonata_division.asl.json"), {"a": 3, "b": 4, "c": 5}, name="jsonata-division")
    assert record.status == "SUCCEEDED", record.cause
    assert record.output == {"ratio": 0.75, "half": 2.5}


def test_jsonata_reads_declared_values_as_step_functions_does(runtime):
    # GIVEN a string with quotes and a backslash, a whole number written 2.0, and items to partition
    text = 'Applicant said "no" \\ twice'
    record = runtime.run(str(ASL / "jsonata_values.asl.json"), {"Text": text, "Applicants": 2.0, "Items": [1, 2, 3, 4]},
                         name="jsonata-values")
    # THEN the variable reads back unchanged (moto spells values into the expression's text, where the quote ended
    # the string), the number is the integer JSON gives it, and the intrinsic function is there
    assert record.status == "SUCCEEDED", record.cause
    assert record.output == {"said": text, "applicants": 2, "pairs": [[1, 2], [3, 4]], "shout": text.upper()}
    assert isinstance(record.output["applicants"], int)
    # AND an expression that gives nothing fails the state as Step Functions does
    nothing = runtime.run(str(ASL / "jsonata_values.asl.json"), {"Case": "nothing"}, name="jsonata-nothing")
    assert nothing.error == "States.QueryEvaluationError"
    assert "returned nothing" in nothing.cause


def test_jsonata_clock_is_read_when_each_expression_is_evaluated(runtime):
    # GIVEN the same `$millis()` expression evaluated before and after a Wait (0.1 s of real time at this time scale, 0.001)
    record = runtime.run(str(ASL / "jsonata_clock.asl.json"), {}, name="jsonata-clock")
    # THEN the second reading is later: a parsed expression kept for reuse does not keep its first evaluation's time
    assert record.status == "SUCCEEDED", record.cause
    assert record.output["second"] - record.output["first"] >= 50


def test_stubbed_tasks_record_their_request_and_return_or_fail_without_calling_the_service(runtime):
    # GIVEN the processing job Task stubbed as failed (a States.* error, as a failed .sync job gives), SNS stubbed
    from sagestep.local.engine import TaskStub

    stubs = {"Process": TaskStub(error="States.TaskFailed", cause='{"ProcessingJobStatus": "Failed"}'),
             "Notify failure": TaskStub(output={"MessageId": "stubbed"})}
    runtime.stub_tasks(lambda state, state_input: stubs.get(state))
    try:
        record = runtime.run(str(ASL / "retry_then_catch.asl.json"), job_input(runtime, "succeed.py"), name="stubbed-job")
    finally:
        runtime.stub_tasks(None)
    # THEN no job ran, the request was still evaluated and recorded, and the failure took the Catch path
    assert runtime.runner is not None and not any(job.name.startswith("stubbed-job") for job in runtime.runner.jobs.values())
    scheduled = [json.loads(e["taskScheduledEventDetails"]["parameters"]) for e in record.history if e["type"] == "TaskScheduled"]
    assert scheduled[0]["ProcessingJobName"] == "stubbed-job-p0-0"
    assert record.status == "FAILED" and record.error == "States.TaskFailed"
    assert record.states_entered() == ["Process", "Notify failure", "Job failed"]
