"""`sagestep validate` computes the requests the engine sends: two evaluators of the same ASL must agree.

validate evaluates JSONPath, intrinsic functions, JSONata and Choice rules itself (sagestep.validate.evaluate); the
local runtime evaluates them in moto's engine. For every state machine in template.yaml, each of its events/ inputs
and each scenario below, the machine runs in the local runtime with its Task results stubbed (no job runs: the
engine still evaluates every Parameters/Arguments, records it in TaskScheduled, and moves on with the stub), and
validate's walker runs on the same definition, input, execution name and start time, along the transitions the
engine took. Then, state by state from the start, following the engine's transitions:

- validate takes the same transition, and its Choice evaluation allows it (not a branch it thinks is not taken);
- validate agrees with the engine on the state's input and on the request sent (a Task's Parameters/Arguments) in
  every field whose value validate knows: an unknown placeholder (a Lambda payload, a service result) is skipped, a
  partly known string (`States.Format('{}-x', <unknown>)`) must match its known parts;
- the engine evaluates every expression (no States.Runtime or States.QueryEvaluationError).

Stubbed results are the ones validate synthesizes (botocore's output shape of the call, every value made
concrete), with the few fields each scenario needs to steer the run (a gate verdict, an endpoint status) on top.
A last test checks that the scenarios together enter every state validate can reach.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sagestep.local import LocalRuntime
from sagestep.local.engine import TaskStub
from sagestep.validate import evaluate, flows
from sagestep.validate.project import Project
from sagestep.validate.values import CLOSE, OPEN, UnknownMap, describe, is_unknown, unknown, whole_marker
from tests.conftest import BY_HAND, REPO_ROOT

pytestmark = pytest.mark.functional

# ---------------------------------------------------------------------------------------------- scenarios

# A scenario: state name -> what that Task returns on top of the synthesized result (deep-merged), a function of
# the state's input giving that, or a TaskStub failure. Tasks not named return the synthesized result as it is.
# A list in a result keeps the one item validate synthesizes: validate does not know how long a service's list is.
Override = dict[str, Any] | Callable[[Any], dict[str, Any]] | TaskStub


def lambda_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return {"StatusCode": 200, "Payload": payload}


def job_failed(status_key: str, name_key: str) -> TaskStub:
    """A `.sync` job that ends Failed: Step Functions fails the state with its Describe* output as the cause."""
    cause = {name_key: "run-job-0", status_key: "Failed", "FailureReason": "AlgorithmError: exit code 1"}
    return TaskStub(error="States.TaskFailed", cause=json.dumps(cause))


PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/sagestep-dev-credit-data/1"
LINE = {"ModelLine": "credit-data", "ModelPackageGroupName": "sagestep-dev-credit-data", "ModelLineExists": True,
        "ReportS3Uri": "s3://artifacts/runs/r1/report/report.html",
        "ModelCard": {"model_overview": {"model_description": "lightgbm credit-risk classifier"}}}
GATE_PASSED = lambda_payload({"Passed": True, "Reasons": [], "ChampionModelPackageArn": None, "Headline": "Test AUC 0.8460",
                              "CustomerMetadataProperties": {"TestAuc": "0.846", "DatasetName": "credit_data"}, **LINE})
GATE_REFUSED = lambda_payload({"Passed": False, "Reasons": ["test AUC 0.70 < min_auc 0.80"], "ChampionModelPackageArn": None,
                               "Headline": "Test AUC 0.7000", "CustomerMetadataProperties": {"TestAuc": "0.70"}, **LINE})


def live_model(capture_files: int) -> dict[str, Any]:
    return lambda_payload({"ModelPackageArn": PACKAGE, "BaselineS3Uri": "s3://artifacts/runs/r1/baseline/",
                           "EvaluationS3Uri": "s3://artifacts/runs/r1/evaluation/", "DatasetConfigS3Uri": "s3://artifacts/runs/r1/preprocess/config/",
                           "ModelDataUrl": "s3://artifacts/runs/r1/train/model.tar.gz", "CaptureFiles": capture_files,
                           "ProblemType": "BinaryClassification",
                           # the live package's lineage, what a retraining reads (issue 15)
                           "RetrainDataS3Uri": "s3://data/datasets/credit_data/", "RetrainDatasetConfigS3Uri":
                           "s3://data/configs/credit_data.yaml", "RetrainAlgorithm": "lightgbm"})


def merged_labels(count: int) -> dict[str, Any]:
    return lambda_payload({"MergedS3Uri": "s3://artifacts/merged/", "Merged": count, "Pending": 3})


def report(violations: int, retrain: bool) -> dict[str, Any]:
    return lambda_payload({"Violations": violations, "Reasons": ["data_quality: 2 violation(s) on Income"][:violations],
                           "Retrain": retrain, "RetrainReason": "last retraining 30 h ago" if retrain else "cooldown: retrained 2 h ago"})


MONITORED = {"Find the live model": live_model(3), "Merge ground truth": merged_labels(120),
             # the hourly input monitors every model line of the stack: one here
             "List model lines": {"ModelPackageGroupSummaryList": [{"ModelPackageGroupName": "${ModelLinePrefix}credit-data"}]}}


def endpoint_on(config_of: Callable[[Any], str], status: str = "InService") -> Callable[[Any], dict[str, Any]]:
    """A DescribeEndpoint answer: the status, on the config named in the state's input (a new config took)."""
    return lambda state_input: {"EndpointStatus": status, "EndpointConfigName": config_of(state_input), "FailureReason": "alarm"}


