"""The workspace itself as a bad input: state files cut short by a crash (a model package, an alarm, an execution
record, the cloud's address), a workspace that is a file, credentials that are missing, and the code bundle
a registered model points at (the same bytes every time). A damaged file is named with how to recover, never a
traceback, and everything else in the workspace keeps working."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from sagestep.aws import codebundle
from tests.conftest import REPO_ROOT
from tests.reliability.catalogue import BAD_INPUT, CLEAR, CliResult, DESIGNED, changed, checksums, clear_message, judge, run_cli
from tests.reliability.conftest import LINE


def _cut(path) -> None:  # noqa: ANN001 - a crash mid-write with a writer that was not atomic
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])


@pytest.fixture(scope="module")
def damaged(world, tmp_path_factory):  # noqa: ANN201
    """A copy of the shared workspace with one file of each kind cut short, then `sagestep models list` (its own
    cloud, in its own process) and `local history` on it."""
    workspace = tmp_path_factory.mktemp("damaged") / "ws"
    shutil.copytree(world.workspace, workspace, ignore=shutil.ignore_patterns("cloud.json", "cloud.lock", "endpoints"))
    packages = sorted((workspace / "state" / "sagemaker").rglob("model_packages/*.json"))
    pending = next(p for p in packages if json.loads(p.read_text())["name"].endswith("/2"))
    files = {"model-package-record": pending, "execution-record": next((workspace / "executions").rglob("*.json")),
             "alarm-record": next((workspace / "state" / "cloudwatch" / "alarms").glob("*.json"))}
    for path in files.values():
        _cut(path)
    (workspace / "cloud.json").write_text('{"url": "http://127.0.0.1:1", "pid"')  # a cloud that died mid-write
    listed = subprocess.run([sys.executable, "-m", "sagestep", "models", "list", "--workspace", str(workspace)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    return files, listed


@pytest.mark.parametrize("kind", ["model-package-record", "execution-record", "alarm-record"])
def test_state_file_cut_by_a_crash_is_named_and_the_rest_works(damaged, kind, request):
    files, listed = damaged
    path = files[kind]
    # THEN the command still works (exit 0, the live package listed), and warns naming the file and the way out
    problems = [] if listed.returncode == 0 else [f"exit {listed.returncode}: {listed.stderr[-500:]}"]
    problems += clear_message(listed.stderr, [path.name, "unreadable", "move it aside"])
    problems += clear_message(listed.stdout, [LINE, "Approved"])
    if problems:
        problems.append(f"stderr: {listed.stderr[-1500:]}")
    judge(request, f"workspace-{kind}-truncated", BAD_INPUT, DESIGNED, problems, [], None)


def test_models_list_with_aws_but_no_credentials_says_how_to_configure(tmp_path, monkeypatch, request):
    # GIVEN no AWS credentials anywhere
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # WHEN a user lists the packages of the AWS account (in a process of its own: a local cloud this test process may
    # hold answers every boto3 call in it, credentials or not)
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k in (
        "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_EC2_METADATA_DISABLED")}
    done = subprocess.run([sys.executable, "-m", "sagestep", "models", "list", "--aws", "--region", "eu-west-1", "--prefix",
                           "sagestep-dev-"], capture_output=True, text=True, env=env, timeout=120)
    result = CliResult(done.returncode, done.stdout, done.stderr)
    # THEN one line says what is missing and how to configure it
    problems = clear_message(result.err, ["--aws", "credentials", "aws configure"])
    problems += [] if result.code == 2 else [f"exit {result.code}: {result.err[-300:]}"]
    judge(request, "models-list-aws-no-credentials", BAD_INPUT, CLEAR, problems, [], None)


def test_code_bundle_a_model_points_at_is_the_same_bytes_every_time(world, request):
    # GIVEN the code bundle the shared cloud published (sourcedir.tar.gz, which registered models point at)
    uri = world.runtime.state_machines["TrainingStateMachine"].substitutions["CodeS3Uri"] + "sourcedir.tar.gz"
    path = world.runtime.local_path(uri)
    before = checksums(path)
    # WHEN the same code is bundled again (as every command's cloud does)
    files = codebundle.collect(REPO_ROOT / "ml", REPO_ROOT / "src" / "sagestep")
    again = codebundle.sourcedir_tarball(files)
    # THEN the bytes are the same and the published file was not rewritten
    problems = [] if again == path.read_bytes() else ["a second bundle of the same code differs"]
    judge(request, "code-bundle-reproducible", BAD_INPUT, DESIGNED, problems, changed(before, checksums(path)),
          world.usable())


def test_another_command_while_a_run_holds_the_workspace_uses_the_same_cloud(world, tmp_path, request):
    # GIVEN an execution running in the shared cloud (a `local run` in progress)
    asl = tmp_path / "waits.asl.json"
    asl.write_text(json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}))
    arn = world.runtime.start(str(asl), {})
    try:
        # WHEN another command asks for the registry and the endpoints
        listed = run_cli(["models", "list", *world.argv()])
        endpoints = run_cli(["local", "endpoints", *world.argv()])
    finally:
        world.runtime.client("stepfunctions").stop_execution(executionArn=arn)
    # THEN both answer at once from the same cloud
    problems = [] if listed.code == 0 and endpoints.code == 0 else [f"exit {listed.code}/{endpoints.code}: {listed.err}{endpoints.err}"]
    problems += clear_message(endpoints.out, [LINE, "InService"])
    judge(request, "command-while-a-run-holds-the-workspace", BAD_INPUT, DESIGNED, problems, [], world.usable())
