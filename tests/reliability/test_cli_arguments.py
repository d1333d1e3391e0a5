"""Bad inputs to the `sagestep` commands that need no local cloud: arguments, input files, data, configs. Each is
refused on one line naming the file or option and the fix, exit 2, before anything runs; no file it was given
changes."""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT
from tests.reliability.catalogue import Case, changed, checksums, clear_message, describe, fill, ids, judge, \
    one_line_error, run_cli, write_files

CREDIT = (REPO_ROOT / "data" / "credit_data" / "credit_data.csv").read_text()
HEADER = CREDIT.splitlines()[0]
ROWS = "\n".join(CREDIT.splitlines()[:60]) + "\n"
CONFIG = (REPO_ROOT / "ml" / "config" / "credit_data.yaml").read_text()
GOOD_INPUT = '{"DataS3Uri": "s3://b/d/", "DatasetConfigS3Uri": "s3://b/c.yaml", "Algorithm": "lightgbm"}'
RUN = ["local", "run", "TrainingStateMachine", "--template", str(REPO_ROOT / "template.yaml")]
MERGE = ["merge-ground-truth", "--capture", "{dir}/capture", "--ground-truth", "{dir}/gt", "--output", "{dir}/out"]

CASES = [
    # -- local run: its arguments and input file ------------------------------------------------------------------
    Case("run-input-missing", [*RUN, "--input", "{dir}/nope.json", "--workspace", "{dir}/ws"], ["nope.json", "not found"]),
    Case("run-input-not-json", [*RUN, "--input", "{dir}/in.json", "--workspace", "{dir}/ws"],
         ["in.json", "not valid JSON", "line 1"], {"in.json": '{"DataS3Uri": '}),
    Case("run-input-binary", [*RUN, "--input", "{dir}/in.json", "--workspace", "{dir}/ws"],
         ["in.json", "UTF-8"], {"in.json": b"\xff\xfe\x00{"}),
    Case("run-input-empty", [*RUN, "--input", "{dir}/in.json", "--workspace", "{dir}/ws"],
         ["in.json", "not valid JSON"], {"in.json": ""}),
    Case("run-input-is-directory", [*RUN, "--input", "{dir}", "--workspace", "{dir}/ws"], ["is a directory", "--input"]),
    Case("run-time-scale-negative", [*RUN, "--input", "{dir}/in.json", "--time-scale", "-1"], ["--time-scale", "positive"],
         {"in.json": GOOD_INPUT}),
    Case("run-time-scale-zero", [*RUN, "--input", "{dir}/in.json", "--time-scale", "0"], ["--time-scale", "positive"],
         {"in.json": GOOD_INPUT}),
    Case("run-time-scale-nan", [*RUN, "--input", "{dir}/in.json", "--time-scale", "nan"], ["--time-scale", "positive"],
         {"in.json": GOOD_INPUT}),
    Case("run-time-scale-inf", [*RUN, "--input", "{dir}/in.json", "--time-scale", "inf"], ["--time-scale", "positive"],
         {"in.json": GOOD_INPUT}),
    Case("run-time-scale-word", [*RUN, "--input", "{dir}/in.json", "--time-scale", "fast"], ["--time-scale", "not a number"],
         {"in.json": GOOD_INPUT}),
    Case("run-workspace-is-a-file", [*RUN, "--input", "{dir}/in.json", "--workspace", "{dir}/in.json"],
         ["in.json", "not a directory"], {"in.json": GOOD_INPUT}),
    Case("run-template-missing", ["local", "run", "TrainingStateMachine", "--input", "{dir}/in.json", "--template",
                                  "{dir}/none.yaml", "--workspace", "{dir}/ws"], ["none.yaml", "template not found"],
         {"in.json": GOOD_INPUT}),
    Case("run-template-not-yaml", ["local", "run", "TrainingStateMachine", "--input", "{dir}/in.json", "--template",
                                   "{dir}/t.yaml", "--workspace", "{dir}/ws"], ["t.yaml"],
         {"in.json": GOOD_INPUT, "t.yaml": "Resources: [unclosed\n  - : :"}),
    Case("run-template-without-resources", ["local", "run", "TrainingStateMachine", "--input", "{dir}/in.json", "--template",
                                            "{dir}/t.yaml", "--workspace", "{dir}/ws"], ["t.yaml", "Resources"],
         {"in.json": GOOD_INPUT, "t.yaml": "AWSTemplateFormatVersion: '2010-09-09'\n"}),
    Case("run-parameter-override-not-pair", [*RUN, "--input", "{dir}/in.json", "--workspace", "{dir}/ws",
                                             "--parameter-overrides", "Environment"], ["--parameter-overrides", "NAME=VALUE"],
         {"in.json": GOOD_INPUT}),
    Case("run-no-input-option", [*RUN, "--workspace", "{dir}/ws"], ["--input", "required"]),
    Case("run-unknown-option", [*RUN, "--input", "{dir}/in.json", "--dry-run"], ["unrecognized arguments", "--dry-run"],
         {"in.json": GOOD_INPUT}),
    # -- local history / events / console / up ---------------------------------------------------------------------
    Case("history-unknown-execution", ["local", "history", "no-such-run", "--workspace", "{dir}/ws"], ["no-such-run"],
         {"ws/.keep": ""}),
    Case("history-workspace-missing", ["local", "history", "x", "--workspace", "{dir}/nowhere"], ["nowhere"]),
    Case("history-workspace-is-a-file", ["local", "history", "x", "--workspace", "{dir}/f"], ["f", "not a directory"],
         {"f": "x"}),
    Case("events-limit-zero", ["local", "events", "--limit", "0", "--workspace", "{dir}/ws"], ["--limit", "at least 1"]),
    Case("events-limit-word", ["local", "events", "--limit", "all", "--workspace", "{dir}/ws"], ["--limit", "invalid int"]),
    Case("events-workspace-is-a-file", ["local", "events", "--workspace", "{dir}/f"], ["f", "not a directory"], {"f": "x"}),
    Case("console-no-cloud", ["local", "console", "--workspace", "{dir}/ws"], ["no local cloud", "sagestep local up"],
         {"ws/.keep": ""}),
    Case("up-port-zero", ["local", "up", "--port", "0", "--workspace", "{dir}/ws", "--template",
                          str(REPO_ROOT / "template.yaml")], ["--port", "1..65535"]),
    Case("up-port-too-large", ["local", "up", "--port", "70000", "--workspace", "{dir}/ws", "--template",
                               str(REPO_ROOT / "template.yaml")], ["--port", "1..65535"]),
    Case("up-template-missing", ["local", "up", "--template", "{dir}/none.yaml", "--workspace", "{dir}/ws"],
         ["none.yaml", "template not found"]),
    # -- local invoke / traffic: request bodies and rows files ------------------------------------------------------
    Case("invoke-body-missing", ["local", "invoke", "e", "--body", "{dir}/none.csv", "--workspace", "{dir}/ws"],
         ["none.csv", "not found"]),
    Case("traffic-rows-missing", ["local", "traffic", "e", "--rows", "{dir}/none.csv", "--workspace", "{dir}/ws"],
         ["none.csv", "not found"]),
    Case("traffic-rows-empty", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--workspace", "{dir}/ws"],
         ["rows.csv", "empty"], {"rows.csv": ""}),
    Case("traffic-rows-header-only", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--target", "Status",
                                      "--workspace", "{dir}/ws"], ["rows.csv", "no rows", "add the rows"], {"rows.csv": HEADER + "\n"}),
    Case("traffic-rows-no-target", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--workspace", "{dir}/ws"],
         ["rows.csv", "--target"], {"rows.csv": ROWS.replace("Status,", "Outcome,")}),
    Case("traffic-target-not-a-column", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--target", "Outcome",
                                         "--workspace", "{dir}/ws"], ["rows.csv", "Outcome"], {"rows.csv": ROWS}),
    Case("traffic-labels-nan", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--target", "Status",
                                "--workspace", "{dir}/ws"], ["rows.csv", "Status", "no value", "line 2"],
         {"rows.csv": HEADER + "\n" + "\n".join(l.replace(",good,", ",,", 1) for l in ROWS.splitlines()[1:]) + "\n"}),
    Case("traffic-rows-binary", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--target", "Status",
                                 "--workspace", "{dir}/ws"], ["rows.csv"], {"rows.csv": b"\x89PNG\r\n\x1a\n\x00\x00\xff"}),
    Case("traffic-dataset-config-invalid-yaml", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--dataset-config",
                                                 "{dir}/c.yaml", "--workspace", "{dir}/ws"], ["c.yaml"],
         {"rows.csv": ROWS, "c.yaml": "name: [credit\ntarget: : Status"}),
    Case("traffic-dataset-config-missing", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--dataset-config",
                                            "{dir}/none.yaml", "--workspace", "{dir}/ws"], ["none.yaml", "not found"],
         {"rows.csv": ROWS}),
    Case("traffic-rate-zero", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--target", "Status", "--rate", "0",
                               "--workspace", "{dir}/ws"], ["--rate", "greater than 0"], {"rows.csv": ROWS}),
    Case("traffic-rate-negative", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--target", "Status", "--rate",
                                   "-5", "--workspace", "{dir}/ws"], ["--rate", "greater than 0"], {"rows.csv": ROWS}),
    Case("traffic-count-zero", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--target", "Status", "--count", "0",
                                "--workspace", "{dir}/ws"], ["--count", "at least 1"], {"rows.csv": ROWS}),
    Case("traffic-labels-after-not-duration", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--target", "Status",
                                               "--labels-after", "1 hour", "--workspace", "{dir}/ws"],
         ["1 hour", "ISO-8601"], {"rows.csv": ROWS}),
    Case("traffic-labels-choice", ["local", "traffic", "e", "--rows", "{dir}/rows.csv", "--labels", "some"],
         ["--labels", "invalid choice"], {"rows.csv": ROWS}),
    # -- models: options checked before any registry call ----------------------------------------------------------
    Case("models-list-aws-without-prefix", ["models", "list", "--aws", "--region", "us-east-1"], ["--prefix", "--group"]),
    Case("models-approve-no-by", ["models", "approve", "arn:x", "--reason", "ok"], ["--by", "required"]),
    Case("models-reject-no-reason", ["models", "reject", "arn:x", "--by", "me"], ["--reason", "required"]),
    Case("models-unknown-command", ["models", "promote", "arn:x"], ["invalid choice", "promote"]),
    # -- baseline ---------------------------------------------------------------------------------------------------
    Case("baseline-input-missing", ["baseline", "--input", "{dir}/none.csv", "--output", "{dir}/out"], ["none.csv"]),
    Case("baseline-input-binary", ["baseline", "--input", "{dir}/data.csv", "--output", "{dir}/out"],
         ["data.csv", "UTF-8"], {"data.csv": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfa" * 20}),
    Case("baseline-input-empty", ["baseline", "--input", "{dir}/data.csv", "--output", "{dir}/out"], ["data.csv", "no data rows"],
         {"data.csv": ""}),
    Case("baseline-input-header-only", ["baseline", "--input", "{dir}/data.csv", "--output", "{dir}/out"],
         ["data.csv", "no data rows"], {"data.csv": HEADER + "\n"}),
    Case("baseline-output-is-a-file", ["baseline", "--input", "{dir}/data.csv", "--output", "{dir}/out"],
         ["out", "not a directory"], {"data.csv": ROWS, "out": "a file"}),
    Case("baseline-dataset-config-missing", ["baseline", "--input", "{dir}/data.csv", "--output", "{dir}/o",
                                             "--dataset-config", "{dir}/none.yaml"], ["none.yaml"], {"data.csv": ROWS}),
    Case("baseline-dataset-config-txt", ["baseline", "--input", "{dir}/data.csv", "--output", "{dir}/o",
                                         "--dataset-config", "{dir}/config.txt"], ["config.txt", ".yaml"],
         {"data.csv": ROWS, "config.txt": CONFIG}),
    # -- monitor data-quality / model-quality / bias -----------------------------------------------------------------
    Case("data-quality-baseline-missing", ["monitor", "data-quality", "--input", "{dir}/data.csv", "--baseline-dir",
                                           "{dir}/nobase", "--output", "{dir}/o"], ["statistics.json", "sagestep baseline"],
         {"data.csv": ROWS}),
    Case("data-quality-statistics-corrupt", ["monitor", "data-quality", "--input", "{dir}/data.csv", "--baseline-dir",
                                             "{dir}/base", "--output", "{dir}/o"], ["statistics.json"],
         {"data.csv": ROWS, "base/statistics.json": '{"version": 0.0, "feat', "base/constraints.json": "{}"}),
    Case("data-quality-constraints-invalid", ["monitor", "data-quality", "--input", "{dir}/none.csv", "--baseline-dir",
                                              "{dir}/base", "--output", "{dir}/o"], ["constraints.json", "features"],
         {"base/statistics.json": "{}", "base/constraints.json": "{}"}),
    Case("model-quality-merged-missing", ["monitor", "model-quality", "--merged", "{dir}/merged-typo", "--constraints",
                                          "{dir}/c.json", "--problem-type", "BinaryClassification", "--output", "{dir}/o"],
         ["merged-typo", "no such file or directory"], {"c.json": '{"version": 0.0, "binary_classification_constraints": {}}'}),
    Case("model-quality-merged-empty-dir", ["monitor", "model-quality", "--merged", "{dir}/merged", "--constraints",
                                            "{dir}/c.json", "--problem-type", "BinaryClassification", "--output", "{dir}/o"],
         ["merged", "no merged record"],
         {"merged/.keep": "", "c.json": '{"version": 0.0, "binary_classification_constraints": {}}'}),
    Case("model-quality-threshold-above-one", ["monitor", "model-quality", "--merged", "{dir}/m.jsonl", "--constraints",
                                               "{dir}/c.json", "--problem-type", "BinaryClassification", "--output",
                                               "{dir}/o", "--threshold", "2.0"], ["--threshold", "between 0 and 1"],
         {"m.jsonl": "", "c.json": "{}"}),
    Case("model-quality-threshold-negative", ["monitor", "model-quality", "--merged", "{dir}/m.jsonl", "--constraints",
                                              "{dir}/c.json", "--problem-type", "BinaryClassification", "--output",
                                              "{dir}/o", "--threshold", "-0.1"], ["--threshold", "between 0 and 1"],
         {"m.jsonl": "", "c.json": "{}"}),
    Case("model-quality-constraints-missing", ["monitor", "model-quality", "--merged", "{dir}/m.jsonl", "--constraints",
                                               "{dir}/none.json", "--problem-type", "BinaryClassification", "--output",
                                               "{dir}/o"], ["none.json"], {"m.jsonl": ""}),
    Case("model-quality-problem-type", ["monitor", "model-quality", "--merged", "{dir}/m.jsonl", "--constraints",
                                        "{dir}/c.json", "--problem-type", "Binary", "--output", "{dir}/o"],
         ["--problem-type", "invalid choice"], {"m.jsonl": "", "c.json": "{}"}),
    Case("bias-ndcg-threshold-above-one", ["monitor", "bias", "--merged", "{dir}/m.jsonl", "--baseline-dir", "{dir}/b",
                                           "--model", "{dir}/model.tar.gz", "--dataset-config", "{dir}/c.yaml",
                                           "--output", "{dir}/o", "--ndcg-threshold", "5"],
         ["--ndcg-threshold", "between 0 and 1"], {"c.yaml": CONFIG}),
    Case("bias-threshold-above-one", ["monitor", "bias", "--merged", "{dir}/m.jsonl", "--baseline-dir", "{dir}/b",
                                      "--model", "{dir}/model.tar.gz", "--dataset-config", "{dir}/c.yaml",
                                      "--output", "{dir}/o", "--threshold", "1.5"], ["--threshold", "between 0 and 1"],
         {"c.yaml": CONFIG}),
    Case("bias-di-tolerance-negative", ["monitor", "bias", "--merged", "{dir}/m.jsonl", "--baseline-dir", "{dir}/b",
                                        "--model", "{dir}/model.tar.gz", "--dataset-config", "{dir}/c.yaml",
                                        "--output", "{dir}/o", "--di-tolerance", "-1"], ["--di-tolerance", "between 0 and 10"],
         {"c.yaml": CONFIG}),
    Case("bias-dataset-config-missing", ["monitor", "bias", "--merged", "{dir}/m.jsonl", "--baseline-dir", "{dir}/b",
                                         "--model", "{dir}/model.tar.gz", "--dataset-config", "{dir}/none.yaml",
                                         "--output", "{dir}/o"], ["none.yaml"]),
    Case("bias-model-not-a-tarball", ["monitor", "bias", "--merged", "{dir}/m.jsonl", "--baseline-dir", "{dir}/b",
                                      "--model", "{dir}/model.tar.gz", "--dataset-config", "{dir}/c.yaml",
                                      "--output", "{dir}/o"], ["--model", "model.tar.gz", "not a model.tar.gz"],
         {"c.yaml": CONFIG, "model.tar.gz": b"not a tarball", "b/bias.json": "{}", "b/explainability.json": "{}"}),
    # -- merge-ground-truth -----------------------------------------------------------------------------------------
    Case("merge-start-offset-not-duration", [*MERGE, "--start-offset", "3 hours", "--end-offset", "-PT1H"],
         ["3 hours", "ISO-8601"], {"capture/.keep": "", "gt/.keep": ""}),
    Case("merge-end-offset-not-duration", [*MERGE, "--start-offset", "-PT3H", "--end-offset", "-1h"],
         ["--end-offset", "expected one argument"]),
    Case("merge-at-not-a-time", [*MERGE, "--start-offset", "-PT3H", "--end-offset", "-PT1H", "--at", "yesterday"],
         ["yesterday"]),
    Case("merge-workers-zero", [*MERGE, "--start-offset", "-PT3H", "--end-offset", "-PT1H", "--workers", "0"],
         ["--workers", "at least 1"]),
    Case("merge-start-after-end", [*MERGE, "--start-offset", "-PT1H", "--end-offset", "-PT3H"], ["offset"],
         {"capture/.keep": "", "gt/.keep": ""}),
    Case("merge-capture-missing", [*MERGE, "--start-offset", "-PT3H", "--end-offset", "-PT1H"],
         ["--capture", "capture", "not a directory"]),
    # -- ab ---------------------------------------------------------------------------------------------------------
    Case("ab-simulate-input-missing", ["ab", "simulate", "--input", "{dir}/none.json", "--rate", "1", "--label-delay",
                                       "PT1H"], ["none.json"]),
    Case("ab-simulate-rate-zero", ["ab", "simulate", "--input", "{dir}/in.json", "--rate", "0", "--label-delay", "PT1H"],
         ["--rate", "greater than 0"], {"in.json": (REPO_ROOT / "events" / "ab_test_state_machine_split.json").read_text()}),
    Case("ab-simulate-label-delay-bad", ["ab", "simulate", "--input", "{dir}/in.json", "--rate", "1", "--label-delay",
                                         "an hour"], ["an hour"],
         {"in.json": (REPO_ROOT / "events" / "ab_test_state_machine_split.json").read_text()}),
    # -- validate / images ------------------------------------------------------------------------------------------
    Case("validate-template-missing", ["validate", "--template", "{dir}/none.yaml"], ["none.yaml", "template not found"]),
    Case("validate-template-not-yaml", ["validate", "--template", "{dir}/t.yaml", "--skip-sam"], ["t.yaml"],
         {"t.yaml": "Resources: {unclosed"}),
    Case("images-region-missing", ["images"], ["--region", "required"]),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_argument_is_refused_on_one_line_naming_it(case: Case, tmp_path, request):
    # GIVEN the files the case names, as a user would have them
    write_files(tmp_path, case.files)
    before = checksums(tmp_path)
    # WHEN the command runs
    result = run_cli(fill(case.argv, dir=str(tmp_path)))
    # THEN it is refused with the designed exit code, on one line that names the input and the fix; nothing changed
    problems = clear_message(result.err, case.expect) + one_line_error(result)
    if result.code != case.code:
        problems.append(f"exit {result.code}, expected {case.code}")
    if problems:
        problems.append(describe(result))
    judge(request, case.id, case.kind, case.outcome, problems, changed(before, checksums(tmp_path)), None)