APPROVED = {"ModelApprovalStatus": "Approved", "ModelPackageGroupName": "${ModelLinePrefix}credit-data"}
NEW_CONFIG: Callable[[Any], str] = lambda i: i["Names"]["Config"]  # noqa: E731
def newest(arn: str) -> dict[str, Any]:
    return {"ModelPackageSummaryList": [{"ModelPackageArn": arn}]}


def busy_once(config_of: Callable[[Any], str]) -> Callable[[Any], dict[str, Any]]:
    """Another deployment updates the endpoint at the first look; then `config_of` serves."""
    return lambda i: ({"EndpointStatus": "Updating", "EndpointConfigName": "other"} if i["Names"]["BusyChecks"] == 0
                      else {"EndpointStatus": "InService", "EndpointConfigName": config_of(i)})


def endpoint_found_after_waiting(state_input: Any) -> dict[str, Any]:
    """No endpoint at the first look (another delivery is creating it); there after waiting."""
    found = state_input["Names"]["BusyChecks"] > 0
    return {"Endpoints": [{"EndpointName": "${ModelLinePrefix}credit-data" if found else "another-endpoint", "EndpointStatus": "InService"}]}


EXISTS_ALREADY = TaskStub(error="SageMaker.AmazonSageMakerException", cause="Cannot create already existing endpoint (Service: AmazonSageMaker)")
SMOKE_FAILED = lambda_payload({"Passed": False, "Reasons": ["p50 latency 900 ms > 500 ms"], "LatencyP50Ms": 900})
DEPLOYED = {"Describe package": APPROVED, "Find newest approved": newest(PACKAGE), "Find newest again": newest(PACKAGE),
            "Find endpoint": {"Endpoints": [{"EndpointName": "another-endpoint"}]}, "Check endpoint": endpoint_on(NEW_CONFIG),
            "Smoke test": lambda_payload({"Passed": True, "Reasons": [], "LatencyP50Ms": 12.5})}
ENDPOINT_EXISTS = {"Find endpoint": {"Endpoints": [{"EndpointName": "${ModelLinePrefix}credit-data", "EndpointStatus": "InService"}]},
                   "Read current config": {"EndpointConfigName": "${ModelLinePrefix}credit-data-previous", "EndpointStatus": "InService"}}

