"""What passes locally passes in AWS (issue 18): error names per integration, AWS's cross-field rules at the call,
and the runtime gaps found by probing, each on a probe ASL file under tests/functional/asl/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sagestep.local import LocalRuntime

HERE = Path(__file__).parent
ASL = HERE / "asl"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory):
    workspace = tmp_path_factory.mktemp("workspace")
    with LocalRuntime(HERE, workspace=workspace, template_path=HERE / "runtime_template.yaml", time_scale=0.001) as rt:
        yield rt


# ------------------------------------------------------------------------------------------------ error names

@pytest.mark.parametrize(("kind", "error", "in_cause"), [
    ("aws-sdk:s3 missing key", "S3.NoSuchKeyException", "(Service: S3, Status Code: 404"),
    ("aws-sdk:sagemaker missing endpoint", "SageMaker.SageMakerException", "Could not find endpoint"),
    ("aws-sdk:sagemaker invalid parameters", "SageMaker.SageMakerException", "EndpointName: 'not a valid name!' does not match"),
    ("sagemaker missing endpoint", "SageMaker.AmazonSageMakerException", "Error Code: ValidationException"),
    ("sns missing topic", "SNS.NotFoundException", "Service: AmazonSNS"),
    ("lambda missing function", "Lambda.ResourceNotFoundException", "Function not found"),
    ("states missing machine", "StepFunctions.StateMachineDoesNotExistException", "Service: AWSStepFunctions"),
])
def test_each_integration_fails_with_the_error_name_step_functions_gives_it(runtime, kind, error, in_cause):
    # GIVEN a Task of one integration kind whose call the service rejects
    record = runtime.run(str(ASL / "service_errors.asl.json"), {"Kind": kind, "Bucket": runtime.bucket("ArtifactsBucket")})
    # THEN the execution fails with AWS's name for that integration (moto: sagemaker.sagemakerException, ...)
    assert record.status == "FAILED"
    assert record.error == error, record.cause
    assert in_cause in record.cause


def test_lambda_function_error_is_its_exception_class_and_untyped_errors_are_lambda_unknown(runtime):
    record = runtime.run(str(ASL / "lambda_tasks.asl.json"), {"Item": "loan-9"})
    assert record.error == "ScoringConfigError"
    timed_out = runtime.run(str(ASL / "lambda_limits.asl.json"), {"Case": "timeout"})
    assert timed_out.error == "Lambda.Unknown"


# ------------------------------------------------------------------------------------------------ rules at the call

def test_serverless_config_with_data_capture_is_rejected_at_the_call(runtime):
    record = runtime.run(str(ASL / "service_errors.asl.json"), {"Kind": "sagemaker serverless with capture"})
    assert record.error == "SageMaker.AmazonSageMakerException"
    assert "[serverless-without-data-capture]" in record.cause


def test_update_of_an_endpoint_still_creating_fails_as_in_sagemaker(runtime):
    # rule update-endpoint-in-progress
    # GIVEN an endpoint that stays Creating (injected: no capacity)
    runtime.inject_fault("endpoint", "start", "Stuck")
    # WHEN the machine updates it right after creating it
    record = runtime.run(str(ASL / "update_in_progress.asl.json"), {"Name": "in-progress"})
    # THEN UpdateEndpoint fails with SageMaker's ValidationException under the optimized integration's generic name
    assert record.error == "SageMaker.AmazonSageMakerException"
    assert "Cannot update in-progress endpoint" in record.cause


def test_account_rules_reject_what_moto_accepts(runtime):
    # rules existing-name, serverless-without-network-isolation, no-update-to-serverless
    sm = runtime.client("sagemaker")
    container = {"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1", "ModelDataUrl": "s3://b/model.tar.gz"}
    sm.create_model(ModelName="isolated", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm", PrimaryContainer=container,
                    EnableNetworkIsolation=True)
    # a name that exists
    with pytest.raises(sm.exceptions.ClientError, match="Cannot create already existing model"):
        sm.create_model(ModelName="isolated", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm", PrimaryContainer=container)
    # a network-isolated model behind a serverless variant
    with pytest.raises(sm.exceptions.ClientError, match="serverless-without-network-isolation"):
        sm.create_endpoint_config(EndpointConfigName="sls", ProductionVariants=[
            {"VariantName": "Primary", "ModelName": "isolated", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}])
    # an endpoint on instances (Failed: its model cannot be downloaded) updated to a serverless config
    sm.create_model(ModelName="open", ExecutionRoleArn="arn:aws:iam::123456789012:role/sm", PrimaryContainer=container)
    sm.create_endpoint_config(EndpointConfigName="on-instances", ProductionVariants=[
        {"VariantName": "Primary", "ModelName": "open", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint_config(EndpointConfigName="serverless", ProductionVariants=[
        {"VariantName": "Primary", "ModelName": "open", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}])
    sm.create_endpoint(EndpointName="instances", EndpointConfigName="on-instances")
    runtime.endpoints.wait_idle()  # the model server start fails at once: the endpoint is Failed
    assert sm.describe_endpoint(EndpointName="instances")["EndpointStatus"] == "Failed"
    with pytest.raises(sm.exceptions.ClientError, match="no-update-to-serverless"):
        sm.update_endpoint(EndpointName="instances", EndpointConfigName="serverless")


# ------------------------------------------------------------------------------------------------ runtime gaps (probes)

def test_item_batcher_groups_items_into_batches_with_the_batch_input(runtime):
    record = runtime.run(str(ASL / "item_batcher.asl.json"), {"Applications": ["a", "b", "c", "d", "e"]})
    assert record.status == "SUCCEEDED", record.cause
    assert record.output == [{"Model": "v1", "Size": 2, "Items": ["a", "b"]}, {"Model": "v1", "Size": 2, "Items": ["c", "d"]},
                             {"Model": "v1", "Size": 1, "Items": ["e"]}]


def test_result_writer_parameters_come_from_the_map_input_and_results_are_written(runtime):
    bucket = runtime.bucket("ArtifactsBucket")
    record = runtime.run(str(ASL / "result_writer.asl.json"),
                         {"Applications": [1, 2, 3], "ResultsBucket": bucket, "ResultsPrefix": "map-results"})
    assert record.status == "SUCCEEDED", record.cause
    manifest_key = record.output["ResultWriterDetails"]["Key"]
    assert manifest_key.startswith("map-results/")
    s3 = runtime.client("s3")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    results_key = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
    rows = json.loads(s3.get_object(Bucket=bucket, Key=results_key)["Body"].read())
    assert sorted(json.loads(r["Output"])["Twice"] for r in rows) == [2, 4, 6]


def test_s3_get_object_gives_the_body_as_text(runtime):
    # GIVEN an object stored with a checksum (boto3 adds CRC32 by default), as the training marker is
    bucket = runtime.bucket("ArtifactsBucket")
    runtime.client("s3").put_object(Bucket=bucket, Key="probe/marker.json", Body=b'{"ExecutionArn": "arn:x"}',
                                    ChecksumAlgorithm="CRC32")
    # WHEN an aws-sdk:s3:getObject task reads it
    record = runtime.run(str(ASL / "s3_get_object.asl.json"), {"Bucket": bucket, "Key": "probe/marker.json"})
    # THEN the state gets the Body as text, as Step Functions gives it
    assert record.status == "SUCCEEDED", record.cause
    assert record.output == {"Body": '{"ExecutionArn": "arn:x"}', "Marker": {"ExecutionArn": "arn:x"}}


def test_credentials_role_of_another_account_calls_that_account(runtime):
    record = runtime.run(str(ASL / "credentials.asl.json"), {"OtherAccountRoleArn": "arn:aws:iam::111111111111:role/reader"})
    assert record.status == "SUCCEEDED", record.cause
    assert runtime.bucket("ArtifactsBucket") in record.output["Mine"]["Names"]
    assert record.output["Other"]["Names"] == []


def test_missed_heartbeat_is_states_heartbeat_timeout(runtime):
    topic = runtime.client("sns").list_topics()["Topics"][0]["TopicArn"]
    record = runtime.run(str(ASL / "heartbeat.asl.json"), {"TopicArn": topic})
    assert record.status == "SUCCEEDED", record.cause
    assert "No heartbeat" in record.states_entered()
    assert record.output["Error"]["Error"] == "States.HeartbeatTimeout"


def test_lambda_past_its_timeout_is_stopped(runtime):
    # rule lambda-payload-and-limits
    record = runtime.run(str(ASL / "lambda_limits.asl.json"), {"Case": "timeout"})
    assert record.error == "Lambda.Unknown"
    assert "Task timed out after" in record.cause


def test_lambda_over_its_memory_size_is_killed_and_within_it_runs(runtime):
    over = runtime.run(str(ASL / "lambda_limits.asl.json"), {"Case": "memory"})
    assert over.error == "Lambda.Unknown"
    assert "of 128 MB" in over.cause
    within = runtime.run(str(ASL / "lambda_limits.asl.json"), {"Case": "fits"})
    assert within.status == "SUCCEEDED", within.cause
    assert within.output["MemoryLimitInMB"] == 128


def test_lambda_invocations_run_at_the_same_time(runtime, tmp_path):
    # GIVEN two invocations that each wait for the other (a global lock would time one of them out)
    record = runtime.run(str(ASL / "lambda_limits.asl.json"), {"Case": "meet", "Directory": str(tmp_path / "meet")})
    # THEN both finish, in two execution environments
    assert record.status == "SUCCEEDED", record.cause
    assert {r["Met"] for r in record.output} == {"a", "b"}
    assert record.output[0]["Pid"] != record.output[1]["Pid"]


def test_result_over_256_kib_is_data_limit_exceeded_and_not_caught_by_states_all(runtime):
    # rule state-payload-256kb
    rows = ["x" * 1000] * 200  # 200 KB of input: within the limit; the echo adds the function's own fields
    record = runtime.run(str(ASL / "data_limit.asl.json"), {"Rows": rows + rows[:70]})
    assert record.status == "FAILED"
    assert record.error == "States.DataLimitExceeded"
    assert "Caught" not in record.states_entered()


def test_inline_map_runs_at_most_40_iterations_at_once(runtime):
    # rule inline-map-concurrency
    record = runtime.run(str(ASL / "inline_map_concurrency.asl.json"), {"Items": list(range(60))})
    assert record.status == "SUCCEEDED", record.cause
    running = peak = 0
    for event in record.history:
        if event["type"] == "MapIterationStarted":
            running += 1
            peak = max(peak, running)
        elif event["type"] in ("MapIterationSucceeded", "MapIterationFailed"):
            running -= 1
    assert peak == 40


# ------------------------------------------------------------------------------------------------ network isolation

def test_isolated_job_that_reaches_for_the_internet_fails(runtime):
    # GIVEN a processing job with NetworkConfig.EnableNetworkIsolation whose script connects to pypi.org
    bucket = runtime.bucket("ArtifactsBucket")
    s3 = runtime.client("s3")
    s3.put_object(Bucket=bucket, Key="isolation-code/reach_internet.py", Body=(HERE / "jobs" / "reach_internet.py").read_bytes())
    s3.put_object(Bucket=bucket, Key="isolation-data/rows.csv", Body=b"a\n1\n")
    execution_input = {"Script": "reach_internet.py", "Index": 0, "MaxRuntime": 600, "CodeS3Uri": f"s3://{bucket}/isolation-code/",
                       "DataS3Uri": f"s3://{bucket}/isolation-data/", "OutputS3Uri": f"s3://{bucket}/isolation-out/"}
    record = runtime.run(str(ASL / "isolated_job.asl.json"), execution_input)
    # THEN the job fails as it would in SageMaker: no name resolves, nothing is reachable
    assert record.status == "FAILED"
    reason = json.loads(record.cause)["FailureReason"]
    assert "exit code 4" in reason and "no network" in reason


def test_jobs_run_with_the_job_image_libraries_and_servers_with_the_serving_image_libraries():
    from sagestep.local import interpreters
    from tests.conftest import REPO_ROOT

    def pins(name):
        lines = (REPO_ROOT / "tools" / "images" / name).read_text().splitlines()
        return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))

    import subprocess

    probe = "import sys, pandas, numpy; print(f'{sys.version_info[0]}.{sys.version_info[1]} {pandas.__version__} {numpy.__version__}')"
    job = subprocess.run([interpreters.job_python(), "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    serve = subprocess.run([interpreters.serve_python(), "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    job_pins, serve_pins = pins("sagemaker-distribution-3.2.0-cpu.txt"), pins("sagemaker-xgboost-3.0-5.txt")
    assert job[1:] == [job_pins["pandas"], job_pins["numpy"]] and job[0] == "3.12"
    assert serve[1:] == [serve_pins["pandas"], serve_pins["numpy"]] and serve[0] == "3.10"


def test_executions_starting_together_parse_their_definitions_independently():
    # moto's ASL preprocessor kept its query-language scopes in a class attribute: executions started at the same time
    # (a rule and a caller) crashed each other with "Unsupported declaration in QueryLanguage=JSONPath block"
    import re
    import threading

    from sagestep.local import engine
    from tests.conftest import REPO_ROOT

    engine.install()
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    text = (REPO_ROOT / "statemachines" / "deployment.asl.json").read_text()  # JSONPath states and a JSONata one
    definition = re.sub(r"\$\{[A-Za-z]+\}", "x", text).replace("arn:x:", "arn:aws:")
    errors: list[str] = []

    def parse_many() -> None:
        for _ in range(3):
            try:
                AmazonStateLanguageParser.parse(definition)
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(repr(exc)[:120])

    threads = [threading.Thread(target=parse_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
