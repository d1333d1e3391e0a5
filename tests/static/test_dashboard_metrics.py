"""Every metric the dashboard or an alarm names is one that something emits (namespace, name, dimensions): AWS's
own metrics as AWS documents them, or the stack's, from the code that writes them — no widget that stays empty."""

from __future__ import annotations

import ast
import json
import re

import pytest

from sagestep.aws import metrics
from sagestep.monitoring import pipeline as monitoring_run
from sagestep.validate.project import Project
from tests.conftest import REPO_ROOT

# Published by AWS (CloudWatch metrics pages of the Step Functions, Lambda and SageMaker developer guides).
AWS_PUBLISHED = {
    "AWS/States": ({"ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut",
                    "ExecutionsAborted", "ExecutionTime", "ExecutionThrottled"}, {("StateMachineArn",)}),
    "AWS/Lambda": ({"Errors", "Throttles", "Invocations", "Duration", "ConcurrentExecutions"}, {("FunctionName",)}),
    "AWS/SageMaker": ({"Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "InvocationModelErrors",
                       "ModelLatency", "OverheadLatency", "InvocationsPerInstance"}, {("EndpointName", "VariantName")}),
}
NAMESPACE = "sagestep-dev"  # POWERTOOLS_METRICS_NAMESPACE with Environment=dev (template Globals)


def code_emitted() -> dict[str, tuple[set[str], set[tuple[str, ...]]]]:
    """The stack's own metrics, from the code: the monitoring report's PutMetricData batches (run on one summary per
    check, with the metric names the ml/ monitors write) and the functions' Powertools metrics catalogue."""
    summaries = [{"Check": "data_quality", "Metrics": {"feature_baseline_drift_Income": 0.1}},
                 {"Check": "model_quality", "Metrics": {"auc": 0.8}},
                 {"Check": "bias_attribution", "Metrics": {"disparate_impact_Sex": 0.9}}]
    emitted: dict[str, tuple[set[str], set[tuple[str, ...]]]] = {}
    for namespace, data in monitoring_run.metric_data(summaries, "sagestep-dev-credit-data", "hourly").items():
        names, dims = emitted.setdefault(namespace, (set(), set()))
        for datum in data:
            names.add(datum["MetricName"])
            dims.add(tuple(d["Name"] for d in datum["Dimensions"]))
    emitted[NAMESPACE] = (set(metrics.CATALOGUE), set(metrics.CATALOGUE.values()))
    return emitted


def _named_metrics() -> list[tuple[str, str, str, tuple[str, ...], bool]]:
    """(where, namespace, metric name, dimension names, name is a prefix) of every widget and alarm."""
    project = Project(REPO_ROOT / "template.yaml")
    found = []
    for logical_id, resource in project.resources.items():
        props = project.resolver.resolve(resource.get("Properties") or {}) if resource.get("Type") in (
            "AWS::CloudWatch::Dashboard", "AWS::CloudWatch::Alarm") else {}
        if resource.get("Type") == "AWS::CloudWatch::Dashboard":
            for widget in json.loads(props["DashboardBody"])["widgets"]:
                for row in widget["properties"].get("metrics", []):
                    where = f"{logical_id} widget {widget['properties']['title']!r}"
                    if isinstance(row[0], dict):
                        found += [(where, *parsed) for parsed in _search(row[0]["expression"])]
                    else:
                        values = [v for v in row if not isinstance(v, dict)]
                        found.append((where, values[0], values[1], tuple(values[2::2]), False))
        elif resource.get("Type") == "AWS::CloudWatch::Alarm":
            if "MetricName" in props:
                found.append((logical_id, props["Namespace"], props["MetricName"],
                              tuple(d["Name"] for d in props.get("Dimensions", [])), False))
            for query in props.get("Metrics", []):
                if "MetricStat" in query:
                    metric = query["MetricStat"]["Metric"]
                    found.append((logical_id, metric["Namespace"], metric["MetricName"],
                                  tuple(d["Name"] for d in metric.get("Dimensions", [])), False))
    for path in sorted((REPO_ROOT / "statemachines").glob("*.asl.json")):  # alarms the pipelines put per model line
        definition = json.loads(path.read_text())
        for name, state in _tasks(definition):
            if state.get("Resource", "").endswith(":cloudwatch:putMetricAlarm"):
                args = state["Parameters"]
                found.append((f"{path.name} {name!r}", args["Namespace"], args["MetricName"],
                              tuple(d["Name"] for d in args["Dimensions"]), False))
    return found


def _tasks(definition: dict) -> list[tuple[str, dict]]:
    out = []
    for name, state in definition.get("States", {}).items():
        out.append((name, state))
        for branch in state.get("Branches", []):
            out += _tasks(branch)
        if "ItemProcessor" in state:
            out += _tasks(state["ItemProcessor"])
    return out


_SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)'")


def _search(expression: str) -> list[tuple[str, str, tuple[str, ...], bool]]:
    parsed = []
    for match in _SEARCH.finditer(expression):
        namespace, *dims = [part.strip() for part in match["schema"].split(",")]
        name = re.search(r'MetricName="([^"]+)"', match["terms"])
        assert name, f"{expression}: a dashboard SEARCH must name its MetricName"
        parsed.append((namespace, name.group(1), tuple(dims), name.group(1).endswith("_")))
    assert parsed, f"{expression}: not a SEARCH expression the check understands"
    return parsed


def test_every_metric_a_widget_or_alarm_names_is_emitted_with_those_dimensions():
    emitted = {**{ns: (names, dims) for ns, (names, dims) in AWS_PUBLISHED.items()}, **code_emitted()}
    named = _named_metrics()
    assert len(named) > 40  # the dashboard's widgets, the template's alarms and the pipelines' endpoint alarms
    for where, namespace, name, dims, prefix in named:
        assert namespace in emitted, f"{where}: namespace {namespace} is emitted by nothing ({sorted(emitted)})"
        names, dimension_sets = emitted[namespace]
        known = any(n.startswith(name) for n in names) if prefix else name in names
        assert known, f"{where}: {namespace} {name} is emitted by nothing (emitted: {sorted(names)})"
        assert tuple(sorted(dims)) in {tuple(sorted(d)) for d in dimension_sets}, (
            f"{where}: {namespace} {name} with dimensions {dims}; emitted with {sorted(dimension_sets)}")


def test_the_catalogued_metrics_are_emitted_by_the_functions_with_their_dimensions():
    # GIVEN every metrics.emit(...) call in functions/*/app.py
    calls = {}
    for app in sorted((REPO_ROOT / "functions").glob("*/app.py")):
        for node in ast.walk(ast.parse(app.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "emit"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "metrics"):
                calls[node.args[0].value] = tuple(k.arg for k in node.keywords)
    # THEN each catalogued metric is emitted, with exactly its dimensions, and nothing else is
    assert calls == metrics.CATALOGUE


def test_emit_writes_embedded_metric_format_in_the_stack_namespace(monkeypatch, capsys):
    monkeypatch.setenv(metrics.NAMESPACE_ENV, NAMESPACE)
    metrics.emit("GateDecisions", 1, Outcome="refused")
    document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE and directive["Dimensions"] == [["Outcome"]]
    assert directive["Metrics"][0]["Name"] == "GateDecisions" and document["GateDecisions"] in (1, 1.0, [1.0])
    with pytest.raises(ValueError, match="not in sagestep.aws.metrics.CATALOGUE"):
        metrics.emit("GateDecisions", 1, Outcome="passed", ModelLine="credit-data")