LIVE = {"Find model line": {"ModelPackageGroupName": "${ModelLinePrefix}credit-data",
                           "CustomerMetadataProperties": {"DatasetConfigS3Uri": "s3://data/configs/credit_data.yaml"}},
        "Describe live endpoint": {"EndpointStatus": "InService", "EndpointConfigName": "${ModelLinePrefix}credit-data-v1"},
        "Find champion package": {"Tags": [{"Key": "sagestep:model-package", "Value": PACKAGE}]},
        "Plan test": lambda_payload({"NMax": 2000, "Looks": 3, "MaxLooks": 6, "Boundaries": [3.7, 2.5, 2.0], "MinPairs": 30,
                                     "NChampion": 1000, "NChallenger": 1000}),
        "Check A/B endpoint": endpoint_on(NEW_CONFIG),
        "Merge variant": merged_labels(400),
        "Prepare replay": lambda_payload({"Count": 400, "InputS3Uri": "s3://artifacts/ab/replay/in/",
                                          "OutputS3Uri": "s3://artifacts/ab/replay/out/"}),
        "Check final endpoint": endpoint_on(lambda i: i["Outcome"]["Config"])}


def decide(final: str) -> Callable[[Any], dict[str, Any]]:
    """The A/B decision: continue at the first look, `final` at the next."""
    def payload(state_input: Any) -> dict[str, Any]:
        look = state_input["Test"]["Look"]
        return lambda_payload({"Decision": "continue" if look < 2 else final, "Reasons": [f"look {look}: z 2.8 beyond 2.5"],
                               "EvidenceS3Uri": f"s3://artifacts/ab/evidence/look-{look}.json", "Look": look,
                               "EndReason": "boundary crossed" if look >= 2 else ""})
    return payload


