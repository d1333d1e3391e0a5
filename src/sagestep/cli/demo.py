"""`sagestep demo` (what `make demo` runs): the autopilot, locally, on the bundled real credit data.

The demo starts the local cloud and then only does what a user or the world does — uploads data, approves a model in
the registry, sends applications and, later, their outcomes, starts an A/B test of a challenger. Everything else is
started by the template's own EventBridge rules and schedules and by the state machines: training by the data
landing, deployment by the approval, monitoring by its schedule, retraining by the monitoring's violations. Each
step is printed as it happens with the event that caused it; a summary table ends the run.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from sagestep.cli import UserError
from sagestep.cli.local import add_runtime_arguments, open_runtime, short_cause

DATASET = "credit_data"
DATASET_FILE = Path("data/credit_data/credit_data.csv")
DATASET_CONFIG = Path("ml/config/credit_data.yaml")
# The parameters a team sets to let the lifecycle run by itself (README, "The autopilot"): the rules on and the
# monitoring schedule on. The demo cannot wait for an hour to end, so its schedule checks the hours in progress.
AUTOPILOT_PARAMETERS = {
    "MonitoringScheduleState": "ENABLED", "RetrainOnNewDataState": "ENABLED", "DeployOnApprovalState": "ENABLED",
    "MonitoringScheduleInput": json.dumps({"ScheduleName": "hourly", "WindowHours": 2, "EndOffsetHours": 1,
                                           "MergeStartOffset": "-P1D", "MergeEndOffset": "-PT0S"}),
}
DRIFT_FACTOR = 3.0  # incomes and amounts of a later cohort, on the same real applications
STEP_TIMEOUT = 900.0
COHORT = 300  # applications scored per cohort: enough for the drift and model-quality checks to see a difference


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="the autopilot locally on real credit data: data lands -> training -> approval -> deployment -> "
                     "scoring -> scheduled monitoring -> drift -> retraining -> A/B test")
    add_runtime_arguments(demo)
    demo.set_defaults(func=cmd_demo, time_scale=0.02)


@dataclasses.dataclass
class Step:
    what: str
    started_by: str
    execution: str = ""
    status: str = ""
    seconds: float = 0.0
    evidence: str = ""


class Narrator:
    """Prints each step with the time since the demo started, and keeps the summary rows."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.steps: list[Step] = []

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def table(self) -> None:
        rows = [("step", "started by", "execution", "status", "took", "evidence")]
        rows += [(s.what, s.started_by, s.execution, s.status, f"{s.seconds:.0f}s" if s.seconds else "", s.evidence)
                 for s in self.steps]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for index, row in enumerate(rows):
            print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1])
            if index == 0:
                print("  ".join("-" * w for w in widths) + "  " + "-" * 8)


def rule_deliveries(runtime: Any) -> list[dict[str, Any]]:
    """Every execution the cloud's EventBridge started: {"rule", "execution", "event"} in delivery order."""
    from sagestep.local.bus import read_deliveries

    return [d for d in read_deliveries(runtime.workspace.root / "events.jsonl") if "execution" in d]


