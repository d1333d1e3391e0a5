"""Faults of endpoints and of what feeds monitoring: a model server that dies mid-traffic, a model that cannot start,
a model that answers in the wrong shape (smoke test), labels that arrive twice or late, the local cloud killed with
`kill -9` mid-run. Each ends in its designed state and the workspace answers its everyday commands after."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sagestep.local import LocalRuntime
from sagestep.local.traffic import Traffic, load_rows
from tests.conftest import REPO_ROOT, load_event
from tests.functional.archives import toy_model
from tests.reliability.catalogue import DESIGNED, FAULT, changed, checksums, clear_message, judge, run_cli
from tests.reliability.conftest import LINE, register, wait_for

SMOKE = load_event("smoke_test_credit_data")
SECOND_LINE = "sagestep-dev-reliability"


def rows_file(directory: Path, count: int) -> Path:
    path = directory / "rows.csv"
    rows = (SMOKE["Rows"] * (count // len(SMOKE["Rows"]) + 1))[:count]
    path.write_text(",".join(SMOKE["FeatureNames"]) + ",Status\n" + "".join(f"{r},{'bad' if i % 3 else 'good'}\n"
                                                                         for i, r in enumerate(rows)))
    return path


def test_model_server_killed_mid_traffic_is_replaced_and_failures_are_counted(world, tmp_path, request):
    # GIVEN traffic flowing to the live endpoint
    rows = load_rows(rows_file(tmp_path, 40), target="Status")
    before = checksums(tmp_path)
    traffic = Traffic(world.runtime, LINE, rows, rate=40.0, labels_after=0.0).start(count=40)
    assert wait_for(lambda: traffic.report.sent >= 10, timeout=120)
    # WHEN its model server is killed (the instance fails)
    servers = world.runtime.endpoints.servers[LINE]
    killed = {name: server.process.pid for name, server in servers.items()}
    for server in servers.values():
        server.process.send_signal(signal.SIGKILL)
    report = _finish(traffic)
    # THEN the endpoint stays InService with a new server, every failure is counted against its variant, and a
    # label is written only for the requests that were scored
    problems = []
    status = world.runtime.client("sagemaker").describe_endpoint(EndpointName=LINE)["EndpointStatus"]
    if status != "InService":
        problems.append(f"endpoint {status}")
    replaced = {name: server.process.pid for name, server in world.runtime.endpoints.servers[LINE].items()}
    if any(replaced.get(name) == pid for name, pid in killed.items()):
        problems.append("the killed server was not replaced")
    if "-" in report.by_variant:
        problems.append(f"requests attributed to no variant: {report.by_variant}")
    if report.labels_written != report.sent - report.errors:
        problems.append(f"labels {report.labels_written} for {report.sent - report.errors} scored requests")
    if report.sent != 40:
        problems.append(f"sent {report.sent}")
    judge(request, "model-server-killed-mid-traffic", FAULT, DESIGNED, problems, changed(before, checksums(tmp_path)),
          world.usable())


def _finish(traffic: Traffic):  # noqa: ANN202
    assert traffic._thread is not None
    traffic._thread.join(180)
    return traffic.report


def test_model_that_cannot_start_fails_the_deployment_and_says_why(world, request):
    # GIVEN an approved package of a new line whose model artifact is not a model
    arn = register(world.runtime, "cannot-start", b"not a tarball", "Approved", group=SECOND_LINE)
    # WHEN it is deployed
    record = world.runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, timeout=300)
    # THEN the deployment fails naming the endpoint's failure (the model's own error), and the new endpoint is removed
    problems = [] if record.status == "FAILED" else [f"{record.status} {record.error}"]
    problems += clear_message(str(record.cause), [SECOND_LINE, "Failed", "cannot download the model", "not a gzip file"])
    if "Delete new endpoint" not in record.states_entered():  # a new endpoint that never served is removed
        problems.append(f"states: {record.states_entered()}")
    judge(request, "endpoint-fails-to-start", FAULT, DESIGNED, problems + ([f"cause: {record.cause}"] if problems else []),
          [], world.usable())


def test_model_answering_in_the_wrong_shape_fails_the_smoke_test(world, request):
    # GIVEN an approved package of the live line whose serving code answers plain numbers (not the JSON contract)
    bucket = world.bucket
    world.runtime.client("s3").put_object(Bucket=bucket, Key="reliability/wrong-shape/code/inference.py",
                                          Body=(REPO_ROOT / "tests" / "functional" / "jobs" / "inference.py").read_bytes())
    arn = register(world.runtime, "wrong-shape", toy_model(1000), "Approved",
                   submit_directory=f"s3://{bucket}/reliability/wrong-shape/code/")
    live_config = world.runtime.client("sagemaker").describe_endpoint(EndpointName=LINE)["EndpointConfigName"]
    try:
        record = world.runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, timeout=300)
    finally:
        world.runtime.client("sagemaker").update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    # THEN the deployment fails as SmokeTestFailed and the previous config serves again
    problems = [] if record.error == "SmokeTestFailed" else [f"{record.status} {record.error}: {record.cause}"]
    sagemaker = world.runtime.client("sagemaker")
    after = wait_for(lambda: (lambda d: d if d["EndpointStatus"] != "Updating" else None)(
        sagemaker.describe_endpoint(EndpointName=LINE)), timeout=120) or sagemaker.describe_endpoint(EndpointName=LINE)
    if after["EndpointConfigName"] != live_config or after["EndpointStatus"] != "InService":
        problems.append(f"endpoint {after['EndpointStatus']} on {after['EndpointConfigName']}, was {live_config}")
    judge(request, "smoke-test-fails", FAULT, DESIGNED, problems, [], world.usable())


def _label(event_id: str, label: str) -> str:
    return json.dumps({"groundTruthData": {"data": label, "encoding": "CSV"}, "eventMetadata": {"eventId": event_id},
                       "eventVersion": "0"})


def _capture(event_id: str, when: str) -> str:
    return json.dumps({"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                                         "data": SMOKE["Rows"][0], "encoding": "CSV"},
                                       "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                                          "data": '{"predictions": [{"score": 0.7, "decision": "decline"}]}',
                                                          "encoding": "JSON"}},
                       "eventMetadata": {"eventId": event_id, "inferenceTime": when}, "eventVersion": "0"})


def _merge_tree(root: Path) -> None:
    capture = root / "capture" / "AllTraffic" / "2026" / "11" / "29" / "10"
    capture.mkdir(parents=True)
    capture.joinpath("c.jsonl").write_text("\n".join(_capture(f"r{i}", "2026-11-29T10:10:00Z") for i in range(4)) + "\n")
    labels = root / "gt" / "2026" / "11" / "29" / "11"
    labels.mkdir(parents=True)
    labels.joinpath("a.jsonl").write_text("\n".join(_label(f"r{i}", "1") for i in range(3)) + "\n")


@pytest.mark.parametrize("kind", ["duplicated", "late"])
def test_labels_duplicated_or_late_are_merged_once_or_kept_pending(tmp_path, kind, request):
    # GIVEN captured requests and their labels, where a label arrives twice (two files) or after the window
    _merge_tree(tmp_path)
    if kind == "duplicated":
        (tmp_path / "gt" / "2026" / "11" / "29" / "11" / "b.jsonl").write_text(_label("r0", "0") + "\n" + _label("r1", "1") + "\n")
    else:
        late = tmp_path / "gt" / "2026" / "11" / "29" / "14"
        late.mkdir(parents=True)
        late.joinpath("late.jsonl").write_text(_label("r3", "0") + "\n")
    before = checksums(tmp_path / "capture", tmp_path / "gt")
    argv = ["merge-ground-truth", "--capture", str(tmp_path / "capture"), "--ground-truth", str(tmp_path / "gt"),
            "--output", str(tmp_path / "out"), "--start-offset", "-PT4H", "--end-offset", "-PT0S",
            "--at", "2026-11-29T13:00:00Z"]
    result = run_cli(argv)
    # THEN each request is merged at most once (a duplicate label counted, not doubled); a late label waits
    report = json.loads(result.out) if result.code == 0 else {}
    merged = [json.loads(line) for f in sorted((tmp_path / "out").rglob("*.jsonl")) if "_merge_state" not in f.parts
              for line in f.read_text().splitlines() if line.strip()]
    ids = [m["eventMetadata"]["eventId"] for m in merged]
    problems = [] if result.code == 0 else [f"exit {result.code}: {result.err[-300:]}"]
    if len(ids) != len(set(ids)):
        problems.append(f"a request merged twice: {sorted(ids)}")
    if kind == "late" and "r3" in ids:
        problems.append("a label from after the window was merged")
    if sorted(ids) != ["r0", "r1", "r2"]:
        problems.append(f"merged {sorted(ids)}, report {report}")
    judge(request, f"labels-{kind}", FAULT, DESIGNED, problems, changed(before, checksums(tmp_path / "capture", tmp_path / "gt")),
          None)


def test_local_cloud_killed_mid_run_keeps_the_workspace_usable(world, tmp_path, request):
    # GIVEN a copy of the shared workspace served by `sagestep local up` in its own process, a run in progress
    from tests.functional.test_local_cloud import cloud_up

    workspace = tmp_path / "ws"
    shutil.copytree(world.workspace, workspace, ignore=shutil.ignore_patterns("cloud.json", "*.lock", "lock", "endpoints"))
    asl = tmp_path / "waits.asl.json"
    asl.write_text(json.dumps({"StartAt": "Wait a while", "States": {"Wait a while": {"Type": "Wait", "Seconds": 3600,
                                                                                      "End": True}}}))
    (tmp_path / "in.json").write_text("{}")
    with cloud_up(workspace) as (url, process, log):
        with LocalRuntime(REPO_ROOT, workspace=workspace) as client:  # a client of that cloud
            client.start(str(asl), {}, name="killed-mid-run")
        # WHEN the cloud process is killed (kill -9) while the execution runs
        process.send_signal(signal.SIGKILL)
        process.wait()
    # THEN the next command works on the workspace: the registry answers, the execution ended ABORTED
    listed = subprocess.run([sys.executable, "-m", "sagestep", "models", "list", "--workspace", str(workspace)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)  # its own cloud: a new process
    history = run_cli(["local", "history", "killed-mid-run", "--workspace", str(workspace)])
    problems = clear_message(history.out, ["killed-mid-run", "ABORTED"]) + clear_message(listed.stdout, [LINE])
    if problems:
        problems.append(f"history: {history.out[:300]} {history.err[-300:]}; list: {listed.stderr[-300:]}")
    judge(request, "local-cloud-killed-mid-run", FAULT, DESIGNED, problems, [], None)
