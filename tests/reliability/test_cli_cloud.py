"""Bad inputs to the `sagestep` commands that talk to a local cloud (the shared one, with a live credit-data model
line): names, ASL files, packages, approvals, endpoints and request bodies. Each is refused on one line that names
the input and the fix, or ends in its designed state; the workspace answers `local history` and `models list` after."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO_ROOT, load_event
from tests.reliability.catalogue import CLEAR, DESIGNED, Case, changed, checksums, clear_message, describe, fill, ids, \
    judge, one_line_error, run_cli
from tests.reliability.conftest import LINE, SEED_EXECUTION

SMOKE = load_event("smoke_test_credit_data")
CSV_ROW = SMOKE["Rows"][0]
TRAINING = json.dumps(load_event("training_state_machine_credit_data"))
RUN = ["local", "run", "--workspace", "{ws}", "--template", "{tpl}"]
MODELS = ["--workspace", "{ws}", "--template", "{tpl}"]
INVOKE = ["local", "invoke", LINE, "--workspace", "{ws}", "--template", "{tpl}", "--body", "{dir}/body"]
REASON = "AUC and fairness reviewed"

CASES = [
    # -- local run against the cloud: machine, name, ASL file ---------------------------------------------------------
    Case("run-unknown-state-machine", [*RUN, "TrainingMachine", "--input", "{dir}/in.json"],
         ["TrainingMachine", "neither a state machine logical ID", "TrainingStateMachine"], {"in.json": TRAINING}),
    Case("run-name-with-slash", [*RUN, "TrainingStateMachine", "--input", "{dir}/in.json", "--name", "bad name/x?"],
         ["--name", "bad name/x?", "InvalidName"], {"in.json": TRAINING}),
    Case("run-name-too-long", [*RUN, "TrainingStateMachine", "--input", "{dir}/in.json", "--name", "n" * 81],
         ["--name", "InvalidName"], {"in.json": TRAINING}),
    Case("run-name-reused", [*RUN, "DeploymentStateMachine", "--input", "{dir}/in.json", "--name", SEED_EXECUTION],
         ["--name", SEED_EXECUTION, "ExecutionAlreadyExists", "drop --name"],
         {"in.json": json.dumps({"ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1"})}),
    Case("run-asl-not-json", [*RUN, "{dir}/m.asl.json", "--input", "{dir}/in.json"], ["m.asl.json", "not valid JSON", "line"],
         {"in.json": "{}", "m.asl.json": '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}'}),
    Case("run-asl-no-start-at", [*RUN, "{dir}/m.asl.json", "--input", "{dir}/in.json"], ["m.asl.json", "StartAt"],
         {"in.json": "{}", "m.asl.json": '{"States": {"A": {"Type": "Pass", "End": true}}}'}),
    Case("run-asl-start-at-unknown", [*RUN, "{dir}/m.asl.json", "--input", "{dir}/in.json"], ["m.asl.json", "StartAt", "B"],
         {"in.json": "{}", "m.asl.json": '{"StartAt": "B", "States": {"A": {"Type": "Pass", "End": true}}}'}),
    Case("run-asl-binary", [*RUN, "{dir}/m.asl.json", "--input", "{dir}/in.json"], ["m.asl.json", "UTF-8"],
         {"in.json": "{}", "m.asl.json": b"\xff\xfe\x00\x00"}),
    Case("run-asl-missing", [*RUN, "{dir}/none.asl.json", "--input", "{dir}/in.json"], ["none.asl.json", "not found"],
         {"in.json": "{}"}),
    Case("run-asl-next-missing", [*RUN, "{dir}/m.asl.json", "--input", "{dir}/in.json"], ["m.asl.json", "InvalidDefinition", "Nowhere"],
         {"in.json": "{}", "m.asl.json": '{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}'}),
    Case("run-other-parameter-overrides", [*RUN, "TrainingStateMachine", "--input", "{dir}/in.json",
                                           "--parameter-overrides", "Environment=prod"],
         ["--parameter-overrides", "Environment=prod", "drop the option"], {"in.json": TRAINING}),
    # -- execution inputs through the CLI: refused at the door, exit 1 -------------------------------------------------
    Case("run-training-input-array", [*RUN, "TrainingStateMachine", "--input", "{dir}/in.json"],
         ["InvalidExecutionInput", "must be a JSON object", "array"], {"in.json": "[1, 2]"}, code=1, outcome=DESIGNED),
    Case("run-training-hyperparameters-string", [*RUN, "TrainingStateMachine", "--input", "{dir}/in.json"],
         ["InvalidExecutionInput", "Hyperparameters", "object of string values"],
         {"in.json": json.dumps({**json.loads(TRAINING), "Hyperparameters": "num_round=600"})}, code=1, outcome=DESIGNED),
    Case("run-training-local-data-path", [*RUN, "TrainingStateMachine", "--input", "{dir}/in.json"],
         ["InvalidExecutionInput", "DataS3Uri", "s3://", "got data/credit_data"],
         {"in.json": json.dumps({**json.loads(TRAINING), "DataS3Uri": "data/credit_data/"})}, code=1, outcome=DESIGNED),
    Case("run-training-config-txt", [*RUN, "TrainingStateMachine", "--input", "{dir}/in.json"],
         ["InvalidExecutionInput", "DatasetConfigS3Uri", ".yaml"],
         {"in.json": json.dumps({**json.loads(TRAINING), "DatasetConfigS3Uri": "s3://b/configs/credit_data.txt"})},
         code=1, outcome=DESIGNED),
    # -- models: packages, approvals ----------------------------------------------------------------------------------
    Case("approve-unknown-package", ["models", "approve", "arn:aws:sagemaker:us-east-1:123456789012:model-package/x/9",
                                     "--by", "Ana", "--reason", REASON, *MODELS],
         ["model-package/x/9", "no such model package", "sagestep models list"]),
    Case("approve-blank-by", ["models", "approve", "{pending}", "--by", "  ", "--reason", REASON, *MODELS],
         ["--by", "person deciding"]),
    Case("approve-blank-reason", ["models", "approve", "{pending}", "--by", "Ana", "--reason", "", *MODELS],
         ["--reason", "must say why"]),
    Case("approve-reason-too-long", ["models", "approve", "{pending}", "--by", "Ana", "--reason", "x" * 5000, *MODELS],
         ["--reason", "5000 characters", "at most 256", "shorten"]),
    Case("approve-by-too-long", ["models", "approve", "{pending}", "--by", "A" * 300, "--reason", REASON, *MODELS],
         ["--by", "300 characters", "at most 256"]),
    Case("reject-serving-package", ["models", "reject", "{serving}", "--by", "Ana", "--reason", "bias found", *MODELS],
         ["{serving}", f"live on endpoint {LINE}", "approve an earlier package first"]),
    Case("list-unknown-group", ["models", "list", "--group", "sagestep-dev-credit", *MODELS],
         ["--group", "no model package group sagestep-dev-credit", LINE]),
    Case("list-unknown-line", ["models", "list", "--line", "credit_data", *MODELS],
         ["--line", "no model package group sagestep-dev-credit_data", LINE]),
    # -- endpoints: names and request bodies --------------------------------------------------------------------------
    Case("invoke-unknown-endpoint", ["local", "invoke", "sagestep-dev-nope", "--body", "{dir}/body", *MODELS],
         ["sagestep-dev-nope", "not found"], {"body": CSV_ROW}),
    Case("invoke-too-few-columns", [*INVOKE, "--content-type", "text/csv"], [LINE, "the model rejected the request"],
         {"body": "1,2,3"}),
    Case("invoke-text-in-numeric-column", [*INVOKE, "--content-type", "text/csv"], [LINE, "the model rejected the request"],
         {"body": "many," + CSV_ROW.split(",", 1)[1]}),
    Case("invoke-empty-body", [*INVOKE, "--content-type", "text/csv"], [LINE], {"body": ""}),
    Case("invoke-json-not-instances", [*INVOKE, "--content-type", "application/json"],
         [LINE, "the model rejected the request"], {"body": '{"rows": [1, 2]}'}),
    Case("invoke-json-broken", [*INVOKE, "--content-type", "application/json"], [LINE, "the model rejected the request"],
         {"body": '{"instances": [{"Age": 3'}),
    Case("invoke-unsupported-content-type", [*INVOKE, "--content-type", "application/x-parquet"],
         [LINE, "the model rejected the request"], {"body": "PAR1"}),
    Case("invoke-unknown-variant", [*INVOKE, "--content-type", "text/csv", "--target-variant", "Challenger"],
         ["Challenger"], {"body": CSV_ROW}),
    Case("invoke-binary-body", [*INVOKE, "--content-type", "text/csv"], [LINE, "the model rejected the request"],
         {"body": b"\x89PNG\r\n\x1a\n\xff\xfe"}),
    Case("traffic-unknown-endpoint", ["local", "traffic", "sagestep-dev-nope", "--rows", "{dir}/rows.csv", *MODELS],
         ["sagestep-dev-nope", "no such endpoint", "sagestep local endpoints"],
         {"rows.csv": ",".join(SMOKE["FeatureNames"]) + ",Status\n" + CSV_ROW + ",good\n"}),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input_to_the_cloud_is_refused_on_one_line_naming_it(case: Case, world, tmp_path, request):
    # GIVEN the shared local cloud and the files the case names
    from tests.reliability.catalogue import write_files

    write_files(tmp_path, case.files)
    values = {"dir": str(tmp_path), "ws": str(world.workspace), "tpl": str(REPO_ROOT / "template.yaml"),
              "pending": world.pending_arn, "serving": world.serving_arn}
    before = checksums(tmp_path)
    registry_before = world.runtime.client("sagemaker").describe_model_package(ModelPackageName=world.serving_arn)
    # WHEN the command runs against it
    result = run_cli(fill(case.argv, **values))
    # THEN it is refused (or fails at the door) with the designed exit code and one clear line; nothing changed
    expect = [e.format(**values) for e in case.expect]
    problems = clear_message(result.err, expect)
    if case.outcome == CLEAR:
        problems += one_line_error(result)
    if result.code != case.code:
        problems.append(f"exit {result.code}, expected {case.code}")
    registry_after = world.runtime.client("sagemaker").describe_model_package(ModelPackageName=world.serving_arn)
    if registry_after["ModelApprovalStatus"] != registry_before["ModelApprovalStatus"]:
        problems.append("the serving package's approval changed")
    if problems:
        problems.append(describe(result))
    judge(request, case.id, case.kind, case.outcome, problems, changed(before, checksums(tmp_path)), world.usable())
