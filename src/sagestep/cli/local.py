"""`sagestep local run` and `sagestep local history`: state machines from template.yaml, executed locally."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from sagestep.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    local = subparsers.add_parser("local", help="run the SAM application locally (no AWS account, no Docker)")
    commands = local.add_subparsers(dest="local_command", required=True)

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
        "--time-scale", type=float, default=1.0, help="multiply Wait states, Retry back-off and polling by this (e.g. 0.01)"
    )


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UserError(f"--parameter-overrides: {pair!r} is not NAME=VALUE")
        overrides[name] = value
    return overrides


def open_runtime(args: argparse.Namespace) -> Any:
    from sagestep.local import LocalRuntime

    template = args.template.resolve()
    if not template.is_file():
        raise UserError(f"{args.template}: template not found; run from the project root or pass --template")
    return LocalRuntime(
        project_root=template.parent,
        workspace=args.workspace,
        template_path=template,
        parameter_overrides=parse_overrides(args.parameter_overrides),
        time_scale=args.time_scale,
    )


def read_input(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UserError(f"{path}: input file not found") from exc
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
        for job in self.runtime.runner.running():
            elapsed = (job.end_time or job.start_time or job.creation_time)
            seconds = time.time() - elapsed.timestamp()
            print(
                f"{self._stamp()}   … {job.kind} job {job.name}: {job.status} / {job.secondary_status} ({seconds:.0f}s)",
                file=self.stream,
                flush=True,
            )


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
    shown = "  ".join(f"{name} {metrics[key]:.4f}" for key, name in (("auc", "AUC"), ("ks", "KS"), ("gini", "Gini"),
                                                                      ("f1", "F1")) if isinstance(metrics.get(key), (int, float)))
    counts = f"{rows.get('test')} test rows of {rows.get('read')} read"
    if rows.get("unlabeled_dropped"):
        counts += f", {rows['unlabeled_dropped']} without a label dropped"
    print(f"test metrics: {shown} ({counts})", file=stream)
    print(f"model line: {summary.get('model_line')} ({summary.get('dataset')}, {summary.get('algorithm')})", file=stream)
    report = summary.get("report") or prefix + "report/report.html"
    print(f"report: {report}", file=stream)
    runtime.save()
    print(f"        {runtime.local_path(report)}", file=stream)
    return True


def cmd_run(args: argparse.Namespace) -> int:
    execution_input = read_input(args.input)
    from sagestep.local.runtime import RuntimeError_
    from sagestep.stack.template import TemplateError

    try:
        with open_runtime(args) as runtime:
            reporter = LiveReporter(runtime)
            try:
                arn = runtime.start(args.state_machine, execution_input, name=args.name)
            except RuntimeError_ as exc:
                raise UserError(str(exc)) from exc
            print(f"started {arn}", flush=True)
            record = runtime.wait(arn, on_event=reporter.on_event, on_tick=reporter.on_tick)
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


def cmd_history(args: argparse.Namespace) -> int:
    from sagestep.local.workspace import Workspace

    try:
        record = Workspace(args.workspace).find_execution(args.execution)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from exc
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
    from sagestep.local.traffic import Traffic, TrafficInputError, load_rows
    from sagestep.monitoring.merge import MergeInputError, parse_iso_duration

    try:
        delay = parse_iso_duration(args.labels_after).total_seconds()
        rows = load_rows(args.rows, target=args.target, dataset_config=args.dataset_config)
    except (TrafficInputError, MergeInputError) as exc:
        raise UserError(str(exc)) from exc
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename}: file not found") from exc
    with open_runtime(args) as runtime:
        report = Traffic(runtime, args.endpoint, rows, rate=args.rate, labels_after=delay).send(
            count=args.count or len(rows.instances)
        )
    print(json.dumps(report.to_dict()))
    return 0 if report.sent > report.errors else 1
