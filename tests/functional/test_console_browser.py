"""The console in a real headless Chromium, after a scenario run in the local runtime: real credit data trained,
approved, deployed, scored; a training that fails; monitoring runs on clean then shifted real applications (the
first one's violations start a retraining, whose package waits for approval).

The console is mounted under /_console (as the local cloud mounts it) and served on an ephemeral port. Screenshots go
to test-artifacts/console/; with SAGESTEP_DOCS_SCREENSHOTS=1 the two the README shows are written to docs/ as well.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from sagestep.local import LocalRuntime
from sagestep.local.traffic import Traffic, load_rows
from sagestep.registry import approvals
from tests.conftest import REPO_ROOT, load_event

CHROMIUM = os.environ.get("SAGESTEP_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "console"
DOCS = REPO_ROOT / "docs"
ENDPOINT = "sagestep-dev-credit-data"
PREFIX = "/_console"
WAIT_MS = 180_000  # generous: live updates follow real jobs on a busy 2-core machine

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason=f"NO CHROMIUM at {CHROMIUM}: the console's browser tests did not run (`make browser` installs Debian's chromium)",
)


def monitoring_input() -> dict:
    execution_input = copy.deepcopy(load_event("monitoring_state_machine_hourly"))
    execution_input.update(WindowHours=2, EndOffsetHours=1, MergeStartOffset="-P1D", MergeEndOffset="-PT0S")
    return execution_input


def rule_started(runtime, package_arn: str, timeout: float = 120.0) -> str | None:
    """The execution the approval rule started for this package, where the local cloud fires the template's
    EventBridge rules (issue 12): its event log records the approval event and the delivery. None where no rule fired."""
    from sagestep.console.sources import Sources

    if not (runtime.workspace.root / "events.jsonl").is_file():
        return None  # this local runtime has no EventBridge
    log = Sources({}, runtime.workspace.root)
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in log.event_log() if package_arn in e.resources and e.detail.get("ModelApprovalStatus") == "Approved"]
        started = [m["executionArn"] for e in events for m in e.matches if m.get("executionArn")]
        if started or (events and not any(e.matches for e in events)) or time.monotonic() > deadline:
            return started[0] if started else None
        time.sleep(0.5)  # the event, then the rule's delivery, arrive in the background


def deploy(runtime, package_arn: str):
    """The deployment the approval rule started for an approved package."""
    arn = rule_started(runtime, package_arn)
    assert arn, f"the approval of {package_arn} started no deployment"
    return runtime.wait(arn)


def persist(runtime) -> None:
    """The in-process runtime of before the long-lived cloud (issue 11) writes the workspace only when told."""
    if hasattr(runtime, "save"):
        runtime.save()


def download(runtime, s3_uri: str, path: Path) -> Path:
    bucket, key = s3_uri[5:].split("/", 1)
    path.write_bytes(runtime.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    return path


def shifted(rows, factor: float):
    """The same real applications with incomes and amounts scaled: a known, injected drift."""
    instances = [{**r, "Income": None if r["Income"] is None else r["Income"] * factor, "Amount": r["Amount"] * factor}
                 for r in rows.instances]
    return dataclasses.replace(rows, instances=instances)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    with LocalRuntime(REPO_ROOT, workspace=tmp_path_factory.mktemp("ws"), time_scale=0.01,
                      parameter_overrides={"RetrainOnNewDataState": "DISABLED"}) as runtime:  # approvals deploy by the rule
        bucket = runtime.bucket("DataBucket")
        runtime.put_file(REPO_ROOT / "data" / "credit_data" / "credit_data.csv", f"s3://{bucket}/datasets/credit_data/credit_data.csv")
        runtime.put_file(REPO_ROOT / "ml" / "config" / "credit_data.yaml", f"s3://{bucket}/configs/credit_data.yaml")
        training_input = load_event("training_state_machine_credit_data")
        training = runtime.run("TrainingStateMachine", training_input, name="console-train")
        assert training.status == "SUCCEEDED", training.cause
        champion = training.output["Registered"]["ModelPackageArn"]
        approvals.decide(runtime.client("sagemaker"), champion, "approve", by="Ana Risk", reason="AUC and fairness reviewed")
        deployment = deploy(runtime, champion)
        assert deployment.status == "SUCCEEDED", deployment.cause
        failing = runtime.run("TrainingStateMachine", {**training_input, "Hyperparameters": {"learning_rate": "fast"}},
                              name="console-bad-hyperparameters")
        assert failing.status == "FAILED"
        test_csv = download(runtime, training.output["Run"]["OutputS3Uri"] + "preprocess/test/test.csv",
                            tmp_path_factory.mktemp("rows") / "test.csv")
        rows = load_rows(test_csv, dataset_config=REPO_ROOT / "ml" / "config" / "credit_data.yaml")
        report = Traffic(runtime, ENDPOINT, rows, rate=250, labels_after=0.0, run_id="clean").send(count=len(rows.instances))
        assert report.errors <= report.sent // 100, report.last_error  # the console needs traffic, not a perfect network
        clean = runtime.run("MonitoringStateMachine", monitoring_input(), name="console-monitor-clean")
        assert clean.status == "SUCCEEDED", clean.cause
        report = Traffic(runtime, ENDPOINT, shifted(rows, 3.0), rate=250, labels_after=0.0, run_id="drift").send(count=2 * len(rows.instances))
        assert report.errors <= report.sent // 100, report.last_error
        drift = runtime.run("MonitoringStateMachine", monitoring_input(), name="console-monitor-drift")
        assert drift.status == "SUCCEEDED", drift.cause
        # the monitoring runs' violations started a retraining: its package is the one to approve in the console
        sfn = runtime.client("stepfunctions")
        training_arn = runtime.state_machine_arn("TrainingStateMachine")
        retrainings = [e for e in sfn.list_executions(stateMachineArn=training_arn)["executions"] if e["name"].startswith("drift-")]
        assert retrainings, "the monitoring runs started no retraining"
        retraining = runtime.wait(retrainings[0]["executionArn"])
        assert retraining.status == "SUCCEEDED", retraining.cause
        runtime.flush_metrics()  # the endpoint's invocation metrics into CloudWatch now
        persist(runtime)
        yield {"runtime": runtime, "failing": failing.execution_arn, "pending": retraining.output["Registered"]["ModelPackageArn"],
               "training_input": training_input}


@pytest.fixture(scope="module")
def console_url(scenario):
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Response

    from sagestep.console import create_app

    runtime = scenario["runtime"]
    app = create_app(runtime.client, runtime.workspace.root, {"ArtifactsBucket": runtime.bucket("ArtifactsBucket")})
    root = DispatcherMiddleware(Response("the local cloud's own API lives here", status=404), {PREFIX: app})
    server = make_server("127.0.0.1", 0, root, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}{PREFIX}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(console_url):
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_playwright() as playwright:
        # launch_persistent_context gives Chromium a fresh --user-data-dir; nothing is downloaded.
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, viewport={"width": 1400, "height": 1000},
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        context.set_default_timeout(60_000)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture()
def browser_errors() -> list[str]:
    return []


@pytest.fixture()
def page(browser, browser_errors):
    page = browser.new_page()
    page.on("pageerror", lambda error: browser_errors.append(str(error)))
    page.on("console", lambda message: browser_errors.append(message.text) if message.type == "error" else None)
    yield page
    page.close()
    assert not browser_errors, f"errors in the browser: {browser_errors}"


def shot(page, name: str, docs_name: str | None = None) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if docs_name and os.environ.get("SAGESTEP_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        size = page.viewport_size
        page.set_viewport_size({"width": 1400, "height": 1480})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(DOCS / docs_name), full_page=False)
        page.set_viewport_size(size)


def follow(link) -> None:
    """Opens a link and waits for the page it leads to: click() returns once the new document is committed, before its
    body is parsed, and count() does not wait."""
    link.click()
    link.page.wait_for_load_state("load")


def test_every_page_opens_from_the_navigation(page, console_url):
    # GIVEN the console after the scenario WHEN each section is opened from the navigation bar
    page.goto(f"{console_url}/")
    for section, heading, expected in [
        ("Executions", "State machines and executions", "console-bad-hyperparameters"),
        ("Model registry", "Model registry", "sagestep-dev-credit-data"),
        ("Endpoints", "Endpoints", ENDPOINT),
        ("Monitoring", "Monitoring", "hourly"),
        ("Notifications & events", "Notifications and events", "violations"),
    ]:
        follow(page.get_by_role("link", name=section, exact=True))
        # THEN it shows its heading and what the scenario produced
        assert page.locator("h1").inner_text() == heading
        assert expected in page.locator("main").inner_text()
        shot(page, "page-" + re.sub(r"[^a-z]+", "-", section.lower()).strip("-"))
    # AND the pages below them open too: a group, an endpoint with its metrics, a schedule
    follow(page.get_by_role("link", name="Endpoints", exact=True))
    follow(page.get_by_role("link", name=ENDPOINT))
    assert "Invocations per period" in page.locator("main").inner_text()
    shot(page, "endpoint")
    follow(page.get_by_role("link", name="Model registry", exact=True))
    follow(page.get_by_role("link", name="sagestep-dev-credit-data"))
    assert page.locator("tbody tr").count() >= 2
    shot(page, "group")


def test_clicking_a_failed_state_shows_its_cause(page, console_url, scenario):
    # GIVEN the training that failed on a bad hyperparameter
    page.goto(f"{console_url}/execution/{scenario['failing']}")
    graph = page.locator("#graph svg")
    graph.wait_for()
    # THEN its graph colours the job state as caught and the named Fail state as failed; later states are not reached
    assert "st-caught" in page.locator('#graph [data-state="Train model"]').get_attribute("class")
    assert "st-failed" in page.locator('#graph [data-state="Training failed"]').get_attribute("class")
    assert "st-not-reached" in page.locator('#graph [data-state="Register model"]').get_attribute("class")
    # "What are they training" (a Map of the new-data path) and "Evaluate and baseline" (a Parallel)
    assert page.locator("#graph .cluster.container").count() == 2
    # WHEN the failed state is clicked
    page.locator('#graph [data-state="Training failed"]').click()
    panel = page.locator("#state-panel")
    panel.locator("h2", has_text="Training failed").wait_for()
    # THEN its error and cause are shown
    assert "States.TaskFailed" in panel.inner_text()
    assert "learning_rate" in panel.inner_text()
    # AND with the keyboard: Tab to the job state, Enter shows the job's timeline, failure and log
    page.locator('#graph [data-state="Train model"]').focus()
    page.keyboard.press("Enter")
    panel.locator("h2", has_text="Train model").wait_for()
    text = panel.inner_text()
    assert "SageMaker training job" in text and "Status timeline" in text
    assert "hyperparameter learning_rate must be float" in panel.locator("pre.cause-text").first.inner_text()
    assert "learning_rate" in panel.locator("pre.log").inner_text()
    shot(page, "execution-graph", docs_name="console-execution-graph.png")


def test_approving_a_package_from_the_console_records_who_and_why(page, console_url, scenario, browser_errors):
    runtime = scenario["runtime"]
    arn = scenario["pending"]
    page.goto(f"{console_url}/registry/package/{arn}")
    assert "pendingmanualapproval" in page.locator("h1").inner_text().lower()
    # WHEN the form is sent with a blank name THEN it is refused, naming what is missing, and nothing changes
    page.get_by_label("Your name").fill("   ")
    page.get_by_label("Reason").fill("retrained on drift; AUC reviewed")
    page.get_by_role("button", name="Approve").click()
    assert "Name must name the person deciding" in page.locator("#form-error").inner_text()
    assert browser_errors == ["Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"]
    browser_errors.clear()  # the refusal is an HTTP 400, which Chromium logs
    assert runtime.client("sagemaker").describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "PendingManualApproval"
    # WHEN a reviewer approves with a name and a reason
    page.get_by_label("Your name").fill("Ana Risk")
    page.get_by_label("Reason").fill("retrained on drift; AUC reviewed")
    page.get_by_role("button", name="Approve").click()
    page.locator("#decision-done").wait_for()
    # THEN the approval went through UpdateModelPackage: status, who, when and why are on the package
    described = runtime.client("sagemaker").describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    props = described["CustomerMetadataProperties"]
    assert props["ApprovedBy"] == "Ana Risk" and props["ApprovedReason"] == "retrained on drift; AUC reviewed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", props["ApprovedAt"])
    # AND the page shows it in the approval history
    history = page.locator("#approvals").inner_text()
    assert "Ana Risk" in history and "retrained on drift" in history
    # AND the template's DeployOnApproval rule started the deployment, which the package page shows without a reload
    assert rule_started(runtime, arn), "the approval started no deployment"
    page.locator("#package-executions tr", has_text="DeployOnApproval").wait_for(timeout=WAIT_MS)
    shot(page, "package-approved-deploying")
    shot(page, "package-approved")


def test_a_drifted_feature_time_series_crosses_its_threshold(page, console_url):
    page.goto(f"{console_url}/monitoring")
    follow(page.get_by_role("link", name="hourly"))
    # THEN the schedule lists both runs and flags the shifted features
    assert page.locator("#runs tbody tr").count() == 2
    flagged = page.locator("#features tbody tr", has_text="drifted")
    assert flagged.count() >= 1
    feature = flagged.first.locator("a").inner_text()
    assert feature in ("Income", "Amount")
    # WHEN the drifted feature is opened
    follow(flagged.first.locator("a"))
    assert page.locator("h1").inner_text() == f"{feature} over time"
    # THEN its distance series starts below the threshold and ends above it: one point marked over the line
    distance_chart = page.locator("svg.chart").first
    assert distance_chart.locator("circle.point.over").count() == 1
    assert distance_chart.locator("line.threshold").count() == 1
    rows = page.locator("table").first.locator("tbody tr")  # newest first: drift run, then clean run
    threshold = float(re.search(r"threshold ([\d.]+)", page.locator("table").first.locator("caption").inner_text()).group(1))
    assert float(rows.nth(0).locator("td").first.inner_text()) > threshold
    assert float(rows.nth(1).locator("td").first.inner_text()) < threshold
    # AND the baseline is drawn as a reference band on the quantile chart
    assert page.locator("svg.chart rect.band").count() >= 1
    shot(page, "monitoring-feature", docs_name="console-monitoring.png")


def test_executions_update_live_while_they_run(page, console_url, scenario):
    runtime = scenario["runtime"]
    page.goto(f"{console_url}/executions?machine=sagestep-dev-training")
    page.evaluate("window.__notReloaded = true")
    # WHEN an execution starts after the page was opened
    arn = runtime.start("TrainingStateMachine", {**scenario["training_input"], "Hyperparameters": {"learning_rate": "fast"}},
                        name="console-live")
    # THEN it appears, running, without a reload, and its end shows up the same way
    row = page.locator("tr", has_text="console-live")
    row.wait_for(timeout=WAIT_MS)
    row.locator(".badge.st-failed").wait_for(timeout=WAIT_MS)
    assert page.evaluate("window.__notReloaded") is True
    # AND its graph is coloured as it progresses on the detail page
    runtime.wait(arn)
    again = runtime.start("TrainingStateMachine", {**scenario["training_input"], "Hyperparameters": {"learning_rate": "fast"}},
                          name="console-live-graph")
    page.goto(f"{console_url}/execution/{again}")
    page.evaluate("window.__notReloaded = true")
    page.locator('#graph [data-state="Training failed"].st-failed').wait_for(timeout=WAIT_MS)
    assert page.evaluate("window.__notReloaded") is True
    assert "failed" in page.locator("#summary").inner_text()
    runtime.wait(again)
