"""`LocalCloud`: the deployed SAM application as a long-lived local AWS on 127.0.0.1 (`sagestep local up`).

moto's server mode (every service on one port) with sagestep's plug-ins: the Step Functions engine with SageMaker
integrations whose jobs really run, Lambda handlers in-process with the template's environment, Parameters validated
against botocore, local endpoints. What the template declares is created at start (buckets, topics, model package
groups, state machines with their DefinitionSubstitutions), and the code bundle is published from the working tree.

State lives in the workspace (`local/workspace.py`): S3 objects as files read on request (`local/s3disk.py`),
SageMaker objects, alarms, metrics, executions and jobs written as they change (`local/state.py`). A restart finds
the same state; an execution or job that was running when the cloud stopped ends ABORTED / Stopped.

Standard clients work against it: `aws --endpoint-url http://127.0.0.1:4566 ...`, boto3 with `endpoint_url`.
Paths under `/_sagestep/` are the cloud's own (info, fault injection); S3 bucket names cannot start with "_".
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sagestep.aws import codebundle
from sagestep.local import cloudwatch, engine, lambdas, s3disk, sagemaker_backend
from sagestep.local.endpoints import EndpointManager
from sagestep.local.jobs import JobRunner, LocalJob, S3Store
from sagestep.local.records import ACCOUNT_ID, CONSOLE_PATH, DEFAULT_STACK_NAME, REGION, Clients, CloudError
from sagestep.local.files import JsonLog, StateFileError, read_state_file
from sagestep.local.state import SageMakerState, encode
from sagestep.local.workspace import Workspace
from sagestep.stack import template as tpl

DEFAULT_PORT = 4566
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
_READ_ACTIONS = ("Describe", "List", "Search", "Get", "Query", "BatchDescribe", "BatchGet")


class LocalCloud:
    def __init__(
        self,
        project_root: Path,
        workspace: Path,
        template_path: Path | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        time_scale: float = 1.0,
        port: int = 0,
        stack_name: str = DEFAULT_STACK_NAME,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        if not (time_scale > 0):
            raise CloudError(f"--time-scale must be a positive number (1 = real time, 0.01 = 100× faster), got {time_scale}")
        self.root = project_root.resolve()
        self.workspace = Workspace(workspace)
        self.template_path = (template_path or self.root / "template.yaml").resolve()
        self.parameter_overrides = dict(parameter_overrides or {})
        self.time_scale = time_scale
        self.port = port
        self.stack = tpl.StackContext(stack_name=stack_name, account_id=ACCOUNT_ID, region=REGION)
        self.on_change = on_change or (lambda line: None)
        self.url = ""
        self.resolver: tpl.Resolver | None = None
        self.state_machines: dict[str, tpl.StateMachineSpec] = {}
        self.functions: dict[str, tpl.FunctionSpec] = {}
        self.runner: JobRunner | None = None
        self.endpoints: EndpointManager | None = None
        self.disk: s3disk.DiskS3 | None = None
        self.problems: list[str] = []
        self._server: Any = None
        self._clients: Clients | None = None
        self._thread: threading.Thread | None = None
        self._saved_env: dict[str, str] | None = None
        self._code_bundles: dict[str, dict[str, str]] = {}
        self._stop = threading.Event()
        self._background: list[threading.Thread] = []
        self._sagemaker_state: SageMakerState | None = None
        self._notifications: JsonLog | None = None
        self._metrics_log: JsonLog | None = None
        self._replaying = False
        self.bus: Any = None
        self._execution_status: dict[str, str] = {}
        self._execution_changes = 0  # executions started, ended or stopped so far (waiters in this process watch it)
        self._execution_changed = threading.Condition()
        self.ready = False  # the template is deployed and the workspace restored: clients may come

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        if engine.HOOKS.job_runner is not None:
            raise CloudError("a local cloud is already running in this process; moto's state is process-wide")
        self.workspace.create()
        self.workspace.lock_for_cloud()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _start(self) -> None:
        self._saved_env = dict(os.environ)
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[key]
        os.environ.update(CREDENTIALS)
        logging.getLogger("moto").setLevel(logging.DEBUG if os.environ.get("SAGESTEP_DEBUG") else logging.CRITICAL)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from moto.core.config import default_user_config

        default_user_config["stepfunctions"]["execute_state_machine"] = True
        engine.install()
        sagemaker_backend.install()
        cloudwatch.install()  # percentile statistics (the A/B p99 latency guardrail)
        self.disk = s3disk.DiskS3(self.workspace.root)
        s3disk.install(self.disk)
        _install_state_hooks(self)
        engine.HOOKS.time_scale = self.time_scale
        engine.HOOKS.faults = {}
        self._start_server()
        store = S3Store(lambda: self.client("s3"), self._object_file)
        self.runner = JobRunner(self.workspace.root, store, on_change=self._job_changed)
        engine.HOOKS.job_runner = self.runner
        self.endpoints = EndpointManager(self.workspace.root, store, self._sagemaker_backend, on_change=self._endpoint_changed)
        engine.HOOKS.endpoint_manager = self.endpoints
        engine.HOOKS.before_lambda = self.publish_endpoint_metrics
        engine.HOOKS.busy = self.endpoints.busy
        self._sagemaker_state = SageMakerState(self.workspace.root, self.workspace.tmp_dir, self._sagemaker_backend)
        self._notifications = JsonLog(self.workspace.notifications_path)
        self._metrics_log = JsonLog(self.workspace.state_dir / "cloudwatch" / "metrics.jsonl")
        self._restore()
        self._deploy_template()
        self._restore_executions()
        self._start_bus()
        self._sagemaker_state.save_changed()
        self.workspace.publish_cloud({
            "url": self.url, "pid": os.getpid(), "port": self.port, "workspace": str(self.workspace.root),
            "template": str(self.template_path), "parameter_overrides": self.parameter_overrides,
            "time_scale": self.time_scale, "stack_name": self.stack.stack_name,
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        })
        self._spawn(self._publish_metrics_loop, "endpoint-metrics")
        self._mount_console()
        self.ready = True

    def _start_bus(self) -> None:
        from sagestep.local.bus import EventBus
        from sagestep.local.eventbridge import rules_from_template

        assert self.resolver is not None
        self.bus = EventBus(rules_from_template(self.resolver, self.stack), self.workspace.root / "events.jsonl", ACCOUNT_ID,
                            REGION, self.time_scale, self._start_execution_for_rule, self.on_change)
        self.bus.start()

    def _start_execution_for_rule(self, state_machine_arn: str, execution_input: str) -> str:
        if ":function:" in state_machine_arn:  # a Lambda target (the audit recorder): invoked with the event, as AWS does
            result, error = engine.invoke_function(engine.HOOKS.function_for(state_machine_arn), json.loads(execution_input))
            if error:
                raise RuntimeError(f"{state_machine_arn.rsplit(':', 1)[-1]} failed ({error}): {json.dumps(result)[:300]}")
            return f"{state_machine_arn}:invocation"
        return self.client("stepfunctions").start_execution(stateMachineArn=state_machine_arn, input=execution_input)["executionArn"]

    def put_event(self, source: str, detail_type: str, detail: dict[str, Any], resources: list[str], origin: str) -> None:
        if self.bus is not None:
            self.bus.put(self.bus.event(source, detail_type, detail, resources), origin)

    def _mount_console(self) -> None:
        """The console (sagestep.console) at <url>/_console/, reading this cloud through its APIs."""
        from sagestep.console import create_app

        assert self.resolver is not None and self._server is not None
        names = {logical_id: self.resolver.physical_name(logical_id) for logical_id, resource in self.resolver.resources.items()
                 if resource.get("Type") == "AWS::S3::Bucket" and self.resolver.resource_enabled(logical_id)}
        console = create_app(self.client, self.workspace.root, names)
        self._server.app.extra_apps[CONSOLE_PATH] = console
        self._spawn(console.warm, "console-warm")

    def _start_server(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        _list_moto_modules_once()
        app = CloudApp(DomainDispatcherApplication(create_backend_app), self)
        try:
            self._server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=MotoRequestHandler)
        except OSError as exc:
            raise CloudError(f"cannot listen on 127.0.0.1:{self.port}: {exc.strerror or exc}; pass another --port") from None
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        os.environ["MOTO_PORT"] = str(self.port)  # the Step Functions engine calls services at localhost:$MOTO_PORT
        os.environ["AWS_ENDPOINT_URL"] = self.url  # Lambda handlers in this process call this cloud
        engine.HOOKS.endpoint_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-cloud", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.bus is not None:
            self.bus.stop()
        try:
            if self.endpoints is not None:
                self.endpoints.stop_all()
            if self.runner is not None:
                for job in self.runner.running():
                    self.runner.stop(job.kind, job.name)
                deadline = time.monotonic() + 30
                for job in list(self.runner.jobs.values()):
                    job.done.wait(max(0.0, deadline - time.monotonic()))
            if self._sagemaker_state is not None:
                self.publish_endpoint_metrics()
                self._sagemaker_state.save_changed()
            self._abort_running_executions()
            lambdas.POOL.stop(self.url)
        finally:
            try:
                if self._server is not None:
                    self._server.shutdown()
                    self._server.server_close()
                    self._server = None
                for thread in self._background:
                    thread.join(timeout=5)
                if self.disk is not None:
                    self.disk.close()
            finally:  # whatever failed above (a cloud that never fully started), the process can start another one
                engine.HOOKS.job_runner = None
                engine.HOOKS.endpoint_manager = None
                engine.HOOKS.before_lambda = None
                engine.HOOKS.busy = None
                engine.HOOKS.task_stubs = None
                engine.HOOKS.functions = {}
                _reset_moto()
                if self._saved_env is not None:
                    os.environ.clear()
                    os.environ.update(self._saved_env)
                self.workspace.release()

    def _spawn(self, target: Callable[[], Any], name: str) -> None:
        def run() -> None:
            try:
                target()
            except Exception:  # noqa: BLE001 - a background task cut short by the cloud stopping is not news
                if not self._stop.is_set():
                    logging.getLogger("sagestep.local").error("background task %s failed:\n%s", name, traceback.format_exc())

        thread = threading.Thread(target=run, name=name, daemon=True)
        self._background.append(thread)
        thread.start()

    # ------------------------------------------------------------------------------------ clients and backends

    def client(self, service: str) -> Any:
        if self._clients is None or self._clients.url != self.url:
            self._clients = Clients(self.url)
        return self._clients.get(service)

    @staticmethod
    def _object_file(bucket: str, key: str) -> Path | None:
        """The workspace file holding an S3 object's current bytes (s3disk), or None (not stored as a file)."""
        from moto.s3.models import s3_backends

        found = s3_backends[ACCOUNT_ID]["aws"].buckets.get(bucket)
        stored = found.keys.get(key) if found is not None else None
        return getattr(stored, "disk_path", None)

    def _sagemaker_backend(self) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[ACCOUNT_ID][REGION]

    @staticmethod
    def _sfn_backend() -> Any:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        return stepfunctions_parser_backends[ACCOUNT_ID][REGION]

    # ------------------------------------------------------------------------------------ restoring the workspace

    def _restore(self) -> None:
        assert self.disk is not None and self.runner is not None and self._sagemaker_state is not None
        from moto.s3.models import s3_backends

        s3 = s3_backends[ACCOUNT_ID]["aws"]
        for name, config in self.disk.saved_buckets().items():
            if name not in s3.buckets:
                bucket = s3.create_bucket(name, REGION)
                for attribute, value in config.items():
                    if value is not None:
                        setattr(bucket, attribute, value)
        self.problems += self._sagemaker_state.load()
        for path in self.workspace.job_records():
            try:
                self.runner.restore(read_state_file(path))
            except (StateFileError, KeyError, TypeError, ValueError) as exc:
                self.problems.append(str(exc) if isinstance(exc, StateFileError) else f"{path}: {type(exc).__name__}: {exc}")
        assert self._metrics_log is not None
        from moto.cloudwatch.models import cloudwatch_backends

        cloudwatch = cloudwatch_backends[ACCOUNT_ID][REGION]
        self._replaying = True
        try:
            for record in self._metrics_log.read():
                try:
                    cloudwatch.put_metric_data(record["namespace"], _decode_metric_data(record["data"]))
                except Exception as exc:  # noqa: BLE001 - one bad record must not stop the others
                    self.problems.append(f"{self._metrics_log.path}: a PutMetricData record could not be replayed: {exc}")
        finally:
            self._replaying = False
        alarms_dir = self.workspace.state_dir / "cloudwatch" / "alarms"
        for path in sorted(alarms_dir.glob("*.json")) if alarms_dir.is_dir() else []:
            try:
                from sagestep.local.state import decode

                document = read_state_file(path)
                cloudwatch.alarms[document["name"]] = decode(document["object"])
            except Exception as exc:  # noqa: BLE001
                self.problems.append(f"{path}: {exc}")

    def _restore_executions(self) -> None:
        from sagestep.local.executions import restore_execution

        backend = self._sfn_backend()
        machines = {m.arn: m for m in backend.state_machines}
        for path in self.workspace.execution_records():
            try:
                record = read_state_file(path)
                execution = record["execution"]
                if execution["status"] == "RUNNING":
                    record = _aborted(record, "the local cloud stopped while this execution ran; start it again")
                    self.workspace.save_execution(record)
                machine = machines.get(execution["stateMachineArn"])
                if machine is not None:
                    machine.executions.append(restore_execution(record, machine))
            except (StateFileError, KeyError, TypeError, ValueError, AttributeError) as exc:
                self.problems.append(str(exc) if isinstance(exc, StateFileError) else f"{path}: {type(exc).__name__}: {exc}")

    def _abort_running_executions(self) -> None:
        """Executions still running when the cloud stops end ABORTED (locally they cannot resume after a restart)."""
        try:
            backend = self._sfn_backend()
        except Exception:  # noqa: BLE001 - moto not started
            return
        for machine in backend.state_machines:
            for execution in list(machine.executions):
                if getattr(execution, "exec_status", None) is not None and execution.status == "RUNNING":
                    try:
                        backend.stop_execution(execution.exec_arn, error="sagestep.CloudStopped",
                                               cause="the local cloud stopped while this execution ran; start it again")
                    except Exception:  # noqa: BLE001
                        pass
                    self.record_execution(execution)

    # ------------------------------------------------------------------------------------ the template

    def _deploy_template(self) -> None:
        document = tpl.load_template(self.template_path)
        self.resolver = tpl.Resolver(
            document, self.stack, self.parameter_overrides, custom_attributes=self._custom_attribute,
            source=str(self.template_path.relative_to(self.root) if self.template_path.is_relative_to(self.root) else self.template_path),
        )
        resolver = self.resolver
        s3, sns, sagemaker = self.client("s3"), self.client("sns"), self.client("sagemaker")
        existing_buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        groups = {g["ModelPackageGroupName"] for g in sagemaker.list_model_package_groups(MaxResults=100).get("ModelPackageGroupSummaryList", [])}
        for logical_id, resource in resolver.resources.items():
            if not resolver.resource_enabled(logical_id):
                continue
            rtype = resource.get("Type")
            name = resolver.physical_name(logical_id)
            if rtype == "AWS::S3::Bucket":
                if name not in existing_buckets:
                    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bool(resolver.resolve((resource.get("Properties") or {}).get("ObjectLockEnabled", False))))
                self._apply_bucket_properties(s3, name, resolver.resolve(resource.get("Properties") or {}))
            elif rtype == "AWS::SNS::Topic":
                sns.create_topic(Name=name)
            elif rtype == "AWS::SageMaker::ModelPackageGroup" and name not in groups:
                description = (resource.get("Properties") or {}).get("ModelPackageGroupDescription", "")
                sagemaker.create_model_package_group(ModelPackageGroupName=name, ModelPackageGroupDescription=str(resolver.resolve(description)))
        self.functions = tpl.functions(resolver, self.root)
        engine.HOOKS.functions = self.functions
        self.state_machines = tpl.state_machines(resolver, self.root)
        sfn = self.client("stepfunctions")
        for spec in self.state_machines.values():
            text = spec.definition_path.read_text()
            definition = tpl.substitute(text, spec.substitutions, str(spec.definition_path.relative_to(self.root)))
            sfn.create_state_machine(name=spec.name, definition=definition, roleArn=self.stack.arn("iam", "role/local-states", region=False))

    @staticmethod
    def _apply_bucket_properties(s3: Any, name: str, props: dict[str, Any]) -> None:
        """What AWS::S3::Bucket declares that changes behaviour locally: versioning, Object Lock, EventBridge."""
        status = (props.get("VersioningConfiguration") or {}).get("Status")
        if status:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
        lock = props.get("ObjectLockConfiguration")
        if lock and props.get("ObjectLockEnabled"):
            retention = (lock.get("Rule") or {}).get("DefaultRetention") or {}
            for unit in ("Days", "Years"):  # a !Ref to a Number parameter resolves to a string; S3 wants an integer
                if unit in retention:
                    retention[unit] = int(retention[unit])
            try:
                current = s3.get_object_lock_configuration(Bucket=name).get("ObjectLockConfiguration")
            except s3.exceptions.ClientError:
                current = None
            if _lock_rule(current) != _lock_rule(lock):  # a restarted cloud's bucket has it (moto refuses it once objects exist)
                s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock)
        eventbridge = ((props.get("NotificationConfiguration") or {}).get("EventBridgeConfiguration") or {})
        if eventbridge.get("EventBridgeEnabled") in (True, "true", "True"):
            s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}})

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
        """Do locally what the CodeBundle custom resource does on deploy, from the working tree; a bundle already
        published (same content hash) is not written again."""
        try:
            files = codebundle.collect(self.root / "ml", self.root / "src" / "sagestep")
        except FileNotFoundError as exc:  # e.g. ml/wheels not downloaded: the project's setup, said in one line
            raise tpl.TemplateError(str(exc)) from None
        version = codebundle.version_of(files)
        if (self.workspace.object_path(bucket, f"{prefix.strip('/')}/{version}/VERSION.json")).is_file():
            return {"S3Uri": f"s3://{bucket}/{prefix.strip('/')}/{version}/", "Version": version}
        return codebundle.publish(self.client("s3"), bucket, prefix, files, git_commit=_git_commit(self.root))

    # ------------------------------------------------------------------------------------ changes as they happen

    def after_request(self, request: dict[str, Any]) -> None:
        """Persist what a request changed before its answer leaves (an acknowledged change is on disk), and emit
        the events AWS would for it."""
        service, method, target, path = request["service"], request["method"], request["target"], request["path"]
        ok = request["status"] < 300
        if service == "s3" and method in ("PUT", "POST", "DELETE"):
            assert self.disk is not None
            self.disk.flush()
            from moto.s3.models import s3_backends

            for bucket in list(s3_backends[ACCOUNT_ID]["aws"].buckets.values()):
                self.disk.save_bucket(bucket)
            if ok:
                from sagestep.local.service_events import s3_object_events

                for detail_type, detail, resources in s3_object_events(request):
                    self.put_event("aws.s3", detail_type, detail, resources, origin=f"s3:{detail['reason']}")
        elif service == "sagemaker" and target and not path.startswith("/endpoints/"):
            action = target.split(".", 1)[-1]
            if not action.startswith(_READ_ACTIONS) and self._sagemaker_state is not None:
                self._sagemaker_state.save_changed()
            if ok and action in ("CreateModelPackage", "UpdateModelPackage"):
                from sagestep.local.service_events import model_package_event

                found = model_package_event(self._sagemaker_backend(), action, request)
                if found is not None:
                    self.put_event("aws.sagemaker", "SageMaker Model Package State Change", found[0], found[1],
                                   origin=f"sagemaker:{action}")
        elif service == "monitoring" and target and ("Alarm" in target):
            self._save_alarms()

    def package_before_update(self, target: str | None, body: bytes) -> dict[str, Any] | None:
        """A model package as it is before an UpdateModelPackage, so its event names the fields that changed."""
        if target != "SageMaker.UpdateModelPackage":
            return None
        try:
            arn = json.loads(body or b"{}").get("ModelPackageArn", "")
        except json.JSONDecodeError:
            return None
        backend = self._sagemaker_backend()
        package = backend.model_packages.get(backend.model_package_name_mapping.get(arn, arn))
        if package is None:
            return None
        return json.loads(json.dumps(package.gen_response_object(), default=str))

    def _save_alarms(self) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        from sagestep.local.files import atomic_write

        directory = self.workspace.state_dir / "cloudwatch" / "alarms"
        alarms = cloudwatch_backends[ACCOUNT_ID][REGION].alarms
        wanted = set()
        for name, alarm in list(alarms.items()):
            path = directory / f"{''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)}.json"
            wanted.add(path)
            atomic_write(self.workspace.tmp_dir, path, json.dumps({"name": name, "object": encode(alarm, name)}).encode())
        for path in directory.glob("*.json") if directory.is_dir() else []:
            if path not in wanted:
                path.unlink(missing_ok=True)

    def record_execution(self, execution: Any) -> None:
        from sagestep.local.executions import execution_record

        record = execution_record(execution)
        self.workspace.save_execution(record)
        status = record["execution"]["status"]
        arn = record["execution"]["executionArn"]
        if self._execution_status.get(arn) != status:
            self._execution_status[arn] = status
            from sagestep.local.service_events import execution_status_detail

            self.put_event("aws.states", "Step Functions Execution Status Change", execution_status_detail(record), [arn],
                           origin="states")
        self.on_change(f"execution {record['execution']['name']} ({record['execution']['stateMachineArn'].rsplit(':', 1)[-1]}) {status}")
        with self._execution_changed:
            self._execution_changes += 1
            self._execution_changed.notify_all()

    def execution_changes(self) -> int:
        return self._execution_changes

    def wait_for_execution_change(self, seen: int, timeout: float) -> None:
        """Until an execution starts, ends or is stopped after `seen` changes (execution_changes), or `timeout` s."""
        with self._execution_changed:
            self._execution_changed.wait_for(lambda: self._execution_changes != seen, timeout)

    def record_notification(self, topic_arn: str, message_id: str, subject: str | None, message: str) -> None:
        assert self._notifications is not None
        self._notifications.append({"TopicArn": topic_arn, "MessageId": message_id, "Subject": subject, "Message": message,
                                    "Timestamp": dt.datetime.now(dt.timezone.utc).isoformat()})
        self.on_change(f"notification {subject or ''} ({topic_arn.rsplit(':', 1)[-1]})")

    def record_metrics(self, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        if self._replaying or self._metrics_log is None:
            return
        stamped = [{**datum, "Timestamp": datum.get("Timestamp") or dt.datetime.now(dt.timezone.utc).isoformat()}
                   for datum in metric_data]
        self._metrics_log.append({"namespace": namespace, "data": stamped})

    def _job_changed(self, job: LocalJob) -> None:
        assert self.runner is not None
        self.workspace.save_job(job.root, self.runner.record(job))
        # moto's own job object answers List*Jobs (StatusEquals, times): keep it in step with the job that runs
        moto_job = getattr(self._sagemaker_backend(), f"{job.kind}_jobs", {}).get(job.name)
        if moto_job is not None:
            setattr(moto_job, f"{job.kind}_job_status", job.status)
            if job.end_time is not None:
                setattr(moto_job, f"{job.kind}_end_time", job.end_time)
            if job.failure_reason:
                moto_job.failure_reason = job.failure_reason
            if self._sagemaker_state is not None:
                self._sagemaker_state.save_changed()
        reason = f": {job.failure_reason.splitlines()[0][:160]}" if job.failure_reason and job.status != "InProgress" else ""
        self.on_change(f"{job.kind} job {job.name} {job.status}{reason}")
        from sagestep.local.service_events import job_state_detail

        self.put_event("aws.sagemaker", f"SageMaker {job.kind.capitalize()} Job State Change", job_state_detail(job),
                       [job.arn], origin="sagemaker")

    def _endpoint_changed(self, endpoint_name: str, status: str) -> None:
        if self._sagemaker_state is not None:
            self._sagemaker_state.save_changed()
        self.on_change(f"endpoint {endpoint_name} {status}")
        endpoint = self._sagemaker_backend().endpoints.get(endpoint_name)
        if endpoint is not None:
            from sagestep.local.service_events import endpoint_state_detail

            self.put_event("aws.sagemaker", "SageMaker Endpoint State Change", endpoint_state_detail(endpoint),
                           [endpoint.arn], origin="sagemaker")

    def publish_endpoint_metrics(self) -> int:
        if self.endpoints is None or not self.url:
            return 0
        return self.endpoints.publish_metrics(self.client("cloudwatch"))

    def _publish_metrics_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.publish_endpoint_metrics()
            except Exception:  # noqa: BLE001 - the next round tries again; a stopped server ends the loop
                if self._stop.is_set():
                    return

    def inject_fault(self, service: str, action: str, error_code: str, times: int = 1) -> None:
        engine.HOOKS.faults.setdefault((service, action.lower()), []).extend([error_code] * times)


def _list_moto_modules_once() -> None:
    """moto's server routes each request by listing its package directory (about 200 stat calls, under its global
    lock): a third of a request's cost here. The directory cannot change while the cloud runs; list it once."""
    from moto import backends

    if not getattr(backends.list_of_moto_modules, "listed_once", False):
        modules = frozenset(backends.list_of_moto_modules())

        def list_of_moto_modules() -> frozenset[str]:
            return modules

        list_of_moto_modules.listed_once = True  # type: ignore[attr-defined]
        backends.list_of_moto_modules = list_of_moto_modules


class CloudApp:
    """The WSGI app: moto's, plus the cloud's own paths and persistence after each request."""

    def __init__(self, moto_app: Any, cloud: LocalCloud) -> None:
        self.moto_app = moto_app
        self.cloud = cloud
        self.extra_apps: dict[str, Any] = {}  # path prefix -> WSGI app (the console)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        for prefix, app in self.extra_apps.items():
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix):] or "/"
                return app(environ, start_response)
        if path.startswith("/_sagestep/"):
            return self._internal(path, environ, start_response)
        service = _service(environ)
        request_body = b""
        if service != "s3" or "delete" in environ.get("QUERY_STRING", ""):  # S3 object bodies can be large
            length = int(environ.get("CONTENT_LENGTH") or 0)
            request_body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(request_body)
        before = self.cloud.package_before_update(environ.get("HTTP_X_AMZ_TARGET"), request_body)
        status: list[int] = [500]

        def recording_start_response(status_line: str, headers: Any, *args: Any) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, *args)

        result = self.moto_app(environ, recording_start_response)
        try:
            body = list(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        try:
            self.cloud.after_request({
                "service": service, "method": environ.get("REQUEST_METHOD", "GET"), "target": environ.get("HTTP_X_AMZ_TARGET"),
                "path": path, "query": environ.get("QUERY_STRING", ""), "status": status[0], "body": request_body,
                "response": b"".join(body) if service == "sagemaker" else b"", "copy_source": environ.get("HTTP_X_AMZ_COPY_SOURCE"),
                "remote_addr": environ.get("REMOTE_ADDR", "127.0.0.1"), "package_before": before,
            })
        except Exception:  # noqa: BLE001 - the request was served; say loudly that saving it failed
            logging.getLogger("sagestep.local").error("saving the workspace after %s %s failed:\n%s",
                                                      environ.get("REQUEST_METHOD"), path, traceback.format_exc())
        return body

    def _internal(self, path: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
            if not self.cloud.ready:
                start_response("503 Service Unavailable", [("Content-Type", "application/json")])
                return [json.dumps({"message": "the local cloud is starting"}).encode()]
            if path == "/_sagestep/info":
                answer: Any = json.loads(self.cloud.workspace.cloud_file.read_text()) if self.cloud.workspace.cloud_file.is_file() else {}
                answer["problems"] = self.cloud.problems
            elif path == "/_sagestep/stack":
                answer = {"code_bundles": self.cloud._code_bundles, "parameter_overrides": self.cloud.parameter_overrides}
            elif path == "/_sagestep/faults" and environ.get("REQUEST_METHOD") == "POST":
                self.cloud.inject_fault(body["service"], body["action"], body["error_code"], int(body.get("times", 1)))
                answer = {"ok": True}
            elif path == "/_sagestep/flush" and environ.get("REQUEST_METHOD") == "POST":
                answer = {"published": self.cloud.publish_endpoint_metrics()}
            else:
                start_response("404 Not Found", [("Content-Type", "application/json")])
                return [json.dumps({"message": f"no such path {path}"}).encode()]
        except (KeyError, ValueError, TypeError) as exc:
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [json.dumps({"message": f"bad request to {path}: {exc}"}).encode()]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer, default=str).encode()]


