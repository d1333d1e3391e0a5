"""Faults around the runs: a job stopped or past its time limit, a disk that fills while a state file is written, a
state file damaged by a crash, two reviewers deciding at once, Ctrl-C while a command follows a run. Each ends in its
designed state (named, said on one line, nothing lost) and the workspace answers its everyday commands after."""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from sagestep.local import files
from sagestep.registry import approvals
from tests.conftest import REPO_ROOT
from tests.reliability.catalogue import DESIGNED, FAULT, changed, checksums, clear_message, judge, run_cli
from tests.reliability.conftest import LINE, SEED_EXECUTION, register, wait_for

SLEEPER = {
    "StartAt": "Sleep in a job",
    "States": {
        "Sleep in a job": {
            "Type": "Task",
            "Resource": "arn:${Partition}:states:::sagemaker:createProcessingJob.sync",
            "Parameters": {
                "ProcessingJobName.$": "States.Format('{}-sleep', $$.Execution.Name)",
                "RoleArn": "${SageMakerRoleArn}",
                "AppSpecification": {"ImageUri": "${JobImageUri}",
                                     "ContainerEntrypoint": ["python3", "-c", "import time; time.sleep(120)"]},
                "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "${ProcessingInstanceType}",
                                                          "VolumeSizeInGB": 5}},
                "StoppingCondition": {"MaxRuntimeInSeconds.$": "$.MaxRuntimeInSeconds"},
            },
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.Error", "Next": "Job did not complete"}],
            "End": True,
        },
        "Job did not complete": {"Type": "Fail", "ErrorPath": "$.Error.Error", "CausePath": "$.Error.Cause"},
    },
}


