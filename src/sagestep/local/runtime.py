"""`LocalRuntime`: the deployed SAM application, on one machine, with no AWS account and no Docker.

    with LocalRuntime(project_root) as runtime:
        record = runtime.run("TrainingStateMachine", {"...": "..."})

Entering the runtime starts moto in-process, installs the engine plug-ins, restores the workspace, creates what
the template declares (buckets, topics, model package groups, functions, state machines with their
DefinitionSubstitutions resolved) and publishes the code bundle. Leaving it saves the workspace.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sagestep.aws import codebundle
from sagestep.stack import template as tpl
from sagestep.local import cloudwatch, engine, sagemaker_backend
from sagestep.local.endpoints import EndpointManager
from sagestep.local.jobs import JobRunner, LocalJob, S3Store, parse_s3_uri
from sagestep.local.workspace import Workspace

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
DEFAULT_STACK_NAME = "sagestep-local"
_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class RuntimeError_(RuntimeError):
    """A problem starting or using the local runtime (bad template, unknown state machine, ...)."""


@dataclasses.dataclass
class ExecutionRecord:
    execution_arn: str
    name: str
    state_machine_arn: str
    status: str
    input: Any
    output: Any
    error: str | None
    cause: str | None
    start_date: str
    stop_date: str | None
    history: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution": {
                "executionArn": self.execution_arn,
                "name": self.name,
                "stateMachineArn": self.state_machine_arn,
                "status": self.status,
                "input": self.input,
                "output": self.output,
                "error": self.error,
                "cause": self.cause,
                "startDate": self.start_date,
                "stopDate": self.stop_date,
            },
            "history": self.history,
        }

    def states_entered(self) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e
        ]


class LocalRuntime:
    def __init__(
        self,
        project_root: Path,
        workspace: Path | None = None,
        template_path: Path | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        time_scale: float = 1.0,
        stack_name: str = DEFAULT_STACK_NAME,
    ) -> None:
        self.root = project_root.resolve()
        self.workspace = Workspace(workspace or self.root / ".sagestep")
        self.template_path = (template_path or self.root / "template.yaml").resolve()
        self.parameter_overrides = dict(parameter_overrides or {})
        self.time_scale = time_scale
        self.stack = tpl.StackContext(stack_name=stack_name, account_id=ACCOUNT_ID, region=REGION)
        self._mock: Any = None
        self._saved_env: dict[str, str] | None = None
        self._code_bundles: dict[str, dict[str, str]] = {}
        self._notified: dict[str, int] = {}
        self.resolver: tpl.Resolver | None = None
        self.state_machines: dict[str, tpl.StateMachineSpec] = {}
        self.functions: dict[str, tpl.FunctionSpec] = {}
        self.runner: JobRunner | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalRuntime:
        if engine.HOOKS.job_runner is not None:
            raise RuntimeError_("a LocalRuntime is already active in this process; moto's state is process-wide, so "
                                "leave the first one before entering another")
        self.workspace.open()
        try:
            self._start()
        except BaseException:
            self._stop(save=False)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop(save=True)

    def _start(self) -> None:
        from moto import mock_aws

        self._saved_env = dict(os.environ)
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[key]
        os.environ.update(
            AWS_DEFAULT_REGION=REGION,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_SESSION_TOKEN="testing",
        )
        # moto logs every handled state error with its whole parse tree; the execution history carries the facts.
        logging.getLogger("moto").setLevel(logging.DEBUG if os.environ.get("SAGESTEP_DEBUG") else logging.CRITICAL)
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        engine.install()
        sagemaker_backend.install()
        cloudwatch.install()  # percentile statistics (p99 latency guardrail)
        engine.HOOKS.time_scale = self.time_scale
        engine.HOOKS.faults = {}
        self.runner = JobRunner(self.workspace.root, S3Store(lambda: self.client("s3")))
        engine.HOOKS.job_runner = self.runner
        self.endpoints = EndpointManager(self.workspace.root, S3Store(lambda: self.client("s3")), self._sagemaker_backend)
        engine.HOOKS.endpoint_manager = self.endpoints
        engine.HOOKS.before_lambda = self.sync_from_disk
        self.workspace.load_s3(self.client("s3"))
        self.workspace.load_sagemaker(self._sagemaker_backend())
        self._restore_jobs()
        self._deploy_template()

    def _stop(self, save: bool) -> None:
        try:
            if self._mock is not None and engine.HOOKS.endpoint_manager is not None:
                engine.HOOKS.endpoint_manager.stop_all()  # flushes data capture to the workspace
            if save and self._mock is not None:
                self._wait_for_jobs()
                self.sync_from_disk()
                self.save()
        finally:
            if self._mock is not None:
                self._mock.stop()
                self._mock = None
            engine.HOOKS.job_runner = None
            engine.HOOKS.endpoint_manager = None
            engine.HOOKS.before_lambda = None
            engine.HOOKS.functions = {}
            if self._saved_env is not None:
                os.environ.clear()
                os.environ.update(self._saved_env)
            self.workspace.close()

    def save(self) -> None:
        self.workspace.save_s3(self.client("s3"))
        self.workspace.save_sagemaker(self._sagemaker_backend())
        assert self.runner is not None
        finished = [
            {"kind": job.kind, "name": job.name, "root": str(job.root), "describe": job.describe()}
            for job in self.runner.jobs.values()
            if job.status not in ("InProgress", "Stopping")
        ]
        self.workspace.save_jobs(finished)
        self._save_notifications()

    def _wait_for_jobs(self, timeout: float = 30.0) -> None:
        assert self.runner is not None
        for job in self.runner.running():
            self.runner.stop(job.kind, job.name)
        deadline = time.monotonic() + timeout
        for job in list(self.runner.jobs.values()):
            job.done.wait(max(0.0, deadline - time.monotonic()))

    def _restore_jobs(self) -> None:
        assert self.runner is not None
        for saved in self.workspace.load_jobs():
            describe = saved["describe"]
            status_key = {"processing": "ProcessingJobStatus", "training": "TrainingJobStatus", "transform": "TransformJobStatus"}[saved["kind"]]
            arn_key = {"processing": "ProcessingJobArn", "training": "TrainingJobArn", "transform": "TransformJobArn"}[saved["kind"]]
            job = LocalJob(kind=saved["kind"], name=saved["name"], arn=describe[arn_key], request=describe, root=Path(saved["root"]))
            job.status = describe[status_key]
            job.failure_reason = describe.get("FailureReason")
            job.model_artifacts = (describe.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
            job.done.set()
            self.runner.jobs[(job.kind, job.name)] = job

    # ------------------------------------------------------------------------------------ clients

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION)

    def _sagemaker_backend(self) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[ACCOUNT_ID][REGION]

    # ------------------------------------------------------------------------------------ template

    def _deploy_template(self) -> None:
        document = tpl.load_template(self.template_path)
        self.resolver = tpl.Resolver(
            document,
            self.stack,
            self.parameter_overrides,
            custom_attributes=self._custom_attribute,
            source=str(self.template_path.relative_to(self.root) if self.template_path.is_relative_to(self.root) else self.template_path),
        )
        resolver = self.resolver
        s3, sns, sagemaker = self.client("s3"), self.client("sns"), self.client("sagemaker")
        existing_buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for logical_id, resource in resolver.resources.items():
            if not resolver.resource_enabled(logical_id):
                continue
            rtype = resource.get("Type")
            name = resolver.physical_name(logical_id)
            if rtype == "AWS::S3::Bucket" and name not in existing_buckets:
                s3.create_bucket(Bucket=name)
            elif rtype == "AWS::SNS::Topic":
                sns.create_topic(Name=name)
            elif rtype == "AWS::SageMaker::ModelPackageGroup":
                groups = {g["ModelPackageGroupName"] for g in sagemaker.list_model_package_groups().get("ModelPackageGroupSummaryList", [])}
                if name not in groups:
                    description = (resource.get("Properties") or {}).get("ModelPackageGroupDescription", "")
                    sagemaker.create_model_package_group(
                        ModelPackageGroupName=name, ModelPackageGroupDescription=str(resolver.resolve(description))
                    )
        self.functions = tpl.functions(resolver, self.root)
        engine.HOOKS.functions = self.functions
        self.state_machines = tpl.state_machines(resolver, self.root)
        sfn = self.client("stepfunctions")
        for spec in self.state_machines.values():
            text = spec.definition_path.read_text()
            definition = tpl.substitute(text, spec.substitutions, str(spec.definition_path.relative_to(self.root)))
            sfn.create_state_machine(name=spec.name, definition=definition, roleArn=self.stack.arn("iam", "role/local-states", region=False))

    def _custom_attribute(self, logical_id: str, attribute: str, props: dict[str, Any]) -> Any:
        assert self.resolver is not None
        rtype = self.resolver.resources[logical_id]["Type"]
        if rtype != "Custom::CodeBundle":
            raise tpl.TemplateError(f"template.yaml: custom resource {logical_id} ({rtype}) has no local provider")
        if logical_id not in self._code_bundles:
            self._code_bundles[logical_id] = self.publish_code_bundle(str(props["BucketName"]), str(props["Prefix"]))
        values = self._code_bundles[logical_id]
        if attribute not in values:
            raise tpl.TemplateError(f"template.yaml: !GetAtt {logical_id}.{attribute}: Custom::CodeBundle offers {sorted(values)}")
        return values[attribute]

    def publish_code_bundle(self, bucket: str, prefix: str) -> dict[str, str]:
        """Do locally what the CodeBundle custom resource does on deploy, from the working tree."""
        files = codebundle.collect(self.root / "ml", self.root / "src" / "sagestep")
        return codebundle.publish(self.client("s3"), bucket, prefix, files, git_commit=_git_commit(self.root))

    # ------------------------------------------------------------------------------------ executions

    def state_machine_arn(self, name_or_path: str) -> str:
        if name_or_path in self.state_machines:
            return self.state_machines[name_or_path].arn
        path = Path(name_or_path)
        if not path.is_absolute():
            path = Path.cwd() / path
        if path.suffix == ".json" and path.is_file():
            path = path.resolve()
            for spec in self.state_machines.values():
                if spec.definition_path == path:
                    return spec.arn
            return self._create_adhoc_machine(path)
        known = ", ".join(sorted(self.state_machines)) or "none"
        raise RuntimeError_(
            f"{name_or_path!r} is neither a state machine logical ID in {self.template_path.name} ({known}) "
            f"nor an existing ASL file"
        )

    def _create_adhoc_machine(self, path: Path) -> str:
        """An ASL file outside the template may use any substitution the template's state machines define."""
        substitutions: dict[str, str] = {}
        for spec in self.state_machines.values():
            substitutions.update(spec.substitutions)
        definition = tpl.substitute(path.read_text(), substitutions, str(path))
        name = f"local-{path.stem.replace('.asl', '')}"[:80]
        sfn = self.client("stepfunctions")
        arn = self.stack.arn("states", f"stateMachine:{name}")
        try:
            sfn.describe_state_machine(stateMachineArn=arn)
            sfn.update_state_machine(stateMachineArn=arn, definition=definition)
        except sfn.exceptions.StateMachineDoesNotExist:
            sfn.create_state_machine(name=name, definition=definition, roleArn=self.stack.arn("iam", "role/local-states", region=False))
        return arn

    def start(self, state_machine: str, execution_input: Any, name: str | None = None) -> str:
        arn = self.state_machine_arn(state_machine)
        kwargs: dict[str, Any] = {"stateMachineArn": arn, "input": json.dumps(execution_input)}
        if name:
            kwargs["name"] = name
        return self.client("stepfunctions").start_execution(**kwargs)["executionArn"]

    def events(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def wait(
        self,
        execution_arn: str,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        on_tick: Callable[[], None] | None = None,
        timeout: float | None = None,
    ) -> ExecutionRecord:
        sfn = self.client("stepfunctions")
        seen = 0
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            description = sfn.describe_execution(executionArn=execution_arn)
            events = self.events(execution_arn)
            if on_event:
                for event in events[seen:]:
                    on_event(event)
            seen = len(events)
            if description["status"] in _TERMINAL:
                break
            if deadline is not None and time.monotonic() > deadline:
                sfn.stop_execution(executionArn=execution_arn, error="sagestep.Timeout", cause="local wait timed out")
                continue
            if on_tick:
                on_tick()
            time.sleep(0.1)
        record = ExecutionRecord(
            execution_arn=execution_arn,
            name=description["name"],
            state_machine_arn=description["stateMachineArn"],
            status=description["status"],
            input=_maybe_json(description.get("input")),
            output=_maybe_json(description.get("output")),
            error=description.get("error"),
            cause=description.get("cause"),
            start_date=_iso(description["startDate"]),
            stop_date=_iso(description.get("stopDate")),
            history=[_json_safe(e) for e in events],
        )
        if record.error is None and record.status != "SUCCEEDED":
            record.error, record.cause = _failure_from_history(record.history)
        self.workspace.save_execution(record.to_dict())
        return record

    def run(self, state_machine: str, execution_input: Any, name: str | None = None, **wait_kwargs: Any) -> ExecutionRecord:
        return self.wait(self.start(state_machine, execution_input, name), **wait_kwargs)

    # ------------------------------------------------------------------------------------ helpers

    def put_file(self, path: Path, s3_uri: str) -> None:
        bucket, key = parse_s3_uri(s3_uri)
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    def read_json(self, s3_uri: str) -> Any:
        bucket, key = parse_s3_uri(s3_uri)
        return json.loads(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())

    def sync_from_disk(self) -> int:
        """Load what other processes left in the workspace (model servers' data capture, traffic labels) into S3,
        and the endpoints' invocation metrics into CloudWatch."""
        self.endpoints.publish_metrics(self.client("cloudwatch"))
        return self.workspace.load_s3(self.client("s3"))

    def local_path(self, s3_uri: str) -> Path:
        """Where an S3 object lives in the workspace once the runtime has saved."""
        bucket, key = parse_s3_uri(s3_uri)
        return self.workspace.object_path(bucket, key)

    def bucket(self, logical_id: str) -> str:
        assert self.resolver is not None
        return self.resolver.physical_name(logical_id)

    def notifications(self) -> Iterator[dict[str, Any]]:
        from moto.sns.models import sns_backends

        for topic in sns_backends[ACCOUNT_ID][REGION].topics.values():
            for message_id, message, subject, _attributes, _group in topic.sent_notifications:
                yield {"TopicArn": topic.arn, "MessageId": message_id, "Subject": subject, "Message": message}

    def _save_notifications(self) -> None:
        path = self.workspace.root / "notifications.jsonl"
        new = [n for n in self.notifications()]
        with open(path, "a") as handle:
            for note in new[self._notified.get("count", 0):]:
                handle.write(json.dumps(note) + "\n")
        self._notified["count"] = len(new)

    def inject_fault(self, service: str, action: str, error_code: str, times: int = 1) -> None:
        """Make the next `times` calls of service:action fail with error_code (for retry path tests)."""
        engine.HOOKS.faults.setdefault((service, action.lower()), []).extend([error_code] * times)


def _git_commit(root: Path) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ml", "src"], cwd=root, capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_iso))


def _failure_from_history(history: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    for event in reversed(history):
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict) and "error" in details:
                return details.get("error"), details.get("cause")
    return None, None