def _service(environ: dict[str, Any]) -> str | None:
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in authorization:
        scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            return scope[3]
    return None


def _decode_metric_data(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for datum in data:
        datum = dict(datum)
        if isinstance(datum.get("Timestamp"), str):
            datum["Timestamp"] = dt.datetime.fromisoformat(datum["Timestamp"])
        out.append(datum)
    return out


def _aborted(record: dict[str, Any], cause: str) -> dict[str, Any]:
    execution = dict(record["execution"])
    execution.update(status="ABORTED", error="sagestep.CloudStopped", cause=cause,
                     stopDate=execution.get("stopDate") or dt.datetime.now(dt.timezone.utc).isoformat())
    return {**record, "execution": execution}


def _install_state_hooks(cloud: LocalCloud) -> None:
    """Route SNS publishes, PutMetricData and execution status changes to the cloud (one cloud per process)."""
    global _CLOUD
    _CLOUD = cloud
    with _HOOK_LOCK:
        if _HOOKS_INSTALLED:
            return
        _install_hooks_once()


_CLOUD: LocalCloud | None = None
_HOOK_LOCK = threading.Lock()
_HOOKS_INSTALLED = False


def _install_hooks_once() -> None:
    global _HOOKS_INSTALLED
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.sns.models import SNSBackend

    from sagestep.local.executions import install_recording

    original_publish = engine._attr(SNSBackend, "publish")

    def publish(self: Any, *args: Any, **kwargs: Any) -> str:
        message_id = original_publish(self, *args, **kwargs)
        arguments = dict(zip(("message", "arn", "phone_number", "subject"), args))
        arguments.update(kwargs)
        topic_arn = arguments.get("arn") or arguments.get("target_arn") or ""
        if _CLOUD is not None and topic_arn:
            _CLOUD.record_notification(topic_arn, message_id, arguments.get("subject"), arguments.get("message", ""))
        return message_id

    original_put = engine._attr(CloudWatchBackend, "put_metric_data")

    def put_metric_data(self: Any, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        original_put(self, namespace, metric_data)
        if _CLOUD is not None:
            _CLOUD.record_metrics(namespace, json.loads(json.dumps(metric_data, default=_iso)))

    SNSBackend.publish = publish
    CloudWatchBackend.put_metric_data = put_metric_data

    # S3's events to EventBridge are the cloud's (AWS-shaped, local/service_events.py), not moto's
    import moto.s3.notifications as s3_notifications
    from moto.events.models import EventsBackend

    engine._attr(s3_notifications, "_send_event_bridge_message")
    s3_notifications._send_event_bridge_message = lambda *args, **kwargs: None
    original_put_events = engine._attr(EventsBackend, "put_events")

    def put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entries = original_put_events(self, events)
        for event, entry in zip(events, entries):
            if _CLOUD is not None and _CLOUD.bus is not None and entry.get("EventId") \
                    and event.get("EventBusName", "default") in ("default", None, ""):
                try:
                    detail = json.loads(event.get("Detail") or "{}")
                except json.JSONDecodeError:
                    continue  # moto answered the entry with its own validation error already
                when = event.get("Time")
                envelope = _CLOUD.bus.event(event["Source"], event["DetailType"], detail, list(event.get("Resources") or []),
                                            when if isinstance(when, dt.datetime) else None)
                envelope["id"] = entry["EventId"]
                _CLOUD.bus.put(envelope, origin="PutEvents")
        return entries

    EventsBackend.put_events = put_events
    install_recording(lambda execution: _CLOUD.record_execution(execution) if _CLOUD is not None else None)
    _HOOKS_INSTALLED = True


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def _reset_moto() -> None:
    """Forget every backend's in-memory state (the next cloud in this process restores from its own workspace)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def _git_commit(root: Path) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ml", "src"], cwd=root, capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _lock_rule(configuration: Any) -> tuple[Any, ...]:
    """An Object Lock configuration's meaning: enabled, mode, days, years (0 and absent alike)."""
    configuration = configuration or {}
    retention = (configuration.get("Rule") or {}).get("DefaultRetention") or {}
    return (configuration.get("ObjectLockEnabled"), retention.get("Mode"), int(retention.get("Days") or 0), int(retention.get("Years") or 0))