@pytest.fixture(scope="module")
def sleeper(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("asl") / "sleeper.asl.json"
    path.write_text(json.dumps(SLEEPER))
    return str(path)


def job_of(record) -> dict:  # noqa: ANN001
    return json.loads(record.cause)


def test_job_past_its_time_limit_is_stopped_and_the_run_fails_naming_it(world, sleeper, request):
    # GIVEN a job that runs longer than its StoppingCondition allows
    record = world.runtime.run(sleeper, {"MaxRuntimeInSeconds": 1}, timeout=120)
    # THEN the job is Stopped for MaxRuntimeExceeded and the run fails with the job's description as cause
    job = job_of(record)
    problems = [] if record.status == "FAILED" and job.get("ProcessingJobStatus") == "Stopped" else [f"{record.status} {job}"]
    problems += clear_message(json.dumps(job), ["MaxRuntimeInSeconds"])
    judge(request, "job-times-out", FAULT, DESIGNED, problems, [], world.usable())


def test_job_stopped_while_it_runs_ends_the_run_as_stopped(world, sleeper, request):
    # GIVEN a long job; WHEN someone stops it (StopProcessingJob) while it runs
    arn = world.runtime.start(sleeper, {"MaxRuntimeInSeconds": 600})
    name = arn.rsplit(":", 1)[-1] + "-sleep"
    sagemaker = world.runtime.client("sagemaker")

    def running() -> bool:
        try:
            return sagemaker.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "InProgress"
        except sagemaker.exceptions.ClientError:
            return False

    assert wait_for(running, timeout=60)
    sagemaker.stop_processing_job(ProcessingJobName=name)
    record = world.runtime.wait(arn, timeout=120)
    # THEN the run fails with the job Stopped, the reason in its description
    job = job_of(record)
    problems = [] if job.get("ProcessingJobStatus") == "Stopped" else [f"job ended {job.get('ProcessingJobStatus')}"]
    problems += clear_message(json.dumps(job), ["StopProcessingJob"])
    judge(request, "job-stopped", FAULT, DESIGNED, problems, [], world.usable())


def test_disk_full_while_a_state_file_is_written_keeps_the_old_file(tmp_path, monkeypatch, request):
    # GIVEN a state file; WHEN the disk fills up while its new version is written
    path = tmp_path / "state" / "record.json"
    files.atomic_write(tmp_path / "tmp", path, b'{"version": 1}')
    before = checksums(path)
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as raised:
        files.atomic_write(tmp_path / "tmp", path, b'{"version": 2, "big": "' + b"x" * 10000 + b'"}')
    monkeypatch.setattr(os, "fsync", real_fsync)
    # THEN the writer gets the error and the file is still the whole old version (a reader never sees a part)
    problems = [] if raised.value.errno == errno.ENOSPC else [f"raised {raised.value!r}"]
    problems += [] if files.read_state_file(path) == {"version": 1} else ["the old file was damaged"]
    problems += [f"left behind: {p}" for p in (tmp_path / "tmp").glob("*.part")]
    judge(request, "disk-full-while-writing", FAULT, DESIGNED, problems, changed(before, checksums(path)), None)


def test_damaged_execution_record_is_named_and_the_rest_still_answers(world, tmp_path, request):
    # GIVEN a copy of the shared workspace in which a crash cut an execution's record in half (a redeployment of the
    # live package, made here so that the seed's record stays whole whatever ran before)
    record = world.runtime.run("DeploymentStateMachine", {"ModelPackageArn": world.serving_arn}, timeout=300)
    assert record.status == "SUCCEEDED", record.cause
    workspace = tmp_path / "ws"
    shutil.copytree(world.workspace, workspace, ignore=shutil.ignore_patterns("cloud.json", "*.lock", "lock"))
    damaged = next((workspace / "executions").rglob(f"{record.name}.json"))
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    name = SEED_EXECUTION
    # WHEN a user asks for its history, and for another execution's
    broken = run_cli(["local", "history", damaged.stem, "--workspace", str(workspace)])
    other = run_cli(["local", "history", name, "--workspace", str(workspace)])
    # THEN the damaged file is named with what to do, on one line, and the other execution still answers
    problems = clear_message(broken.err, [str(damaged.name), "unreadable", "move it aside"])
    problems += [] if broken.code == 2 else [f"exit {broken.code}"]
    problems += [] if other.code == 0 else [f"another execution: exit {other.code} {other.err[-300:]}"]
    judge(request, "execution-record-truncated", FAULT, DESIGNED, problems, [], None)


def test_two_reviewers_deciding_at_once_both_stay_in_the_history(world, request):
    # GIVEN a package pending approval; WHEN two reviewers approve it at the same moment from two clients
    arn = register(world.runtime, "two-reviewers", b"unused", "PendingManualApproval")
    barrier = threading.Barrier(2)
    errors: list[str] = []

    def decide(by: str) -> None:
        barrier.wait()
        try:
            approvals.decide(world.runtime.client("sagemaker"), arn, "approve", by=by, reason=f"reviewed by {by}")
        except Exception as exc:  # noqa: BLE001 - recorded as a finding
            errors.append(f"{by}: {exc}")

    threads = [threading.Thread(target=decide, args=(by,)) for by in ("Ana Risk", "Ben Audit")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # THEN both decisions are in the package's approval history, neither replaced the other
    package = world.runtime.client("sagemaker").describe_model_package(ModelPackageName=arn)
    history = approvals.history(package)
    problems = list(errors)
    if sorted(row["By"] for row in history) != ["Ana Risk", "Ben Audit"]:
        problems.append(f"history: {history}")
    judge(request, "two-clients-approve-at-once", FAULT, DESIGNED, problems, [], world.usable())


def test_re_approval_by_someone_else_appends_to_the_history(world, request):
    # GIVEN an approved package; WHEN a second reviewer approves it again, then it is rejected
    arn = register(world.runtime, "re-approved", b"unused", "PendingManualApproval")
    sagemaker = world.runtime.client("sagemaker")
    approvals.decide(sagemaker, arn, "approve", by="Ana Risk", reason="first review")
    result = run_cli(["models", "approve", arn, "--by", "Ben Audit", "--reason", "second review", *world.argv()])
    rejected = run_cli(["models", "reject", arn, "--by", "Cy Compliance", "--reason", "data issue", *world.argv()])
    # THEN each decision is a new entry of the history (who, when, why) and the first approver's is unchanged
    history = approvals.history(sagemaker.describe_model_package(ModelPackageName=arn))
    problems = [] if result.code == 0 and rejected.code == 0 else [f"exit {result.code}/{rejected.code}: {result.err}{rejected.err}"]
    got = [(row["Decision"], row["Status"], row["By"], row["Reason"]) for row in history]
    if got != [(1, "Approved", "Ana Risk", "first review"), (2, "Approved", "Ben Audit", "second review"),
               (3, "Rejected", "Cy Compliance", "data issue")]:
        problems.append(f"history: {got}")
    problems += clear_message(result.out, ["decision 2"])
    judge(request, "re-approval-appends", FAULT, DESIGNED, problems, [], world.usable())


def test_ctrl_c_while_following_a_run_leaves_it_running_and_says_how_to_find_it(world, sleeper, tmp_path, monkeypatch,
                                                                               request):
    # GIVEN `local run` following a long execution in the shared cloud
    from sagestep.cli import local as cli_local

    (tmp_path / "in.json").write_text('{"MaxRuntimeInSeconds": 600}')
    before = checksums(tmp_path)

    def interrupt(self) -> None:  # noqa: ANN001 - the user presses Ctrl-C while the run is followed
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_local.LiveReporter, "on_tick", interrupt)
    result = run_cli(["local", "run", sleeper, "--input", str(tmp_path / "in.json"), "--name", "interrupted-run",
                      *world.argv()])
    # THEN the command exits 130 saying the execution goes on and how to see it, and the workspace knows it
    problems = [] if result.code == 130 else [f"exit {result.code}: {result.err[-400:]}"]
    problems += clear_message(result.err, ["interrupted", "interrupted-run", "sagestep local history"])
    arn = f"arn:aws:states:us-east-1:123456789012:execution:local-sleeper:interrupted-run"
    world.runtime.client("stepfunctions").stop_execution(executionArn=arn)
    history = run_cli(["local", "history", "interrupted-run", "--workspace", str(world.workspace)])
    problems += [] if history.code == 0 else [f"history: {history.err[-300:]}"]
    judge(request, "ctrl-c-during-local-run", FAULT, DESIGNED, problems, changed(before, checksums(tmp_path)),
          world.usable())


def test_deploying_a_rejected_package_fails_naming_it(world, request):
    # GIVEN a package of the live line that was rejected; WHEN its deployment starts (a stale approval event)
    arn = register(world.runtime, "rejected", b"unused", "PendingManualApproval")
    approvals.decide(world.runtime.client("sagemaker"), arn, "reject", by="Ana Risk", reason="bias found")
    record = world.runtime.run("DeploymentStateMachine", {"ModelPackageArn": arn}, timeout=120)
    # THEN it fails as PackageNotApproved and the endpoint keeps serving the live package
    problems = [] if record.error == "PackageNotApproved" else [f"{record.status} {record.error}"]
    problems += clear_message(str(record.cause), ["Only Approved", "approve it"])
    live = world.runtime.client("sagemaker").describe_model_package(ModelPackageName=world.serving_arn)
    if live["CustomerMetadataProperties"].get("DeployedEndpoint") != LINE:
        problems.append("the live package lost its deployment record")
    judge(request, "deploy-rejected-package", FAULT, DESIGNED, problems, [], world.usable())