SCENARIOS: dict[str, dict[str, dict[str, Override]]] = {
    "TrainingStateMachine": {
        "registered": {"Quality gate": GATE_PASSED},
        "new-model-line": {"Quality gate": {**GATE_PASSED, "Payload": {**GATE_PASSED["Payload"], "ModelLineExists": False}}},
        "gate-refused": {"Quality gate": GATE_REFUSED},
        "training-job-failed": {"Train model": job_failed("TrainingJobStatus", "TrainingJobName")},
        "gate-function-error": {"Quality gate": TaskStub(error="Lambda.Unknown", cause="the function timed out")},
    },
    "MonitoringStateMachine": {
        "retraining-started": {**MONITORED, "Report": report(1, retrain=True)},
        "retraining-suppressed": {**MONITORED, "Report": report(1, retrain=False)},
        "empty-window": {"Find the live model": live_model(0), "Merge ground truth": merged_labels(0), "Report": report(0, retrain=False)},
        "nothing-to-monitor": {"Find the live model": TaskStub(error="NothingToMonitor", cause="no DriftCheckBaselines")},
        "check-job-failed": {**MONITORED, "Data quality": job_failed("ProcessingJobStatus", "ProcessingJobName")},
        "report-function-error": {**MONITORED, "Report": TaskStub(error="Lambda.Unknown", cause="the function timed out")},
        "listing-failed": {**MONITORED, "Report": report(0, retrain=False), "List model lines": TaskStub(error="SageMaker.SageMakerException", cause="Rate exceeded")},
    },
    "BatchInferenceStateMachine": {
        "scored": {"Describe package": APPROVED},
        "not-approved": {"Describe package": {"ModelApprovalStatus": "PendingManualApproval"}},
        "wrong-model-line": {"Describe package": {"ModelApprovalStatus": "Approved", "ModelPackageGroupName": "someone-elses-group"}},
        "transform-failed": {"Describe package": APPROVED, "Score batch": job_failed("TransformJobStatus", "TransformJobName")},
    },
    "DeploymentStateMachine": {
        "first-deployment": DEPLOYED,
        "superseded": {**DEPLOYED, "Find newest approved": newest(PACKAGE[:-1] + "2")},
        "already-live": {**DEPLOYED, **ENDPOINT_EXISTS, "Read current config": endpoint_on(NEW_CONFIG)},
        "waits-for-another-update-then-live": {**DEPLOYED, **ENDPOINT_EXISTS, "Read current config": busy_once(NEW_CONFIG)},
        "created-by-a-redelivery": {**DEPLOYED, "Create model": EXISTS_ALREADY, "Create endpoint config": EXISTS_ALREADY,
                                    "Create endpoint": EXISTS_ALREADY, "Find endpoint": endpoint_found_after_waiting,
                                    "Read current config": endpoint_on(NEW_CONFIG)},
        "endpoint-stayed-busy": {**DEPLOYED, **ENDPOINT_EXISTS,
                                 "Read current config": lambda i: {"EndpointStatus": "Updating", "EndpointConfigName": "other"}},
        "blue-green-update-rolled-back": {**DEPLOYED, **ENDPOINT_EXISTS, "Check endpoint": endpoint_on(lambda i: "${ModelLinePrefix}credit-data-previous")},
        "replaced-by-a-newer-deployment": {**DEPLOYED, **ENDPOINT_EXISTS,
                                           "Check endpoint": endpoint_on(lambda i: "${ModelLinePrefix}credit-data-newer")},
        "new-endpoint-failed": {**DEPLOYED, "Check endpoint": endpoint_on(NEW_CONFIG, "Failed")},
        "new-endpoint-not-deleted": {**DEPLOYED, "Check endpoint": endpoint_on(NEW_CONFIG, "Failed"),
                                     "Delete new endpoint": TaskStub(error="SageMaker.SageMakerException", cause="Rate exceeded")},
        "smoke-test-failed-restored": {**DEPLOYED, **ENDPOINT_EXISTS, "Smoke test": SMOKE_FAILED,
                                       "Check before restoring": endpoint_on(NEW_CONFIG)},
        "smoke-test-failed-previous-serves": {**DEPLOYED, **ENDPOINT_EXISTS, "Smoke test": SMOKE_FAILED,
                                              "Check before restoring": endpoint_on(lambda i: "${ModelLinePrefix}credit-data-previous")},
        "smoke-test-failed-another-live": {**DEPLOYED, **ENDPOINT_EXISTS, "Smoke test": SMOKE_FAILED,
                                           "Check before restoring": endpoint_on(lambda i: "${ModelLinePrefix}credit-data-newer")},
        "smoke-test-failed-still-updating": {**DEPLOYED, **ENDPOINT_EXISTS, "Smoke test": SMOKE_FAILED,
                                             "Check before restoring": endpoint_on(NEW_CONFIG, "Updating")},
        "restore-failed": {**DEPLOYED, **ENDPOINT_EXISTS, "Smoke test": SMOKE_FAILED, "Check before restoring": endpoint_on(NEW_CONFIG),
                           "Restore previous config": TaskStub(error="SageMaker.AmazonSageMakerException", cause="in-progress")},
        "not-approved": {"Describe package": {"ModelApprovalStatus": "Rejected"}},
        "wrong-model-line": {"Describe package": {"ModelApprovalStatus": "Approved", "ModelPackageGroupName": "someone-elses-group"}},
    },
    "ABTestStateMachine": {
        "promoted": {**LIVE, "Decide look": decide("promote")},
        "champion-kept-no-champion-package": {**LIVE, "Find champion package": {"Tags": [{"Key": "owner", "Value": "risk"}]},
                                              "Decide look": decide("keep")},
        "aborted-final-endpoint-failed": {**LIVE, "Decide look": decide("abort"),
                                          "Check final endpoint": endpoint_on(lambda i: i["Outcome"]["Config"], "Failed")},
        "final-update-rolled-back": {**LIVE, "Decide look": decide("promote"), "Check final endpoint": endpoint_on(lambda i: "${ModelLinePrefix}credit-data-v1")},
        "test-endpoint-rolled-back": {**LIVE, "Check A/B endpoint": endpoint_on(lambda i: "${ModelLinePrefix}credit-data-v1")},
        "test-endpoint-failed": {**LIVE, "Check A/B endpoint": endpoint_on(NEW_CONFIG, "Failed")},
        "live-endpoint-not-in-service": {**LIVE, "Describe live endpoint": {"EndpointStatus": "Updating"}},
        "replay-not-prepared": {**LIVE, "Decide look": decide("keep"),
                                "Prepare replay": TaskStub(error="Lambda.Unknown", cause="the function timed out")},
        "replay-failed": {**LIVE, "Decide look": decide("keep"),
                          "Replay with the other model": job_failed("TransformJobStatus", "TransformJobName")},
        "challenger-not-found": {"Find model line": TaskStub(error="SageMaker.SageMakerException", cause="Model package not found")},
        "challenger-of-another-stack": {"Find model line": {"ModelPackageGroupName": "someone-elses-group"}},
    },
}