def wait_for_rule(runtime: Any, rule_suffix: str, known: set[str], timeout: float = STEP_TIMEOUT) -> dict[str, Any]:
    """The first execution a rule (named by its suffix) starts that is not in `known`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for delivery in rule_deliveries(runtime):
            if delivery["rule"].endswith(rule_suffix) and delivery["execution"] not in known:
                return delivery
        time.sleep(0.5)
    raise UserError(f"demo: no execution started by rule {rule_suffix} within {timeout:.0f} s; see `sagestep local events`")


def describe_event(event: dict[str, Any]) -> str:
    detail = event.get("detail", {})
    kind = event.get("detail-type", "?")
    if kind == "Object Created":
        return f'"Object Created" s3://{detail["bucket"]["name"]}/{detail["object"]["key"]}'
    if kind == "SageMaker Model Package State Change":
        return f'"{kind}" {"/".join(detail.get("ModelPackageArn", "").rsplit("/", 2)[-2:])} -> {detail.get("ModelApprovalStatus")}'
    if "schedule" in event:
        return f"its tick at {event.get('time')} (virtual clock)"
    return f'"{kind}"'


def follow(runtime: Any, narrator: Narrator, step: Step, arn: str) -> Any:
    """Wait for an execution; record how it ended on `step`."""
    started = time.monotonic()
    step.execution = arn.rsplit(":", 1)[-1]
    record = runtime.wait(arn, timeout=STEP_TIMEOUT)
    step.status, step.seconds = record.status, time.monotonic() - started
    if record.status != "SUCCEEDED":
        narrator.say(f"   {record.status}: {record.error}: {short_cause(str(record.cause))}")
        narrator.say(f"   history: sagestep local history {step.execution}")
    return record


def follow_rule(runtime: Any, narrator: Narrator, rule: str, seen: set[str], what: str, step_name: str) -> tuple[Step, Any]:
    """Wait for the next execution `rule` starts (not one in `seen`), say so, and follow it to its end."""
    delivery = wait_for_rule(runtime, rule, seen)
    seen.add(delivery["execution"])
    step = Step(step_name, f"rule {rule}")
    narrator.steps.append(step)
    narrator.say(f"{what} started by rule {rule} <- {describe_event(delivery['event'])}")
    return step, follow(runtime, narrator, step, delivery["execution"])


def cmd_demo(args: argparse.Namespace) -> int:
    root = args.template.resolve().parent
    args.parameter_overrides = [f"{k}={v}" for k, v in AUTOPILOT_PARAMETERS.items()] + list(args.parameter_overrides)
    narrator = Narrator()
    with open_runtime(args) as runtime:
        code = _autopilot(runtime, narrator, root, args.workspace)
        narrator.table()
    print(f"\nEverything above is in the workspace {args.workspace}: `sagestep local console --workspace {args.workspace}` "
          f"shows it in a browser while `sagestep local up --workspace {args.workspace}` runs; "
          f"`sagestep local events --workspace {args.workspace}` lists the events and what they started.")
    return code


def _autopilot(runtime: Any, narrator: Narrator, root: Path, workspace: Path) -> int:
    sagemaker, sfn = runtime.client("sagemaker"), runtime.client("stepfunctions")
    data_bucket = runtime.bucket("DataBucket")
    scale = runtime.time_scale if getattr(runtime, "time_scale", None) else 1.0
    narrator.say(f"Local cloud up (workspace {workspace}, time scale {scale:g}: an hour of schedule takes "
                 f"{3600 * scale:.0f} s). The template's rules and schedules run it from here.")

    # 1. The world: data lands in the data bucket.
    narrator.say(f"1. You upload {DATASET_FILE} ({_count_rows(root / DATASET_FILE)} real applications) and its "
                 f"config to s3://{data_bucket}/")
    runtime.put_file(root / DATASET_CONFIG, f"s3://{data_bucket}/configs/{DATASET}.yaml")
    runtime.put_file(root / DATASET_FILE, f"s3://{data_bucket}/datasets/{DATASET}/{DATASET_FILE.name}")
    seen: set[str] = set()
    training_step, training = follow_rule(runtime, narrator, "RetrainOnNewData", seen, "2. Training", "train")
    if training.status != "SUCCEEDED":
        return 1
    package_arn = training.output["Registered"]["ModelPackageArn"]
    run_dir = runtime.local_path(training.output["Run"]["OutputS3Uri"])
    report = runtime.local_path(training.output["Gate"]["ReportS3Uri"])
    metadata = sagemaker.describe_model_package(ModelPackageName=package_arn).get("CustomerMetadataProperties", {})
    training_step.evidence = str(report)
    narrator.say(f"   registered {package_arn.split('/', 1)[1]} (PendingManualApproval): test AUC {metadata.get('TestAuc')}, "
                 f"gate: {', '.join(training.output['Gate']['Reasons']) or 'all checks passed'}; report {report}")

    # 2. A reviewer approves it in the registry.
    from sagestep.registry import approvals

    narrator.say("3. You approve it in the model registry (UpdateModelPackage, as reviewer 'Ana Risk')")
    approvals.decide(sagemaker, package_arn, "approve", by="Ana Risk", reason="demo: gate passed, report reviewed")
    deploy_step, deployment = follow_rule(runtime, narrator, "DeployOnApproval", seen, "4. Deployment", "deploy")
    if deployment.status != "SUCCEEDED":
        return 1
    endpoint = sagemaker.describe_model_package(ModelPackageName=package_arn)["ModelPackageGroupName"]
    deploy_step.evidence = f"endpoint {endpoint}"
    narrator.say(f"   endpoint {endpoint} InService with {package_arn.split('/', 1)[1]}")

    # 3. Applicants are scored; their outcomes arrive later as ground truth.
    from sagestep.local.traffic import Traffic, load_rows

    test_csv = next((run_dir / "preprocess" / "test").glob("*.csv"))
    rows = load_rows(test_csv, dataset_config=root / DATASET_CONFIG)
    clean = Traffic(runtime, endpoint, rows, rate=200, labels_after=0.5, run_id="cohort-1").send(count=COHORT)
    narrator.say(f"5. {clean.sent} held-out applications scored through {endpoint} ({clean.errors} errors); their "
                 f"outcomes arrive {0.5:g} s later as ground-truth files (s3://{runtime.bucket('ArtifactsBucket')}/ground-truth/)")
    _show_declines(runtime, narrator, endpoint, rows)

    # 4. The monitoring schedule fires on clean traffic.
    monitoring_arn = runtime.state_machine_arn("MonitoringStateMachine")
    training_arn = runtime.state_machine_arn("TrainingStateMachine")
    known_monitoring = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=monitoring_arn)["executions"]}
    first = wait_for_rule(runtime, "MonitorOnSchedule", known_monitoring)
    _show_monitoring(runtime, narrator, "6", first, "monitor (cohort 1)")

    # 5. The world drifts: a later cohort with higher incomes and amounts, arriving just after a scheduled run has
    # started, so that the next run sees the whole cohort.
    known_monitoring |= {e["executionArn"] for e in sfn.list_executions(stateMachineArn=monitoring_arn)["executions"]}
    wait_for_rule(runtime, "MonitorOnSchedule", known_monitoring)
    drifted = dataclasses.replace(rows, instances=[
        {**r, "Income": None if r.get("Income") is None else r["Income"] * DRIFT_FACTOR, "Amount": r["Amount"] * DRIFT_FACTOR}
        for r in rows.instances])
    shifted = Traffic(runtime, endpoint, drifted, rate=200, labels_after=0.5, run_id="cohort-2").send(count=COHORT)
    narrator.say(f"7. A later cohort arrives: incomes and amounts ×{DRIFT_FACTOR:g} on the same real applications "
                 f"({shifted.sent} scored); the schedule keeps running")

    # 6. A scheduled run flags it, alerts and starts a retraining.
    retraining_arn, parent = _drift_retraining(runtime, training_arn, monitoring_arn)
    _show_monitoring(runtime, narrator, "8", parent, "monitor (cohort 2)")
    alerts = [n for n in runtime.notifications() if "violation" in json.dumps(n).lower()]
    if alerts:
        narrator.say(f"   alert sent (SNS): {str(alerts[-1].get('Subject') or alerts[-1].get('subject') or '')[:100]}")
    retrain_step = Step("retrain", f"execution {parent['execution'].rsplit(':', 1)[-1][:8]}… (monitoring)")
    narrator.steps.append(retrain_step)
    narrator.say(f"9. Retraining started by MonitoringStateMachine execution {parent['execution'].rsplit(':', 1)[-1]} "
                 "(its violations; the line's cool-down keeps later runs from starting more)")
    retraining = follow(runtime, narrator, retrain_step, retraining_arn)
    if retraining.status != "SUCCEEDED":
        return 1
    challenger = retraining.output["Registered"]["ModelPackageArn"]
    retrain_step.evidence = str(runtime.local_path(retraining.output["Gate"]["ReportS3Uri"]))
    narrator.say(f"   registered challenger {challenger.split('/', 1)[1]} (PendingManualApproval)")

    # 7. The team tests the challenger on 10% of live traffic.
    from sagestep.local.ab_demo import run_ab_demo

    narrator.say(f"10. You start an A/B test of {challenger.split('/', 1)[1]} at 10% of traffic (ABTestStateMachine), "
                 "while applications keep arriving")
    ab_step = Step("A/B test", "you (StartExecution)")
    narrator.steps.append(ab_step)
    started = time.monotonic()
    ab = run_ab_demo(runtime, challenger, test_csv, dataset_config=root / DATASET_CONFIG, overrides={"TrafficShare": 0.1},
                     plot_path=run_dir / "ab_evidence.png", endpoint=endpoint, out=lambda line: narrator.say("   " + line))
    ab_step.status, ab_step.seconds = ab["Status"], time.monotonic() - started
    ab_step.execution = str(ab.get("ExecutionArn") or "").rsplit(":", 1)[-1]
    ab_step.evidence = ab.get("PlotPath") or ab.get("EvidenceS3Uri") or ""
    if ab["Status"] != "SUCCEEDED":
        return 1
    narrator.say(f"11. Decision: {ab['Decision']}")
    if (after := _promotion_deployment(runtime, challenger, seen)) is not None:
        narrator.say(f"   the promotion's approval reached rule DeployOnApproval too: {after} (nothing redeployed)")
    return 0


def _show_monitoring(runtime: Any, narrator: Narrator, number: str, delivery: dict[str, Any], what: str) -> None:
    step = Step(what, "schedule MonitorOnSchedule")
    narrator.steps.append(step)
    narrator.say(f"{number}. Monitoring started by schedule MonitorOnSchedule <- {describe_event(delivery['event'])}")
    record = follow(runtime, narrator, step, delivery["execution"])
    results = _line_results(record.output) if record.status == "SUCCEEDED" else []
    step.evidence = "; ".join(f"{r.get('Line')}: {r.get('Status')}" + (f" ({r.get('Violations')})" if r.get("Violations") else "")
                              for r in results) or "no result"
    narrator.say(f"   {record.status}: {step.evidence}")
    for result in results:
        if result.get("Status") == "VIOLATIONS":
            for reason in (result.get("Reasons") or [])[:3]:
                narrator.say(f"     - {reason}")
            narrator.say(f"     report {runtime.local_path(result['ReportS3Uri'])}")


def _drift_retraining(runtime: Any, training_arn: str, monitoring_arn: str) -> tuple[str, dict[str, Any]]:
    """The training a scheduled monitoring run started for its violations, and that run's delivery."""
    sfn = runtime.client("stepfunctions")
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        for summary in sfn.list_executions(stateMachineArn=training_arn)["executions"]:
            execution_input = json.loads(sfn.describe_execution(executionArn=summary["executionArn"]).get("input") or "{}")
            parent = execution_input.get("AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID", "")
            if parent.startswith(monitoring_arn.replace(":stateMachine:", ":execution:") + ":"):
                delivery = next((d for d in rule_deliveries(runtime) if d["execution"] == parent), None)
                if delivery is not None:
                    return summary["executionArn"], delivery
        time.sleep(1.0)
    raise UserError(f"demo: no monitoring run started a retraining within {STEP_TIMEOUT:.0f} s; see `sagestep local history`")


