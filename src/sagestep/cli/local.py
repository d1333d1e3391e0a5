"""`sagestep local run` and `sagestep local history`: state machines from template.yaml, executed locally."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any, TextIO

from sagestep.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    local = subparsers.add_parser("local", help="run the SAM application locally (no AWS account, no Docker)")
    commands = local.add_subparsers(dest="local_command", required=True)

    events = commands.add_parser("events", help="recent EventBridge events, the rules they matched and what they started")
    events.add_argument("--workspace", type=Path, default=Path(".sagestep"))
    events.add_argument("--limit", type=int, default=30, help="most recent events to show (default 30)")
    events.add_argument("--json", action="store_true", help="the records as JSON")
    events.set_defaults(func=cmd_events)

    console = commands.add_parser("console", help="the local cloud's console in a browser (prints its URL)")
    console.add_argument("--workspace", type=Path, default=Path(".sagestep"))
    console.add_argument("--open", action="store_true", help="also open it in the default browser")
    console.set_defaults(func=cmd_console)

    up = commands.add_parser("up", help="run the local cloud in the foreground (127.0.0.1), until Ctrl-C",
                             description="A long-lived local AWS for this app: standard clients (aws --endpoint-url, "
                             "boto3 endpoint_url) and every sagestep command use it.")
    add_runtime_arguments(up)
    up.add_argument("--port", type=int, default=4566, help="port on 127.0.0.1 (default 4566)")
    up.set_defaults(func=cmd_up)

    run = commands.add_parser("run", help="execute a state machine locally and follow it")
    run.add_argument("state_machine", help="logical ID in template.yaml (e.g. TrainingStateMachine) or an ASL file")
    run.add_argument("--input", required=True, type=Path, help="JSON file with the execution input")
    run.add_argument("--name", help="execution name (default: a UUID, as in AWS)")
    add_runtime_arguments(run)
    run.add_argument("--output-json", type=Path, help="write the execution record (status, output, history) here")
    run.set_defaults(func=cmd_run)

    endpoints = commands.add_parser("endpoints", help="list local endpoints, their variants and weights")
    add_runtime_arguments(endpoints)
    endpoints.set_defaults(func=cmd_endpoints)

    invoke = commands.add_parser("invoke", help="score a request body with a local endpoint (InvokeEndpoint)")
    invoke.add_argument("endpoint")
    invoke.add_argument("--body", required=True, type=Path, help="request body file (CSV rows or JSON)")
    invoke.add_argument("--content-type", help="default: text/csv for .csv files, else application/json")
    invoke.add_argument("--accept", default="application/json")
    invoke.add_argument("--target-variant")
    invoke.add_argument("--inference-id")
    add_runtime_arguments(invoke)
    invoke.set_defaults(func=cmd_invoke)

    traffic = commands.add_parser("traffic", help="send held-out rows through a local endpoint; write their labels later")
    traffic.add_argument("endpoint")
    traffic.add_argument("--rows", required=True, type=Path, help="CSV with a header and the true label column")
    traffic.add_argument("--rate", type=float, default=50.0, help="requests per second (default 50)")
    traffic.add_argument("--count", type=int, help="requests to send (default: every row once)")
    traffic.add_argument("--labels-after", default="PT1S", help="ISO-8601 delay before a label arrives (default PT1S)")
    traffic.add_argument("--labels", choices=("all", "approved"), default="all",
                         help="label every row, or only the applicants the endpoint approved, as in lending (default all)")
    traffic.add_argument("--target", help="label column (default: from --dataset-config, else a column named target/label)")
    traffic.add_argument("--dataset-config", type=Path, help="dataset config naming the target and positive label")
    add_runtime_arguments(traffic)
    traffic.set_defaults(func=cmd_traffic)

    history = commands.add_parser("history", help="print the event history of a past local execution")
    history.add_argument("execution", help="execution ARN or name")
    history.add_argument("--workspace", type=Path, default=Path(".sagestep"))
    history.add_argument("--json", action="store_true", help="print the raw events as JSON")
    history.set_defaults(func=cmd_history)


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", type=Path, default=Path(".sagestep"), help="local state directory (default .sagestep)")
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument(
        "--parameter-overrides", nargs="*", default=[], metavar="NAME=VALUE", help="template parameters, as for sam deploy"
    )
    parser.add_argument(
        "--time-scale", type=_time_scale, default=None,
        help="multiply Wait states, Retry back-off and polling by this (e.g. 0.01; default 1 = real time); a running "
             "cloud keeps its own",
    )


def _time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 0.01 for 100× faster)") from None
    if not (value > 0) or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number (1 = real time, 0.01 = 100× faster), got {text}")
    return value


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UserError(f"--parameter-overrides: {pair!r} is not NAME=VALUE")
        overrides[name] = value
    return overrides


class open_runtime:  # noqa: N801 - used as `with open_runtime(args) as runtime:`
    """The workspace's local cloud for a command (a client of `sagestep local up` if one runs, else its own);
    a workspace or template that cannot be used is the user's error: one line, exit 2."""

    def __init__(self, args: argparse.Namespace) -> None:
        from sagestep.local import LocalRuntime

        template = args.template.resolve()
        if not template.is_file():
            raise UserError(f"{args.template}: template not found; run from the project root or pass --template")
        self.runtime = LocalRuntime(
            project_root=template.parent,
            workspace=args.workspace,
            template_path=template,
            parameter_overrides=parse_overrides(args.parameter_overrides),
            time_scale=getattr(args, "time_scale", None),
        )

    def __enter__(self) -> Any:
        from sagestep.local.records import CloudError
        from sagestep.local.runtime import RuntimeError_
        from sagestep.local.workspace import WorkspaceError
        from sagestep.stack.template import TemplateError

        try:
            runtime = self.runtime.__enter__()
        except (CloudError, RuntimeError_, WorkspaceError, TemplateError) as exc:
            raise UserError(str(exc)) from None
        problems = runtime.cloud.problems if runtime.cloud is not None else (runtime.remote or {}).get("problems") or []
        for problem in problems:  # state files a crash (or a hand) damaged: the rest of the workspace still works
            print(f"warning: {problem}", file=sys.stderr)
        return runtime

    def __exit__(self, *exc: Any) -> None:
        self.runtime.__exit__(*exc)


