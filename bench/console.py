"""Console page times with 1,000 executions and 100 monitoring periods, against the floor: the same API calls.

The workspace is built in the local runtime, as a user's would be:
- a real training run on credit_data, approved and deployed; real held-out applications scored through the
  endpoint (with labels) and one real monitoring run;
- 1,000 real executions of DeploymentStateMachine for packages that do not exist: each describes the package, fails,
  is caught, notifies and ends in "Deployment failed" (a real 5-state history with a caught error);
- 99 more monitoring periods: real data-quality reports computed by ml/monitor_data_quality.py (in-process) on
  resampled real held-out rows, incomes shifted by a growing factor in the last 30 periods, written to S3 where the
  monitoring state machine writes them (one hour apart); their model-quality and bias reports are the real run's.

Each page is requested through the console's WSGI app (in-process, no HTTP) `--repeat` times: the first request
(cold: nothing of it cached, its templates not yet compiled) and the median of the rest (warm). Floor: the API calls
that request made, replayed directly through the same boto3 clients right after it (so the page time minus the floor
is the console's own cost). Then a fresh console runs `warm()` (as the local cloud does in the background at start)
and the monitoring pages are visited once more: the first visit after warm-up.

    .venv/bin/python -m bench.console [--executions 1000] [--periods 100] [--repeat 5]

Goal (issue 13): every page ≤ 300 ms. Results: bench/results/console.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import importlib.util
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
GOAL_MS = 300.0
ENDPOINT = "sagestep-dev-credit"
SCHEDULE = "hourly"


def _load_event(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / f"{name}.json").read_text())


def build(runtime: Any, executions: int, periods: int, scratch_dir: Path, log: Any) -> dict[str, Any]:
    import pandas as pd

    from sagestep.local.traffic import Traffic, load_rows
    from sagestep.registry import approvals

    data_bucket, artifacts = runtime.bucket("DataBucket"), runtime.bucket("ArtifactsBucket")
    runtime.put_file(ROOT / "data" / "credit_data" / "credit_data.csv", f"s3://{data_bucket}/datasets/credit_data/credit_data.csv")
    runtime.put_file(ROOT / "ml" / "config" / "credit_data.yaml", f"s3://{data_bucket}/configs/credit_data.yaml")
    training = runtime.run("TrainingStateMachine", _load_event("training_state_machine_credit_data"), name="bench-train")
    assert training.status == "SUCCEEDED", training.cause
    package = training.output["Registered"]["ModelPackageArn"]
    approvals.decide(runtime.client("sagemaker"), package, "approve", by="bench", reason="console benchmark")
    deployment = runtime.run("DeploymentStateMachine", {"ModelPackageArn": package}, name="bench-deploy")
    assert deployment.status == "SUCCEEDED", deployment.cause
    test_csv = _download(runtime, training.output["Run"]["OutputS3Uri"] + "preprocess/test/test.csv", scratch_dir / "test.csv")
    rows = load_rows(test_csv, dataset_config=ROOT / "ml" / "config" / "credit_data.yaml")
    Traffic(runtime, ENDPOINT, rows, rate=500, labels_after=0.0, run_id="bench").send(count=len(rows.instances))
    monitoring_input = {**_load_event("monitoring_state_machine_hourly"), "WindowHours": 2, "EndOffsetHours": 1,
                        "MergeStartOffset": "-P1D", "MergeEndOffset": "-PT0S"}
    monitoring = runtime.run("MonitoringStateMachine", monitoring_input, name="bench-monitor")
    assert monitoring.status == "SUCCEEDED", monitoring.cause
    runtime.sync_from_disk()  # the endpoint's invocation metrics into CloudWatch now
    log(f"real runs done: training, deployment, {len(rows.instances)} scored, monitoring")

    started = time.perf_counter()
    sfn = runtime.client("stepfunctions")
    deployment_arn = runtime.state_machine_arn("DeploymentStateMachine")
    group = runtime.client("sagemaker").describe_model_package(ModelPackageName=package)["ModelPackageGroupName"]
    for index in range(executions):  # one at a time: moto's ASL parser is not safe to run in parallel threads
        missing = package.rsplit("/", 1)[0] + f"/{10_000 + index}"
        arn = sfn.start_execution(stateMachineArn=deployment_arn, name=f"bench-missing-{index:04d}",
                                  input=json.dumps({"ModelPackageArn": missing}))["executionArn"]
        record = runtime.wait(arn)
        assert record.status == "FAILED", f"{arn}: {record.status}"
    log(f"{executions} deployment executions in {time.perf_counter() - started:.0f} s")

    started = time.perf_counter()
    s3 = runtime.client("s3")
    real_prefix = monitoring.output["Run"]["ReportS3Uri"].split(f"s3://{artifacts}/", 1)[1]
    copies = {item["Key"][len(real_prefix):]: s3.get_object(Bucket=artifacts, Key=item["Key"])["Body"].read()
              for item in s3.list_objects_v2(Bucket=artifacts, Prefix=real_prefix).get("Contents", [])
              if not item["Key"][len(real_prefix):].startswith("data-quality/")}
    baseline_uri = monitoring.output["Context"]["BaselineS3Uri"]
    baseline_dir = scratch_dir / "baseline"
    baseline_dir.mkdir()
    for name in ("statistics.json", "constraints.json"):
        _download(runtime, baseline_uri.rstrip("/") + "/" + name, baseline_dir / name)
    spec = importlib.util.spec_from_file_location("bench_monitor_data_quality", ROOT / "ml" / "monitor_data_quality.py")
    monitor = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(monitor)
    held_out = pd.read_csv(test_csv)
    features = [c for c in held_out.columns if c in {f["name"] for f in json.loads((baseline_dir / "statistics.json").read_text())["features"]}]
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    for period in range(1, periods):
        sample = held_out[features].sample(n=500, replace=True, random_state=period)
        shift = 1.0 + max(0, period - (periods - 30)) * 0.05  # the last 30 periods drift, more and more
        sample["Income"] = (sample["Income"] * shift).round().astype("Int64")  # stays Integral, as the baseline
        capture, out = scratch_dir / f"c{period}", scratch_dir / f"o{period}"
        capture.mkdir()
        sample.to_csv(capture / "capture.csv", index=False)
        with contextlib.redirect_stdout(io.StringIO()):
            code = monitor.main(["--input-dir", str(capture), "--baseline-dir", str(baseline_dir), "--output-dir", str(out),
                                 "--endpoint", ENDPOINT, "--schedule", SCHEDULE])
        assert code == 0, f"monitor_data_quality failed for period {period}"
        hour = now - dt.timedelta(hours=periods - period)
        prefix = f"monitoring/{ENDPOINT}/{SCHEDULE}/{hour:%Y/%m/%d/%H}/bench-period-{period:03d}/"
        for path in sorted(out.iterdir()):
            s3.put_object(Bucket=artifacts, Key=f"{prefix}data-quality/{path.name}", Body=path.read_bytes())
        for rest, body in copies.items():
            s3.put_object(Bucket=artifacts, Key=prefix + rest, Body=body)
    log(f"{periods - 1} more monitoring periods in {time.perf_counter() - started:.0f} s")
    return {"training": training.execution_arn, "package": package, "group": group, "deployment_machine": "sagestep-dev-deployment",
            "deployment_executions": executions + 1}


def _download(runtime: Any, s3_uri: str, path: Path) -> Path:
    bucket, key = s3_uri[5:].split("/", 1)
    path.write_bytes(runtime.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    return path


def measure(runtime: Any, facts: dict[str, Any], repeat: int) -> list[dict[str, Any]]:
    from werkzeug.test import Client

    from sagestep.console import create_app

    app = create_app(runtime.client, runtime.workspace.root, {"ArtifactsBucket": runtime.bucket("ArtifactsBucket")})
    last: list[Any] = []
    app.on_request = lambda calls: last.__setitem__(slice(None), calls)
    client = Client(app)
    training = facts["training"]
    pages = [
        ("executions (all machines)", "/executions"),
        (f"executions of one machine ({facts['deployment_executions']:,})", f"/executions?machine={facts['deployment_machine']}"),
        ("executions, failed only", f"/executions?machine={facts['deployment_machine']}&status=FAILED"),
        ("execution graph (training)", f"/execution/{training}"),
        ("state panel (training job)", f"/execution/{training}?state=Train+model&fragment=state"),
        ("execution live update", f"/execution/{training}?fragment=live"),
        ("registry", "/registry"),
        ("registry group", f"/registry/group/{facts['group']}"),
        ("model package", f"/registry/package/{facts['package']}"),
        ("endpoints", "/endpoints"),
        ("endpoint", f"/endpoints/{ENDPOINT}"),
        ("monitoring", "/monitoring"),
        (f"monitoring schedule ({SCHEDULE}, 100 runs)", f"/monitoring/{ENDPOINT}/{SCHEDULE}"),
        ("feature over time (Income)", f"/monitoring/{ENDPOINT}/{SCHEDULE}/feature/Income"),
        ("notifications and events", "/notifications"),
    ]
    rows = []
    for label, url in pages:
        samples, floors, calls_seen = [], [], []
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, f"{url}: {response.status_code} {response.get_data(as_text=True)[:500]}"
            timing = response.headers.get("Server-Timing", "")
            made = list(last)
            samples.append(elapsed)
            floors.append(_replay(app, made))
            calls_seen.append(len(made))
        warm = samples[1:] or samples
        warm_floor = floors[1:] or floors
        rows.append({"page": label, "url": url, "cold_ms": round(samples[0] * 1000, 1), "cold_floor_ms": round(floors[0] * 1000, 1),
                     "cold_calls": calls_seen[0], "warm_ms": round(statistics.median(warm) * 1000, 1),
                     "warm_floor_ms": round(statistics.median(warm_floor) * 1000, 1), "warm_calls": calls_seen[-1],
                     "server_timing": timing})
        print(f"{label:42s} cold {rows[-1]['cold_ms']:8.1f} ms (floor {rows[-1]['cold_floor_ms']:7.1f}, {calls_seen[0]:3d} calls)"
              f"   warm {rows[-1]['warm_ms']:7.1f} ms (floor {rows[-1]['warm_floor_ms']:7.1f}, {calls_seen[-1]:3d} calls)", flush=True)
    # A console started with warm() in the background (as the local cloud does) before anyone opens Monitoring.
    fresh = create_app(runtime.client, runtime.workspace.root, {"ArtifactsBucket": runtime.bucket("ArtifactsBucket")})
    started = time.perf_counter()
    runs = fresh.warm()
    warm_seconds = time.perf_counter() - started
    fresh_client = Client(fresh)
    for row in rows:
        if row["url"].startswith("/monitoring"):
            started = time.perf_counter()
            assert fresh_client.get(row["url"]).status_code == 200
            row["first_after_warm_ms"] = round((time.perf_counter() - started) * 1000, 1)
            row["warm_up_seconds"] = round(warm_seconds, 1)
            print(f"{row['page']:42s} first visit after warm() ({runs} runs read in {warm_seconds:.1f} s): "
                  f"{row['first_after_warm_ms']:.1f} ms", flush=True)
    return rows


def _replay(app: Any, calls: list[Any]) -> float:
    """The same API calls, made directly through the console's clients: what any page showing these facts costs."""
    from botocore import xform_name

    started = time.perf_counter()
    for call in calls:
        client = app.sources.client(call.service)
        try:
            getattr(client, xform_name(call.operation))(**copy.deepcopy(call.params))
        except client.exceptions.ClientError:
            pass  # the page made this call and got this error too (e.g. HeadObject of a report that does not exist)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--periods", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS / "console.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from sagestep.local import LocalRuntime

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workspace, tempfile.TemporaryDirectory() as scratch, \
            LocalRuntime(ROOT, workspace=Path(workspace), time_scale=0.01) as runtime:
        facts = build(runtime, args.executions, args.periods, Path(scratch), lambda m: print(f"[{time.perf_counter() - started:6.0f} s] {m}", flush=True))
        if hasattr(runtime, "save"):  # the in-process runtime of before issue 11 writes the workspace only when told
            runtime.save()
        sfn = runtime.client("stepfunctions")
        total = sum(len(page["executions"]) for machine in sfn.list_state_machines()["stateMachines"]
                    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"]))
        rows = measure(runtime, facts, args.repeat)
    worst = max(r["warm_ms"] for r in rows)
    result = {
        "benchmark": "console", "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end",
        "executions": total,
        "monitoring_periods": args.periods, "repeat": args.repeat, "goal_ms": GOAL_MS, "pages": rows,
        "worst_warm_ms": worst, "pages_over_goal_warm": [r["page"] for r in rows if r["warm_ms"] > GOAL_MS],
        "pages_over_goal_cold": [r["page"] for r in rows if r["cold_ms"] > GOAL_MS],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"worst warm page {worst:.0f} ms (goal {GOAL_MS:.0f} ms); over the goal cold: {result['pages_over_goal_cold'] or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