def _line_results(output: Any) -> list[dict[str, Any]]:
    """The monitoring execution's result per model line: Status OK, VIOLATIONS or NOTHING_TO_MONITOR, with Reasons."""
    return [r for r in (output or {}).get("Results", []) if isinstance(r, dict)]


def _promotion_deployment(runtime: Any, challenger: str, seen: set[str]) -> str | None:
    for delivery in rule_deliveries(runtime):
        if delivery["rule"].endswith("DeployOnApproval") and delivery["execution"] not in seen \
                and delivery["event"].get("detail", {}).get("ModelPackageArn") == challenger:
            record = runtime.wait(delivery["execution"], timeout=STEP_TIMEOUT)
            return f"{record.status} {(record.output or {}).get('Outcome', '')}".strip()
    return None


def _show_declines(runtime: Any, narrator: Narrator, endpoint: str, rows: Any, limit: int = 2) -> None:
    """Two declined applicants with their reason codes, as the lender would tell them."""
    client = runtime.client("sagemaker-runtime")
    shown = 0
    for index, instance in enumerate(rows.instances[:200]):
        answer = client.invoke_endpoint(EndpointName=endpoint, ContentType="application/json", Accept="application/json",
                                        Body=json.dumps({"instances": [instance]}, default=str).encode(),
                                        InferenceId=f"demo-explain-{index}")
        prediction = json.loads(answer["Body"].read())["predictions"][0]
        if prediction["decision"] == "decline":
            shown += 1
            narrator.say(f"   applicant {index}: score {prediction['score']:.3f} -> decline; reason codes: "
                         f"{', '.join(prediction['reason_codes'])}")
            if shown >= limit:
                return


def _count_rows(path: Path) -> int:
    with open(path, newline="") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)