# ---------------------------------------------------------------------------------------------- stubs


def concrete(value: Any) -> Any:
    """A synthesized result with every unknown made a plain value of its kind (as the engine would get one)."""
    marker = whole_marker(value)
    if marker is not None:
        kind = marker[0]
        return {"integer": 1, "long": 1, "float": 1.5, "double": 1.5, "boolean": True, "timestamp": 1714564800000,
                "any": {}}.get(kind, "example")
    if isinstance(value, str) and is_unknown(value):
        return re.sub(f"{OPEN}[^{CLOSE}]*{CLOSE}", "example", value)
    if isinstance(value, dict):
        return {k: concrete(v) for k, v in value.items()}
    if isinstance(value, list):
        return [concrete(v) for v in value]
    return value


def merged(base: Any, override: Any, where: str = "result") -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merged(base.get(key), value, f"{where}.{key}")
        return out
    if isinstance(base, list) and isinstance(override, list):
        assert len(base) == len(override), f"{where}: a stubbed list keeps the {len(base)} item(s) validate synthesizes"
        return [merged(b, o, f"{where}[{i}]") for i, (b, o) in enumerate(zip(base, override))]
    return copy.deepcopy(override)


def all_states(scope: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state of a definition by name (names are unique across a whole state machine)."""
    out: dict[str, dict[str, Any]] = {}
    for name, state in (scope.get("States") or {}).items():
        out[name] = state
        for branch in state.get("Branches") or []:
            out.update(all_states(branch))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            out.update(all_states(processor))
    return out


def filled(value: Any, substitutions: dict[str, str]) -> Any:
    """`${Name}` in a stub value becomes the template's value, as in the definition."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: substitutions[m.group(1)], value)
    if isinstance(value, dict):
        return {k: filled(v, substitutions) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, substitutions) for v in value]
    return value


def stubs_for(definition: dict[str, Any], scenario: dict[str, Override], substitutions: dict[str, str]) -> Callable[[str, Any], TaskStub | None]:
    states = all_states(definition)
    unknown_states = set(scenario) - set(states)
    assert not unknown_states, f"scenario names states the machine does not have: {sorted(unknown_states)}"

    def stub(state_name: str, state_input: Any) -> TaskStub | None:
        state = states.get(state_name)
        if state is None or state.get("Type") != "Task":
            return None
        override = scenario.get(state_name, {})
        if isinstance(override, TaskStub):
            return override
        if callable(override):
            override = override(state_input)
        synthesized = concrete(evaluate.service_result(evaluate.integration(state.get("Resource"))))
        return TaskStub(output=merged(synthesized, filled(override, substitutions)))

    return stub


# ---------------------------------------------------------------------------------------------- comparison


def _partial_pattern(text: str) -> str | None:
    """A regex for a partly known string: its known parts literally, each unknown part anything."""
    rest = re.sub(f"{OPEN}[^{CLOSE}]*{CLOSE}", "\x00", text)
    if OPEN in rest or CLOSE in rest:
        return None  # a marker cut by a string function: nothing is known for sure
    return ".*".join(re.escape(part) for part in rest.split("\x00"))