def cmd_up(args: argparse.Namespace) -> int:
    import signal
    import threading

    from sagestep.local.cloud import LocalCloud
    from sagestep.local.records import CloudError
    from sagestep.local.workspace import WorkspaceError
    from sagestep.stack.template import TemplateError

    template = args.template.resolve()
    if not template.is_file():
        raise UserError(f"{args.template}: template not found; run from the project root or pass --template")
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be in 1..65535, got {args.port}")
    started = time.monotonic()

    def live(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)

    cloud = LocalCloud(template.parent, args.workspace, template, parse_overrides(args.parameter_overrides),
                       args.time_scale or 1.0, port=args.port, on_change=live)
    try:
        url = cloud.start()
    except (CloudError, WorkspaceError, TemplateError) as exc:
        raise UserError(str(exc)) from None
    try:
        print(_cloud_banner(cloud, url, time.monotonic() - started), flush=True)
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        stop.wait()
        print("stopping: model servers and jobs end, state is saved …", flush=True)
    finally:
        cloud.stop()
    print(f"stopped; the workspace {cloud.workspace.root} keeps everything for the next `sagestep local up`")
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from sagestep.local.records import CONSOLE_PATH
    from sagestep.local.workspace import Workspace, WorkspaceError

    workspace = Workspace(args.workspace)
    try:
        workspace.check()
    except WorkspaceError as exc:
        raise UserError(str(exc)) from None
    info = workspace.cloud_info()
    if info is None:
        raise UserError(f"no local cloud serves {workspace.root}; start one with `sagestep local up --workspace "
                        f"{args.workspace}` (the console is part of it)")
    url = f"{info['url']}{CONSOLE_PATH}/"
    print(url)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from sagestep.local.bus import read_events
    from sagestep.local.workspace import Workspace, WorkspaceError

    if args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    workspace = Workspace(args.workspace)
    try:
        workspace.check()
    except WorkspaceError as exc:
        raise UserError(str(exc)) from None
    records = read_events(workspace.root / "events.jsonl", args.limit)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    if not records:
        print(f"no events recorded in {workspace.root} yet")
    for record in records:
        event = record["event"]
        what = event.get("detail-type") or f"schedule {event.get('schedule')}"
        subject = _event_subject(event)
        matched = ", ".join(record["matched"]) or "no rule"
        print(f"{record['received'][:19]}  {what} ({event.get('source', 'scheduler')}{subject})  -> {matched}")
        for name in record.get("matched_disabled") or []:
            print(f"    {name}: matches but is DISABLED")
        for delivery in record["deliveries"]:
            if "execution" in delivery:
                print(f"    {delivery['rule']} started {delivery['execution']}")
            else:
                print(f"    {delivery['rule']} failed to start {delivery['target']}: {delivery['error']}: {delivery.get('message', '')[:200]}")
    return 0


