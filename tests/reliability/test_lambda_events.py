"""Bad events to the Lambda functions, called as Lambda calls them (`functions/<name>/app.py` handler(event, context))
with the template's environment and the shared local cloud behind boto3: each raises an error whose type and message
(what Step Functions shows as the task's error and cause) name the field and what it must be."""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, load_event
from tests.reliability.catalogue import BAD_INPUT, CLEAR, clear_message, judge

GATE = load_event("quality_gate_credit_data")
SMOKE = load_event("smoke_test_credit_data")
MERGE = load_event("merge_ground_truth_credit_look")
CONTEXT = load_event("monitoring_context_hourly")
DECIDE = load_event("ab_winner_decide")


@dataclass(frozen=True)
class Event:
    id: str
    function: str
    event: Any
    expect: tuple[str, ...]
    env: tuple[tuple[str, str | None], ...] = ()


def changed(document: dict, **values: Any) -> dict:
    out = copy.deepcopy(document)
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


CASES = [
    Event("quality-gate-empty", "quality_gate", {}, ("EvaluationS3Uri", "is required")),
    Event("quality-gate-no-model", "quality_gate", changed(GATE, ModelDataUrl=None), ("ModelDataUrl", "is required")),
    Event("quality-gate-local-path", "quality_gate", changed(GATE, DataS3Uri="/data/credit"), ("DataS3Uri", "s3:// URI")),
    Event("quality-gate-hyperparameters-numbers", "quality_gate", changed(GATE, HyperParameters={"num_round": 600}),
          ("HyperParameters", "object of strings")),
    Event("quality-gate-no-prefix-env", "quality_gate", GATE, ("MODEL_LINE_PREFIX",), env=(("MODEL_LINE_PREFIX", None),)),
    Event("smoke-no-endpoint", "smoke_test", changed(SMOKE, EndpointName=None), ("EndpointName", "is required")),
    Event("smoke-rows-empty", "smoke_test", changed(SMOKE, Rows=[]), ("Rows", "non-empty list")),
    Event("smoke-row-too-short", "smoke_test", changed(SMOKE, Rows=["1,2,3"]), ("Rows[0]", "3 values", "FeatureNames")),
    Event("smoke-row-with-header", "smoke_test", changed(SMOKE, Rows=["a,b\n1,2"]), ("Rows[0]", "one CSV line")),
    Event("smoke-feature-names-string", "smoke_test", changed(SMOKE, FeatureNames="Seniority,Time"),
          ("FeatureNames", "list")),
    Event("smoke-variant-empty", "smoke_test", changed(SMOKE, TargetVariant=""), ("TargetVariant",)),
    Event("ab-winner-action-unknown", "ab_winner", changed(DECIDE, Action="promote"), ("Action", "plan", "decide", "promote")),
    Event("ab-winner-no-action", "ab_winner", changed(DECIDE, Action=None), ("Action",)),
    Event("ab-winner-decide-plan-missing", "ab_winner", DECIDE, ("plan.json", "object not found", "step writing it")),
    Event("ab-winner-plan-no-config", "ab_winner", {"Action": "plan", "Design": {}}, ("DatasetConfigS3Uri", "is required")),
    Event("merge-at-not-a-time", "merge_ground_truth", changed(MERGE, At="yesterday"), ("yesterday",)),
    Event("merge-offset-not-duration", "merge_ground_truth", changed(MERGE, StartOffset="30 days"), ("30 days", "ISO-8601")),
    Event("monitoring-context-window-not-a-time", "monitoring_context",
          changed(CONTEXT, WindowStart="9am", ModelPackageArn=None), ("9am",)),
]


def _handler(function: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"reliability_{function}", REPO_ROOT / "functions" / function / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_event_raises_an_error_naming_the_field(case: Event, world, monkeypatch, request):
    # GIVEN the function's environment from the template and boto3 pointed at the shared local cloud
    spec = world.runtime.functions[next(n for n, f in world.runtime.functions.items()
                                        if f.code_dir.name == case.function)]
    for name, value in {**spec.environment, "AWS_ENDPOINT_URL": world.runtime.url, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, str(value))
    for name, value in case.env:
        if value is None:
            monkeypatch.delenv(name, raising=False)
    handler = _handler(case.function)
    # WHEN Lambda calls the handler with the bad event
    try:
        handler(copy.deepcopy(case.event), None)
        error = "no error raised"
    except Exception as exc:  # noqa: BLE001 - what Step Functions would record as the task's error and cause
        error = f"{type(exc).__name__}: {exc}"
    # THEN the error names the field and what it must be (a KeyError or a bare TypeError would not)
    problems = clear_message(error, case.expect)
    if error.startswith(("KeyError", "TypeError", "AttributeError", "IndexError")) or error == "no error raised":
        problems.append(f"unclear error {error[:300]}")
    if problems:
        problems.append(f"error: {error[:500]}")
    judge(request, f"lambda-{case.id}", BAD_INPUT, CLEAR, problems, [], None)
