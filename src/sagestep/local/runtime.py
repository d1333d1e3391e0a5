"""`LocalRuntime`: what a sagestep command (or a test) holds while it uses the local cloud of a workspace.

    with LocalRuntime(project_root, workspace=Path(".sagestep")) as runtime:
        record = runtime.run("TrainingStateMachine", {"...": "..."})

When a cloud is up for the workspace (`sagestep local up`), the runtime is a client of it over HTTP. Otherwise it
starts one in this process for its own lifetime (`local/cloud.py`) and talks to it the same way; nothing is loaded
up front either way, so a command's cost does not grow with the workspace.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sagestep.local.files import JsonLog
from sagestep.local.records import ACCOUNT_ID, DEFAULT_STACK_NAME, REGION, TERMINAL, Clients, failure_from_history, iso, json_safe, maybe_json
from sagestep.local.workspace import Workspace
from sagestep.stack import template as tpl


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
        return [e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e]


class LocalRuntime:
    def __init__(
        self,
        project_root: Path,
        workspace: Path | None = None,
        template_path: Path | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        time_scale: float | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
    ) -> None:
        self.root = project_root.resolve()
        self.workspace = Workspace(workspace or self.root / ".sagestep")
        self.template_path = (template_path or self.root / "template.yaml").resolve()
        self.parameter_overrides = dict(parameter_overrides or {})
        self.time_scale = time_scale
        self.stack_name = stack_name
        self.stack = tpl.StackContext(stack_name=stack_name, account_id=ACCOUNT_ID, region=REGION)
        self.cloud: Any = None  # the LocalCloud this runtime started in its own process, if any
        self.url = ""
        self.remote: dict[str, Any] | None = None  # the cloud.json of a cloud in another process
        self.resolver: tpl.Resolver | None = None
        self.state_machines: dict[str, tpl.StateMachineSpec] = {}
        self.functions: dict[str, tpl.FunctionSpec] = {}
        self._adhoc: dict[Path, str] = {}
        self._clients: Clients | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalRuntime:
        self.workspace.check()
        info = self.workspace.cloud_info()
        if info is not None and self._answers(info["url"]):
            self._attach(info)
        else:
            from sagestep.local.cloud import LocalCloud  # loads moto: only when this process runs the cloud

            self.cloud = LocalCloud(self.root, self.workspace.root, self.template_path, self.parameter_overrides,
                                    self.time_scale if self.time_scale is not None else 1.0, stack_name=self.stack_name)
            self.url = self.cloud.start()
            self.resolver = self.cloud.resolver
            self.state_machines = self.cloud.state_machines
            self.functions = self.cloud.functions
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.cloud is not None:
            self.cloud.stop()
            self.cloud = None

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/_sagestep/info", timeout=5) as response:  # noqa: S310 - 127.0.0.1
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _attach(self, info: dict[str, Any]) -> None:
        """Use the cloud another process runs: same template, parameters and stack as that cloud."""
        self.remote = info
        self.url = info["url"]
        overrides = info.get("parameter_overrides") or {}
        if self.parameter_overrides and self.parameter_overrides != overrides:
            raise RuntimeError_(
                f"the local cloud at {self.url} (workspace {self.workspace.root}) runs with --parameter-overrides "
                f"{_pairs(overrides) or '(none)'}; stop it to use {_pairs(self.parameter_overrides)}, or drop the option"
            )
        stack = self._call_internal("GET", "/_sagestep/stack")
        self.template_path = Path(info.get("template") or self.template_path)
        self.stack = tpl.StackContext(stack_name=info.get("stack_name", self.stack_name), account_id=ACCOUNT_ID, region=REGION)
        bundles = stack.get("code_bundles", {})

        def custom_attribute(logical_id: str, attribute: str, props: dict[str, Any]) -> Any:
            return bundles[logical_id][attribute]

        self.resolver = tpl.Resolver(tpl.load_template(self.template_path), self.stack, overrides,
                                     custom_attributes=custom_attribute, source=self.template_path.name)
        self.state_machines = tpl.state_machines(self.resolver, self.root)
        self.functions = tpl.functions(self.resolver, self.root)

    def _call_internal(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - 127.0.0.1
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise RuntimeError_(f"the local cloud at {self.url} refused {path}: {exc.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RuntimeError_(f"the local cloud at {self.url} does not answer ({exc}); is `sagestep local up` still running?") from None

    # ------------------------------------------------------------------------------------ clients

    def client(self, service: str) -> Any:
        if self.cloud is not None:
            return self.cloud.client(service)
        if self._clients is None or self._clients.url != self.url:
            self._clients = Clients(self.url)
        return self._clients.get(service)

    @property
    def endpoints(self) -> Any:
        """The model servers (only in the process that runs the cloud; clients use InvokeEndpoint)."""
        if self.cloud is None or self.cloud.endpoints is None:
            raise RuntimeError_(f"the local endpoints are managed by the cloud at {self.url}; use InvokeEndpoint")
        return self.cloud.endpoints

    @property
    def runner(self) -> Any:
        return self.cloud.runner if self.cloud is not None else None

    # ------------------------------------------------------------------------------------ state machines

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
        # In the process that runs the cloud, a quiet wait is woken by the execution's end instead of polling its
        # status ten times a second; a waiter that streams events (the CLI) polls.
        woken = self.cloud is not None and on_event is None and on_tick is None
        while True:
            changes = self.cloud.execution_changes() if woken else 0
            description = sfn.describe_execution(executionArn=execution_arn)
            terminal = description["status"] in TERMINAL
            if on_event or terminal:  # moto serializes the whole history on every call: fetch it only when needed
                events = self.events(execution_arn)
                if on_event:
                    for event in events[seen:]:
                        on_event(event)
                seen = len(events)
            if terminal:
                break
            if deadline is not None and time.monotonic() > deadline:
                sfn.stop_execution(executionArn=execution_arn, error="sagestep.Timeout", cause="local wait timed out")
                continue
            if on_tick:
                on_tick()
            if woken:
                self.cloud.wait_for_execution_change(changes, timeout=1.0)
            else:
                time.sleep(0.1)
        record = ExecutionRecord(
            execution_arn=execution_arn,
            name=description["name"],
            state_machine_arn=description["stateMachineArn"],
            status=description["status"],
            input=maybe_json(description.get("input")),
            output=maybe_json(description.get("output")),
            error=description.get("error") or None,
            cause=description.get("cause") or None,
            start_date=iso(description["startDate"]),
            stop_date=iso(description.get("stopDate")),
            history=[json_safe(e) for e in events],
        )
        if record.error is None and record.status != "SUCCEEDED":
            record.error, record.cause = failure_from_history(record.history)
        return record

    def run(self, state_machine: str, execution_input: Any, name: str | None = None, **wait_kwargs: Any) -> ExecutionRecord:
        return self.wait(self.start(state_machine, execution_input, name), **wait_kwargs)

    # ------------------------------------------------------------------------------------ helpers

    def put_file(self, path: Path, s3_uri: str) -> None:
        bucket, key = _parse_s3_uri(s3_uri)
        self.client("s3").upload_file(str(path), bucket, key)

    def read_json(self, s3_uri: str) -> Any:
        bucket, key = _parse_s3_uri(s3_uri)
        return json.loads(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())

    def local_path(self, s3_uri: str) -> Path:
        """Where an S3 object lives in the workspace (the local cloud keeps objects as files)."""
        bucket, key = _parse_s3_uri(s3_uri)
        return self.workspace.object_path(bucket, key)

    def bucket(self, logical_id: str) -> str:
        assert self.resolver is not None
        return self.resolver.physical_name(logical_id)

    def notifications(self) -> Iterator[dict[str, Any]]:
        """What SNS would have sent, oldest first (the cloud writes each publish to the workspace)."""
        yield from JsonLog(self.workspace.notifications_path).read()

    def flush_metrics(self) -> int:
        """Publish the endpoints' invocation metrics to CloudWatch now (the cloud also does it every second)."""
        if self.cloud is not None:
            return self.cloud.publish_endpoint_metrics()
        return int(self._call_internal("POST", "/_sagestep/flush", {}).get("published", 0))

    def stub_tasks(self, stubs: Callable[[str, Any], Any] | None) -> None:
        """Tasks for which `stubs(state_name, state_input)` gives an engine.TaskStub return it (or fail with its error)
        instead of calling their service; their Parameters are still evaluated and recorded in TaskScheduled. None:
        every call is real. Only in the process that runs the cloud (tests)."""
        from sagestep.local import engine

        if self.cloud is None:
            raise RuntimeError_("stub_tasks needs the cloud in this process")
        engine.HOOKS.task_stubs = stubs

    def inject_fault(self, service: str, action: str, error_code: str, times: int = 1) -> None:
        """Make the next `times` calls of service:action fail with error_code (for retry path tests)."""
        if self.cloud is not None:
            self.cloud.inject_fault(service, action, error_code, times)
        else:
            self._call_internal("POST", "/_sagestep/faults", {"service": service, "action": action,
                                                              "error_code": error_code, "times": times})


def _pairs(overrides: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(overrides.items()))


def _parse_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise RuntimeError_(f"{uri!r} is not an s3://bucket/key URI")
    return bucket, key
