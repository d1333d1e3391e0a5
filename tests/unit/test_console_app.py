"""The console's WSGI app with stand-in clients: URL prefix, the approval form's checks, readers of the workspace."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client

from sagestep.console import create_app
from sagestep.console.app import approval_history
from sagestep.console.charts import Line, Series, chart, fmt
from sagestep.console.sources import Sources

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/credit/3"


class _Events:
    def register(self, *_: Any) -> None:
        pass


class _Meta:
    events = _Events()


class FakeSageMaker:
    """Just enough of the SageMaker client for the registry pages and `approvals.decide`."""

    meta = _Meta()

    class exceptions:  # noqa: N801 - mirrors boto3's client.exceptions
        ClientError = KeyError

    def __init__(self) -> None:
        self.package = {"ModelPackageArn": ARN, "ModelPackageGroupName": "credit", "ModelPackageVersion": 3,
                        "ModelApprovalStatus": "PendingManualApproval",
                        "CustomerMetadataProperties": {"DatasetName": "credit_data", "QualityGate": "Passed"}}
        self.updates: list[dict[str, Any]] = []

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803
        if ModelPackageName != ARN:
            raise KeyError(ModelPackageName)
        return json.loads(json.dumps(self.package))

    def update_model_package(self, **kwargs: Any) -> None:
        self.updates.append(kwargs)
        self.package["ModelApprovalStatus"] = kwargs["ModelApprovalStatus"]
        self.package["ApprovalDescription"] = kwargs["ApprovalDescription"]
        self.package["CustomerMetadataProperties"].update(kwargs["CustomerMetadataProperties"])


class FakeS3:
    meta = _Meta()

    def head_object(self, **_: Any) -> None:
        raise KeyError("absent")

    def list_buckets(self) -> dict[str, Any]:
        return {"Buckets": []}


class FakeStepFunctions:
    meta = _Meta()


@pytest.fixture()
def console(tmp_path):
    sagemaker = FakeSageMaker()
    clients = {"sagemaker": sagemaker, "s3": FakeS3(), "stepfunctions": FakeStepFunctions()}
    app = create_app(clients, tmp_path, {"ArtifactsBucket": "artifacts"})
    return Client(app), sagemaker


def post(client: Client, origin: str | None, **form: str):
    headers = {"Origin": origin} if origin else {}
    return client.post("/registry/decide", data={"arn": ARN, **form}, headers=headers,
                       base_url="http://127.0.0.1:4566/_console")


def test_pages_under_a_prefix_link_within_the_prefix(console):
    client, _ = console
    response = client.get("/registry/package/" + ARN, environ_overrides={"SCRIPT_NAME": "/_console"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'href="/_console/static/console.css"' in html
    assert 'action="/_console/registry/decide"' in html
    assert 'href="/static/' not in html


def test_a_decision_from_another_origin_is_refused(console):
    client, sagemaker = console
    response = post(client, "http://evil.example", decision="approve", by="Ana Risk", reason="reviewed")
    assert response.status_code == 403
    assert sagemaker.updates == []
    assert post(client, None, decision="approve", by="Ana Risk", reason="reviewed").status_code == 403


def test_a_decision_without_a_name_is_refused_with_the_reason_on_the_form(console):
    client, sagemaker = console
    response = post(client, "http://127.0.0.1:4566", decision="approve", by="   ", reason="AUC reviewed")
    assert response.status_code == 400
    assert "Name must name the person deciding" in response.get_data(as_text=True)
    assert sagemaker.updates == []


def test_an_approval_goes_through_update_model_package_with_who_when_and_why(console):
    client, sagemaker = console
    response = post(client, "http://127.0.0.1:4566", decision="approve", by="Ana Risk", reason="AUC and fairness reviewed")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/_console/registry/package/")
    (update,) = sagemaker.updates
    assert update["ModelApprovalStatus"] == "Approved"
    assert update["CustomerMetadataProperties"]["ApprovedBy"] == "Ana Risk"
    assert "AUC and fairness reviewed" in update["ApprovalDescription"]


def test_approval_history_keeps_every_numbered_decision_in_time_order():
    package = {"ModelApprovalStatus": "Approved", "ApprovalDescription": "Approved by B at 2026-02-01T00:00:00Z: fixed",
               "CustomerMetadataProperties": {
                   "Rejected1By": "A", "Rejected1At": "2026-01-01T00:00:00Z", "Rejected1Reason": "AUC too low",
                   "Approved2By": "B", "Approved2At": "2026-02-01T00:00:00Z", "Approved2Reason": "fixed",
                   "ApprovedBy": "B", "ApprovedAt": "2026-02-01T00:00:00Z", "ApprovedReason": "fixed"}}
    rows = approval_history(package)
    assert [(r["decision"], r["by"]) for r in rows] == [("Rejected", "A"), ("Approved", "B")]


def test_event_log_is_optional_and_bad_lines_are_skipped(tmp_path):
    sources = Sources({}, tmp_path)
    assert sources.event_log() == [] and sources.execution_causes() == {}
    execution = "arn:aws:states:us-east-1:123456789012:execution:deploy:abc"
    approval = {"version": "0", "id": "e-1", "detail-type": "SageMaker Model Package State Change", "source": "aws.sagemaker",
                "time": "2026-11-29T08:00:00Z", "resources": [ARN], "detail": {"ModelPackageArn": ARN, "ModelApprovalStatus": "Approved"}}
    lines = [  # as the local cloud's EventBridge writes them (sagestep.local.bus)
        json.dumps({"type": "event", "received": "2026-11-29T08:00:00.1+00:00", "origin": "sagemaker:UpdateModelPackage",
                    "event": approval, "matched": ["DeployOnApproval"], "matched_disabled": []}),
        "{not json",
        json.dumps({"type": "delivery", "event_id": "e-1", "rule": "DeployOnApproval", "target": "arn:...:stateMachine:deploy",
                    "execution": execution, "attempts": 1}),
        json.dumps({"type": "event", "origin": "schedule", "event": {"id": "e-2", "schedule": "MonitorOnSchedule",
                    "time": "2026-11-29T09:00:00Z"}, "matched": ["MonitorOnSchedule"]}),
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    events = sources.event_log()
    assert [e.detail_type for e in events] == ["Scheduled Event", "SageMaker Model Package State Change"]
    cause = sources.start_cause(execution)
    assert (cause.kind, cause.label) == ("rule", "DeployOnApproval")
    parent = "arn:aws:states:us-east-1:123456789012:execution:monitoring:run-1"
    child = sources.start_cause("arn:other", {"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": parent})
    assert (child.kind, child.execution_arn) == ("execution", parent)
    assert sources.start_cause("arn:other", "{}").kind == "client"


def test_chart_marks_points_above_the_threshold_and_describes_itself():
    svg = str(chart([Series("distance", [0.01, 0.02, 0.45])], categories=["a", "b", "c"], title="Income drift",
                    lines=[Line(0.1, "threshold")]))
    assert svg.count('class="point s1 over"') == 1
    assert "distance at c: 0.45 (above threshold)" in svg
    assert "1 point(s) above it" in svg
    assert (fmt(4355.0), fmt(0.000123), fmt(0.84636), fmt(None)) == ("4,355", "0.00012", "0.8464", "–")


def test_feature_digest_reads_quantiles_from_the_kll_sketch_and_drift_from_the_report(credit_data):
    from sagestep.console.monitoring import digest
    from sagestep.monitoring.statistics import compute_statistics

    # GIVEN Model Monitor statistics of the real credit data's incomes and a drift report flagging them
    statistics = compute_statistics(credit_data[["Income", "Home"]])
    drift = {"features": [{"name": "Income", "distance": 0.31, "threshold": 0.1, "psi": 0.4, "flagged": True}]}
    # WHEN the console digests them
    income = digest(statistics, drift)["Income"]
    # THEN the quantiles agree with the data (KLL keeps every item below its capacity) and missing % is exact
    present = credit_data["Income"].dropna()
    assert income["p50"] == pytest.approx(present.quantile(0.5, interpolation="lower"), rel=0.02)
    assert income["p05"] <= income["p25"] <= income["p50"] <= income["p75"] <= income["p95"]
    assert income["missing_pct"] == pytest.approx(100 * credit_data["Income"].isna().mean())
    assert (income["distance"], income["threshold"], income["flagged"]) == (0.31, 0.1, True)
    home = digest(statistics, drift)["Home"]
    assert home["top"][0][0] == credit_data["Home"].mode()[0] and "distance" not in home


def test_monitoring_runs_are_relisted_from_the_newest_window_hour_only(monkeypatch):
    import datetime as dt

    from sagestep.console import monitoring

    base = "monitoring/ep/hourly/"
    stamp = dt.datetime(2026, 11, 29, 8, tzinfo=dt.timezone.utc)

    def run_keys(hour: int, execution: str) -> list[dict]:
        return [{"Key": f"{base}2026/11/29/{hour:02d}/{execution}/{rest}", "ETag": '"e"', "LastModified": stamp}
                for rest in ("data-quality/summary.json", "data-quality/statistics.json")]

    class Listing:
        def __init__(self) -> None:
            self.keys = run_keys(6, "run-a") + run_keys(7, "run-b")
            self.calls: list[str | None] = []

        def artifacts_bucket(self) -> str:
            return "artifacts"

        def list_keys(self, bucket: str, prefix: str, start_after: str | None = None) -> list[dict]:
            self.calls.append(start_after)
            return sorted((k for k in self.keys if k["Key"].startswith(prefix) and k["Key"] > (start_after or "")), key=lambda k: k["Key"])

    sources = Listing()
    monitor = monitoring.Monitoring(sources)  # type: ignore[arg-type]
    assert [r.execution for r in monitor.runs("ep", "hourly")] == ["run-a", "run-b"]
    # WHEN a new run lands (same window hour as the newest, and the next hour) and the listing is refreshed
    sources.keys += run_keys(7, "run-c") + run_keys(8, "run-d")
    monkeypatch.setattr(monitoring, "LISTING_TTL_SECONDS", 0.0)
    runs = monitor.runs("ep", "hourly")
    # THEN only the newest hour and later were listed, and every run is there
    assert sources.calls == [None, f"{base}2026/11/29/07/"]
    assert [r.execution for r in runs] == ["run-a", "run-b", "run-c", "run-d"]
    # AND runs sharing a window (run-b, run-c) are named by when they ended
    assert {r.label for r in runs} == {"11-29 08:00:00"}