def differences(known: Any, actual: Any, where: str, counter: list[int]) -> list[str]:
    """Where the engine's value differs from validate's in what validate knows; counter[0] counts known leaves."""
    if whole_marker(known) is not None:
        return []
    here = where or "(whole value)"
    if isinstance(known, str) and is_unknown(known):
        pattern = _partial_pattern(known)
        if pattern is None:
            return []
        counter[0] += 1
        if isinstance(actual, str) and re.fullmatch(pattern, actual, re.DOTALL):
            return []
        return [f"{here}: validate computes {describe(known)!r}, the engine {actual!r}"]
    if isinstance(known, dict):
        if not isinstance(actual, dict):
            return [f"{here}: validate computes an object, the engine {actual!r}"]
        found: list[str] = []
        for key, value in known.items():
            if is_unknown(key):
                continue
            if key not in actual:
                if whole_marker(value) is None and not isinstance(value, UnknownMap):
                    found.append(f"{where}.{key}: validate computes {describe(value)!r}, the engine has no such field")
                continue
            found += differences(value, actual[key], f"{where}.{key}" if where else key, counter)
        if not isinstance(known, UnknownMap):
            extra = sorted(set(actual) - set(known))
            if extra:
                found.append(f"{here}: the engine has field(s) {', '.join(extra)} that validate does not compute")
        return found
    if isinstance(known, list):
        if not isinstance(actual, list) or len(actual) != len(known):
            return [f"{here}: validate computes {describe(known)}, the engine {json.dumps(actual)}"]
        return [d for i, (k, a) in enumerate(zip(known, actual)) for d in differences(k, a, f"{where}[{i}]", counter)]
    counter[0] += 1
    same_kind = isinstance(known, bool) == isinstance(actual, bool) and (known is None) == (actual is None)
    if same_kind and known == actual and type(known) is type(actual):
        return []
    return [f"{here}: validate computes {json.dumps(known)}, the engine {json.dumps(actual)}"]


@dataclasses.dataclass
class Entry:
    """A state the engine entered: its input, the request it sent (a Task) and the entry it came from."""

    id: int  # of its StateEntered event
    state: str
    input: Any
    parent: Entry | None  # the state it came from, or the Parallel/Map it runs in; None: the start
    scope: Entry | None  # the Parallel/Map it runs in
    skipped: bool = False  # a Map iteration after the first: validate follows the first item only
    request: Any = None
    has_request: bool = False


def engine_entries(history: list[dict[str, Any]]) -> list[Entry]:
    by_id = {e["id"]: e for e in history}

    def ancestors(event: dict[str, Any]) -> Any:
        while event.get("previousEventId"):
            event = by_id[event["previousEventId"]]
            yield event

    def entry_of(exited: dict[str, Any]) -> Entry:
        name = exited["stateExitedEventDetails"]["name"]
        return entries[next(a["id"] for a in ancestors(exited) if a.get("stateEnteredEventDetails", {}).get("name") == name)]

    entries: dict[int, Entry] = {}
    failed: dict[int, int] = {}  # Parallel/Map entry id -> the event where it failed
    for event in history:
        if "stateEnteredEventDetails" in event:
            parent, scope, skipped = None, None, False
            for ancestor in ancestors(event):
                if ancestor["type"] == "MapIterationStarted" and ancestor["mapIterationStartedEventDetails"]["index"] > 0:
                    skipped = True
                if "stateExitedEventDetails" in ancestor:
                    parent = entry_of(ancestor)
                    scope = parent.scope
                    break
                if "stateEnteredEventDetails" in ancestor:
                    parent = scope = entries[ancestor["id"]]
                    break
            details = event["stateEnteredEventDetails"]
            entries[event["id"]] = Entry(event["id"], details["name"], json.loads(details["input"]), parent, scope,
                                         skipped or (parent is not None and parent.skipped))
        elif event["type"] in ("ParallelStateFailed", "MapStateFailed"):
            culprit = entries[next(a["id"] for a in ancestors(event) if "stateEnteredEventDetails" in a)]
            if culprit.scope is not None:
                failed.setdefault(culprit.scope.id, event["id"])
        elif event["type"] == "TaskScheduled":
            entry = entries[next(a["id"] for a in ancestors(event) if "stateEnteredEventDetails" in a)]
            if entry.scope is not None and failed.get(entry.scope.id, event["id"]) < event["id"]:
                continue  # a sibling branch failed first: moto abandons this one midway, its request half-built
            if not entry.has_request:  # a retried Task schedules again with the next RetryCount: compare the first
                entry.request = json.loads(event["taskScheduledEventDetails"]["parameters"])
                entry.has_request = True
    return list(entries.values())