def _event_subject(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    if isinstance(detail.get("object"), dict):
        return f": s3://{detail.get('bucket', {}).get('name')}/{detail['object'].get('key')}"
    for key in ("ModelPackageArn", "executionArn", "EndpointName", "TrainingJobName", "ProcessingJobName"):
        if detail.get(key):
            status = detail.get("ModelApprovalStatus") or detail.get("status") or detail.get("EndpointStatus") or ""
            return f": {str(detail[key]).rsplit('/', 1)[-1].rsplit(':', 1)[-1]} {status}".rstrip()
    return ""


def _cloud_banner(cloud: Any, url: str, seconds: float) -> str:
    from sagestep.local.records import CONSOLE_PATH

    resolver = cloud.resolver
    lines = [f"sagestep local cloud at {url} (workspace {cloud.workspace.root}, started in {seconds:.1f}s, "
             f"time scale {cloud.time_scale:g})", ""]
    kinds = {"AWS::S3::Bucket": "bucket", "AWS::SNS::Topic": "topic", "AWS::SageMaker::ModelPackageGroup": "model package group"}
    for logical_id, resource in resolver.resources.items():
        kind = kinds.get(resource.get("Type", ""))
        if kind and resolver.resource_enabled(logical_id):
            lines.append(f"  {kind:<20} {resolver.physical_name(logical_id):<48} ({logical_id})")
    for logical_id, spec in sorted(cloud.state_machines.items()):
        lines.append(f"  {'state machine':<20} {spec.name:<48} ({logical_id})")
    for endpoint in cloud.client("sagemaker").list_endpoints().get("Endpoints", []):
        lines.append(f"  {'endpoint':<20} {endpoint['EndpointName']:<48} ({endpoint['EndpointStatus']})")
    lines += [
        "",
        "Use it with your usual tools (any key works; the region is us-east-1):",
        f"  export AWS_ENDPOINT_URL={url} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1",
        "  aws s3 ls;  aws stepfunctions list-executions --state-machine-arn ARN;  aws sagemaker list-model-packages ...",
        f"  every sagestep command with --workspace {cloud.workspace.root} uses this cloud",
        f"Console: {url}{CONSOLE_PATH}/  (sagestep local console)",
    ]
    for problem in cloud.problems:
        lines.append(f"  warning: {problem}")
    lines.append("Ctrl-C stops it (model servers and jobs end, state is kept).")
    return "\n".join(lines)


def read_input(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(f"{path}: input file not found") from exc
    except IsADirectoryError as exc:
        raise UserError(f"--input {path}: is a directory; pass a JSON file with the execution input") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); the input must be a JSON file") from exc
    except OSError as exc:
        raise UserError(f"{path}: cannot read the input file ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc


class LiveReporter:
    """One line per state entered and exited; a progress line for SageMaker jobs while they run."""

    def __init__(self, runtime: Any, stream: TextIO = sys.stdout) -> None:
        self.runtime = runtime
        self.stream = stream
        self.started = time.monotonic()
        self._last_progress = 0.0

    def _stamp(self) -> str:
        return f"[{time.monotonic() - self.started:7.1f}s]"

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if "stateEnteredEventDetails" in event:
            print(f"{self._stamp()} ▶ {event['stateEnteredEventDetails']['name']}", file=self.stream, flush=True)
        elif "stateExitedEventDetails" in event:
            print(f"{self._stamp()} ✓ {event['stateExitedEventDetails']['name']}", file=self.stream, flush=True)
        elif kind.endswith("Failed") or kind.endswith("TimedOut"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
            error = details.get("error", kind)
            cause = short_cause(str(details.get("cause", "")))
            print(f"{self._stamp()} ✗ {kind}: {error}: {cause}", file=self.stream, flush=True)

    def on_tick(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < 5.0:
            return
        self._last_progress = now
        sagemaker = self.runtime.client("sagemaker")
        for kind in ("Training", "Processing", "Transform"):
            listed = getattr(sagemaker, f"list_{kind.lower()}_jobs")(StatusEquals="InProgress")[f"{kind}JobSummaries"]
            for job in listed:
                seconds = time.time() - job["CreationTime"].timestamp()
                print(f"{self._stamp()}   … {kind.lower()} job {job[f'{kind}JobName']}: InProgress ({seconds:.0f}s)",
                      file=self.stream, flush=True)


def _shorten(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_cause(cause: str, limit: int = 400) -> str:
    """A failure's cause in one short line that leads with the error: for a failed SageMaker job (whose cause is the
    whole Describe*Job response, kept in the history) its name, status and own message (ExitMessage, else
    FailureReason, first line); for anything else the first line."""
    if cause.lstrip().startswith("{"):
        try:
            job = json.loads(cause)
        except ValueError:
            job = None
        if isinstance(job, dict):
            name = next((job[k] for k in ("ProcessingJobName", "TrainingJobName", "TransformJobName") if k in job), None)
            status = next((job[k] for k in ("ProcessingJobStatus", "TrainingJobStatus", "TransformJobStatus") if k in job), "")
            message = job.get("ExitMessage") or job.get("FailureReason") or "no FailureReason given"
            if name:
                first = str(message).strip().splitlines()[0] if str(message).strip() else str(message)
                return _shorten(f"{name} {status}: {first}", limit) + "  (full job request: sagestep local history)"
            if "errorMessage" in job:  # a Lambda function's error: its type and message (the stack is in the history)
                return _shorten(f"{job.get('errorType', 'Error')}: {job['errorMessage']}", limit)
    lines = [line for line in cause.strip().splitlines() if line.strip()]
    return _shorten(lines[0] if lines else cause, limit)


def _run_prefix(record: Any) -> str | None:
    """The run's output prefix (`Run.OutputS3Uri`) from the output, else the last state output that has it."""
    candidates = [record.output] if isinstance(record.output, dict) else []
    for event in reversed(record.history or []):
        exited = event.get("stateExitedEventDetails") or {}
        try:
            candidates.append(json.loads(exited.get("output") or "null"))
        except ValueError:
            continue
    for state in candidates:
        run = state.get("Run") if isinstance(state, dict) else None
        if isinstance(run, dict) and isinstance(run.get("OutputS3Uri"), str):
            return run["OutputS3Uri"]
    return None


def print_run_summary(runtime: Any, record: Any, stream: TextIO = sys.stdout) -> bool:
    """What a training run ended with: the gate verdict, key metrics and where the report is (from the run's
    report/summary.json, written by the pipeline's report step). False when the run has no summary."""
    prefix = _run_prefix(record)
    if prefix is None:
        return False
    uri = prefix + "report/summary.json"
    try:
        summary = runtime.read_json(uri)
    except Exception:  # noqa: BLE001 - the run stopped before its report step: nothing to summarise
        return False
    gate, metrics, rows = summary.get("gate") or {}, summary.get("metrics") or {}, summary.get("rows") or {}
    verdict = "passed" if gate.get("passed") else "REFUSED"
    print(f"quality gate {verdict}" + ("" if gate.get("passed") else ": " + "; ".join(gate.get("reasons") or [])),
          file=stream)
    names = (("auc", "AUC"), ("ks", "KS"), ("gini", "Gini"), ("f1", "F1"), ("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R²"),
             ("naive_rmse", "naive seasonal RMSE"), ("error_ratio_to_naive", "ratio to naive"))
    shown = "  ".join(f"{name} {metrics[key]:.4f}" for key, name in names if isinstance(metrics.get(key), (int, float)))
    tuning = summary.get("tuning") or {}
    if tuning:
        print(f"tuning: {tuning.get('trials')} trials of {tuning.get('tuning_job_arn')}; best {tuning.get('best_training_job')}",
              file=stream)
    counts = f"{rows.get('test')} test rows of {rows.get('read')} read"
    if rows.get("unlabeled_dropped"):
        counts += f", {rows['unlabeled_dropped']} without a label dropped"
    print(f"test metrics: {shown} ({counts})", file=stream)
    print(f"model line: {summary.get('model_line')} ({summary.get('dataset')}, {summary.get('algorithm')})", file=stream)
    report = summary.get("report") or prefix + "report/report.html"
    print(f"report: {report}", file=stream)
    print(f"        {runtime.local_path(report)}", file=stream)
    return True


def cmd_run(args: argparse.Namespace) -> int:
    execution_input = read_input(args.input)
    from sagestep.local.runtime import RuntimeError_
    from sagestep.stack.template import TemplateError

    from botocore.exceptions import ClientError

    _check_asl_file(args.state_machine)
    try:
        with open_runtime(args) as runtime:
            reporter = LiveReporter(runtime)
            try:
                arn = runtime.start(args.state_machine, execution_input, name=args.name)
            except RuntimeError_ as exc:
                raise UserError(str(exc)) from exc
            except ClientError as exc:  # refused by Step Functions: a bad name, a reused name, a bad definition
                error = exc.response.get("Error", {})
                what = f"--name {args.name!r}" if error.get("Code") in ("InvalidName", "ExecutionAlreadyExists") \
                    else args.state_machine
                hint = {"ExecutionAlreadyExists": "; an execution name is used once per state machine (drop --name "
                                                  "for a fresh UUID)",
                        "InvalidName": "; use 1-80 letters, digits, '-' or '_'"}.get(error.get("Code", ""), "")
                raise UserError(f"{what}: {error.get('Code')}: {error.get('Message')}{hint}") from None
            print(f"started {arn}", flush=True)
            try:
                record = runtime.wait(arn, on_event=reporter.on_event, on_tick=reporter.on_tick)
            except KeyboardInterrupt:
                name = arn.rsplit(":", 1)[-1]
                goes_on = "goes on in the local cloud" if runtime.cloud is None else "is stopped with this command's cloud"
                print(f"interrupted: execution {name} {goes_on}; see it with `sagestep local history {name} --workspace "
                      f"{args.workspace}`" + (f", stop it with `aws stepfunctions stop-execution --execution-arn {arn}`"
                                              if runtime.cloud is None else ""), file=sys.stderr)
                raise
            if record.status != "SUCCEEDED":
                print(f"error: {record.error}", file=sys.stderr)
                print(f"cause: {short_cause(str(record.cause or ''), limit=2000)}", file=sys.stderr)
            print_run_summary(runtime, record)
    except TemplateError as exc:
        raise UserError(str(exc)) from exc
    if args.output_json:
        args.output_json.write_text(json.dumps(record.to_dict(), indent=2, default=str))
    print(f"{record.status} {record.execution_arn}")
    return 0 if record.status == "SUCCEEDED" else 1


def _check_asl_file(state_machine: str) -> None:
    """An ASL file given instead of a logical ID must be readable JSON with StartAt and States (said before any cloud)."""
    path = Path(state_machine)
    if path.suffix != ".json":
        return
    if not path.is_file():
        raise UserError(f"{path}: ASL file not found; pass a logical ID of template.yaml or an existing .asl.json file")
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason}); an ASL file is JSON") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); fix the syntax "
                        "(`sagestep validate` checks the template's state machines)") from None
    if not isinstance(definition, dict) or not isinstance(definition.get("States"), dict) or "StartAt" not in definition:
        missing = [k for k in ("StartAt", "States") if not isinstance(definition, dict) or k not in definition]
        raise UserError(f"{path}: not a state machine definition (missing {', '.join(missing) or 'a States object'}); "
                        "an ASL file has StartAt and States")
    if definition["StartAt"] not in definition["States"]:
        raise UserError(f"{path}: StartAt {definition['StartAt']!r} is not one of its States; name the first state")
    for name, target in _transitions(definition["States"]):
        raise UserError(f"{path}: InvalidDefinition: state {name!r} goes to {target!r}, which is not a state of its "
                        "States (MISSING_TRANSITION_TARGET); fix the Next")


def _transitions(states: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(state, target) for every Next, Default or Choice target that names no state of the same States block."""
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        targets = [state.get("Next"), state.get("Default")] + [c.get("Next") for c in state.get("Choices") or []
                                                                if isinstance(c, dict)]
        targets += [c.get("Next") for c in state.get("Catch") or [] if isinstance(c, dict)]
        yield from ((name, t) for t in targets if isinstance(t, str) and t not in states)
        for branch in state.get("Branches") or []:
            yield from _transitions(branch.get("States") or {}) if isinstance(branch, dict) else ()
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _transitions(state[key].get("States") or {})


def cmd_history(args: argparse.Namespace) -> int:
    from sagestep.local.files import StateFileError
    from sagestep.local.workspace import Workspace, WorkspaceError

    try:
        workspace = Workspace(args.workspace)
        workspace.check()
        record = workspace.find_execution(args.execution)
    except (FileNotFoundError, StateFileError, WorkspaceError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    execution = record["execution"]
    print(f"{execution['status']} {execution['executionArn']}  started {execution['startDate']}  stopped {execution['stopDate']}")
    for event in record["history"]:
        details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
        summary = details.get("name") or details.get("resource") or details.get("error") or ""
        extra = f" {details['error']}: {_shorten(str(details.get('cause', '')), 300)}" if "error" in details else ""
        print(f"{event['id']:4d} {str(event['timestamp'])[11:23]} {event['type']:<32} {summary}{extra}")
    return 0


def cmd_endpoints(args: argparse.Namespace) -> int:
    with open_runtime(args) as runtime:
        sagemaker = runtime.client("sagemaker")
        names = [e["EndpointName"] for e in sagemaker.list_endpoints().get("Endpoints", [])]
        if not names:
            print("no local endpoints")
        for name in sorted(names):
            described = sagemaker.describe_endpoint(EndpointName=name)
            print(f"{name}  {described['EndpointStatus']}  config {described['EndpointConfigName']}")
            if described.get("FailureReason"):
                print(f"    failure: {_shorten(described['FailureReason'], 300)}")
            for variant in described.get("ProductionVariants", []):
                print(f"    {variant['VariantName']:<16} weight {variant.get('CurrentWeight', '-')}")
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    try:
        body = args.body.read_bytes()
    except FileNotFoundError as exc:
        raise UserError(f"{args.body}: body file not found") from exc
    content_type = args.content_type or ("text/csv" if args.body.suffix == ".csv" else "application/json")
    with open_runtime(args) as runtime:
        runtime_client = runtime.client("sagemaker-runtime")
        kwargs = {"EndpointName": args.endpoint, "ContentType": content_type, "Accept": args.accept, "Body": body}
        if args.target_variant:
            kwargs["TargetVariant"] = args.target_variant
        if args.inference_id:
            kwargs["InferenceId"] = args.inference_id
        try:
            response = runtime_client.invoke_endpoint(**kwargs)
        except runtime_client.exceptions.ModelError as exc:
            raise UserError(f"{args.endpoint}: the model rejected the request ({exc.response.get('OriginalStatusCode')}): {exc.response.get('OriginalMessage')}") from exc
        except runtime_client.exceptions.ValidationError as exc:
            raise UserError(str(exc)) from exc
        print(response["Body"].read().decode())
        print(f"(variant {response.get('InvokedProductionVariant')})", file=sys.stderr)
    return 0


def cmd_traffic(args: argparse.Namespace) -> int:
    import math

    from sagestep.local.traffic import Traffic, TrafficInputError, load_rows
    from sagestep.monitoring.merge import MergeInputError, parse_iso_duration
    from sagestep.training.config import ConfigError

    if not (args.rate > 0 and math.isfinite(args.rate)):
        raise UserError(f"--rate must be a number of requests per second greater than 0, got {args.rate:g}")
    if args.count is not None and args.count < 1:
        raise UserError(f"--count must be at least 1 (or left out to send every row once), got {args.count}")
    try:
        delay = parse_iso_duration(args.labels_after).total_seconds()
        rows = load_rows(args.rows, target=args.target, dataset_config=args.dataset_config)
    except (TrafficInputError, MergeInputError, ConfigError) as exc:
        raise UserError(str(exc)) from exc
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename}: file not found") from exc
    with open_runtime(args) as runtime:
        sagemaker = runtime.client("sagemaker")
        try:
            status = sagemaker.describe_endpoint(EndpointName=args.endpoint)["EndpointStatus"]
        except sagemaker.exceptions.ClientError:
            raise UserError(f"endpoint {args.endpoint}: no such endpoint in {args.workspace}; see `sagestep local "
                            "endpoints`") from None
        if status != "InService":
            raise UserError(f"endpoint {args.endpoint} is {status}, not InService; see `sagestep local endpoints`")
        report = Traffic(runtime, args.endpoint, rows, rate=args.rate, labels_after=delay, labels=args.labels).send(
            count=args.count or len(rows.instances)
        )
    print(json.dumps(report.to_dict()))
    if report.errors:
        print(f"error: {report.errors} of {report.sent} request(s) to {args.endpoint} failed (last: {report.last_error}); "
              "labels were written only for the requests scored; see `sagestep local endpoints`", file=sys.stderr)
    return 0 if not report.errors else 1