def evaluation_errors(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Errors of evaluating the ASL itself (moto catches them with States.ALL; AWS fails the execution)."""
    found = []
    for event in history:
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict) and details.get("error") in (
                    "States.Runtime", "States.QueryEvaluationError") and event["type"] != "ExecutionFailed":
                found.append((details["error"], details.get("cause", "")))
    return found


def visit_request(visit: evaluate.Visit) -> Any:
    if visit.has_params:
        return visit.params
    return visit.input if "InputPath" not in visit.state else unknown("any", "InputPath")


def disagreements(entries: list[Entry], visits: list[evaluate.Visit]) -> tuple[list[str], int]:
    """Follow the engine's run through validate's walk, state by state along the same transitions; return every
    disagreement and the number of known values compared."""
    problems: list[str] = []
    compared = 0
    aligned: dict[int, list[evaluate.Visit]] = {}  # entry id -> validate's visits that agree with it
    inherited: dict[int, set[str]] = {}  # entry id -> differences already reported upstream (a value carried along)
    for entry in entries:
        if entry.skipped or (entry.parent is not None and entry.parent.id not in aligned):
            continue
        sources = {id(None)} if entry.parent is None else {id(v) for v in aligned[entry.parent.id]}
        candidates = [v for v in visits if v.path[-1] == entry.state and any(id(p) in sources for p in v.parents)]
        came = f'from "{entry.parent.state}"' if entry.parent else "at the start"
        if not candidates:
            problems.append(f'"{entry.state}": the engine enters it {came}; validate does not follow that transition')
            continue
        parents_certain = entry.parent is None or any(v.certain for v in aligned[entry.parent.id])
        if parents_certain and not any(v.certain for v in candidates):
            problems.append(f'"{entry.state}": the engine enters it {came}; validate\'s Choice evaluation sends that input elsewhere')
        scored = []
        for visit in candidates:
            counter = [0]
            found = differences(visit.input, entry.input, "input", counter)
            if entry.has_request:
                found += differences(visit_request(visit), entry.request, "request", counter)
            scored.append((found, counter[0], visit))
        agreeing = [s for s in scored if not s[0]]
        if agreeing:
            aligned[entry.id] = [visit for _, _, visit in agreeing]
            compared += max(count for _, count, _ in agreeing)
        else:
            found, count, visit = min(scored, key=lambda s: len(s[0]))
            upstream = inherited.get(entry.parent.id, set()) if entry.parent else set()
            new = [d for d in found if d not in upstream]
            problems += [f'"{entry.state}" (entered {came}) {d}' for d in new]
            inherited[entry.id] = upstream | {d for d in found if d.startswith("input")}
            aligned[entry.id] = [visit]
            compared += count
    return problems, compared


# ---------------------------------------------------------------------------------------------- runs


@dataclasses.dataclass
class Case:
    machine: str
    sample: str
    scenario: str

    @property
    def id(self) -> str:
        return f"{self.machine}-{Path(self.sample).stem}-{self.scenario}"


PROJECT = Project(REPO_ROOT / "template.yaml")
# validate evaluates a state with at most 6 distinct inputs (evaluate.MAX_INPUTS_PER_STATE), which can stop it short of
# the path a scenario takes; the same evaluation with a higher bound follows it to the end.
WALK_BOUND = 20
SAMPLES = {m.logical_id: m.samples for m in PROJECT.machines}
# Each input runs the machine's first scenario; the first input runs every scenario.
# The first sample of a machine runs every scenario, the others the first one, and these: a path only another
# sample's input takes (the hourly input lists the model lines; the batch input names its own).
EVERY_SAMPLE = {"listing-failed"}
CASES = [Case(machine, sample, scenario)
         for machine, samples in SAMPLES.items() for index, (sample, _) in enumerate(samples)
         for position, scenario in enumerate(SCENARIOS.get(machine, {"synthesized": {}}))
         if index == 0 or position == 0 or scenario in EVERY_SAMPLE]


@dataclasses.dataclass
class Outcome:
    status: str
    entered: list[str]
    problems: list[str]
    compared: int


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("workspace"), time_scale=0.0001,
                      parameter_overrides={**BY_HAND, "MaxWaitAttempts": "2"}) as rt:  # bounded loops end fast
        yield rt


@pytest.fixture(scope="module")
def outcomes(runtime: LocalRuntime) -> Callable[[Case], Outcome]:
    done: dict[str, Outcome] = {}

    def outcome(case: Case) -> Outcome:
        if case.id not in done:
            done[case.id] = run_case(runtime, case)
        return done[case.id]

    return outcome


def run_case(runtime: LocalRuntime, case: Case) -> Outcome:
    sfn = runtime.client("stepfunctions")
    spec = runtime.state_machines[case.machine]
    described = sfn.describe_state_machine(stateMachineArn=spec.arn)
    definition = json.loads(described["definition"])  # what the engine runs, substitutions filled
    execution_input = dict(SAMPLES[case.machine])[case.sample]
    name = hashlib.md5(case.id.encode()).hexdigest()[:8] + "-" + case.scenario
    runtime.stub_tasks(stubs_for(definition, SCENARIOS.get(case.machine, {}).get(case.scenario, {}), spec.substitutions))
    try:
        record = runtime.run(case.machine, execution_input, name=name, timeout=60)
    finally:
        runtime.stub_tasks(None)
    entries = engine_entries(record.history)
    taken = {(e.parent.state, e.state) for e in entries if e.parent is not None}
    started = sfn.describe_execution(executionArn=record.execution_arn)["startDate"]
    settings = evaluate.WalkSettings(
        execution_name=record.name, state_machine_name=spec.name, state_machine_arn=spec.arn, role_arn=described["roleArn"],
        start_time=started.astimezone(dt.timezone.utc).isoformat(), entered_time=unknown("string", "$$.State.EnteredTime", 32))
    # validate's evaluation along the engine's transitions only (all of validate's paths would be too many to follow)
    walker = evaluate.Walker(dataclasses.replace(settings, max_inputs_per_state=WALK_BOUND, follow=lambda a, b: (a, b) in taken))
    walker.run(definition, execution_input)
    problems, compared = disagreements(entries, walker.visits)
    problems += [f'"{" > ".join(p.path)}": validate cannot evaluate it: {p.message}' for p in walker.problems if p.kind == "syntax"]
    problems += [f"the engine cannot evaluate an expression: {error}: {cause}" for error, cause in evaluation_errors(record.history)]
    return Outcome(record.status, [e.state for e in entries if not e.skipped], problems, compared)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validate_computes_the_state_inputs_and_requests_the_engine_sends(outcomes, case):
    # GIVEN a state machine, one of its events/ inputs and stubbed Task results
    # WHEN the engine runs it and validate walks it
    outcome = outcomes(case)
    # THEN they agree on every value validate knows, and there were values to compare
    assert not outcome.problems, "\n".join([f"{case.id} ({outcome.status}, entered {' → '.join(outcome.entered)}):", *outcome.problems])
    assert outcome.compared > 0


def test_the_scenarios_enter_every_state_validate_reaches(outcomes):
    # GIVEN validate's own walks (every path from every events/ input; a branch the input decides against is not reached)
    for machine in PROJECT.machines:
        reachable = {v.path[-1] for walk in flows.example_walks(machine) for v in walk.walker.visits if v.certain}
        # WHEN every scenario of the machine has run
        entered = {state for case in CASES if case.machine == machine.logical_id for state in outcomes(case).entered}
        # THEN each of those states was compared at least once
        missing = sorted(reachable - entered)
        assert not missing, f"{machine.logical_id}: no scenario enters {missing}; add one to SCENARIOS"
