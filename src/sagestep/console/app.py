"""The console's WSGI application: routes, views and the approval form.

`create_app(clients, workspace_dir, project)` returns a WSGI callable. It binds no socket: the local cloud mounts it
under a prefix (SCRIPT_NAME, e.g. `/_console`), tests serve it on an ephemeral port. Every URL it renders is built
from the request's SCRIPT_NAME, so it works under any prefix.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import mimetypes
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, NotFound
from werkzeug.routing import Map, MapAdapter, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from sagestep.console import charts
from sagestep.console.graph import STATUSES, state_runs
from sagestep.console.monitoring import CHECKS, Monitoring
from sagestep.console.sources import API_CALLS, TERMINAL, ApiCall, Sources, iter_status_transitions, job_reference, parse_s3_uri

HERE = Path(__file__).parent
LOG = logging.getLogger("sagestep.console")
EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
PAGE_SIZE = 25
POLL_MS = 2000

URLS = Map([
    Rule("/", endpoint="home"),
    Rule("/executions", endpoint="executions"),
    Rule("/execution/<path:arn>", endpoint="execution"),
    Rule("/registry", endpoint="registry"),
    Rule("/registry/group/<group>", endpoint="group"),
    Rule("/registry/package/<path:arn>", endpoint="package"),
    Rule("/registry/decide", endpoint="decide", methods=["POST"]),
    Rule("/endpoints", endpoint="endpoints"),
    Rule("/endpoints/<name>", endpoint="endpoint"),
    Rule("/abtest/<name>", endpoint="abtest"),
    Rule("/monitoring", endpoint="monitoring"),
    Rule("/monitoring/<endpoint_name>/<schedule>", endpoint="schedule"),
    Rule("/monitoring/<endpoint_name>/<schedule>/feature/<feature>", endpoint="feature"),
    Rule("/notifications", endpoint="notifications"),
    Rule("/s3/<bucket>/<path:key>", endpoint="s3"),
    Rule("/static/<path:path>", endpoint="static"),
], strict_slashes=False)


def create_app(clients: Callable[[str], Any] | Mapping[str, Any], workspace_dir: str | Path | None,
               project: Mapping[str, str] | None = None) -> Console:
    """clients: `service -> boto3 client` (e.g. `LocalRuntime.client`) or a mapping of them, pointed at the local
    cloud (or AWS); each is created once. workspace_dir: the local cloud's workspace, for what has no API
    (notifications.jsonl, jobs/<job>/logs, events.jsonl); None to go without. project: resolved names of the stack's
    resources by logical ID (e.g. {"ArtifactsBucket": "..."}); missing names are discovered through the APIs."""
    return Console(Sources(clients, Path(workspace_dir) if workspace_dir else None, project))


class Console:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.monitoring = Monitoring(sources)
        self.on_request: Callable[[list[ApiCall]], None] | None = None  # sees each request's API calls (bench/console.py)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(when=_when, clock=_clock, duration=_duration, pretty=_pretty, num=charts.fmt, short=_short_arn,
                                ago=_ago, pct=_pct)
        self.env.globals.update(STATUSES=STATUSES, POLL_MS=POLL_MS)

    def warm(self) -> int:
        """Read what pages of long histories need into the caches (every monitoring run's summaries and feature
        statistics), so the first visit is as fast as the next; run it in a daemon thread after create_app."""
        return self.monitoring.warm()

    # ------------------------------------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        adapter = URLS.bind_to_environ(environ)
        calls: list[ApiCall] = []
        token = API_CALLS.set(calls)
        started = time.perf_counter()
        try:
            endpoint, values = adapter.match()
            response = getattr(self, f"view_{endpoint}")(request, adapter, **values)
        except HTTPException as exc:
            response = self._error(request, adapter, exc.code or 500, exc.description or exc.name)
        except Exception as exc:  # noqa: BLE001 - one line for the person, the traceback for the server's log
            LOG.exception("console: %s %s failed", request.method, request.path)
            response = self._error(request, adapter, 502, f"the cloud's API could not answer this page: {type(exc).__name__}: {exc}"[:500])
        finally:
            API_CALLS.reset(token)
        if self.on_request is not None:
            self.on_request(calls)
        api = sum(c.seconds for c in calls)
        response.headers["Server-Timing"] = (f"total;dur={(time.perf_counter() - started) * 1000:.1f}, "
                                             f"api;dur={api * 1000:.1f};desc=\"{len(calls)} calls\"")
        return response(environ, start_response)

    def _error(self, request: Request, adapter: MapAdapter, code: int, message: str) -> Response:
        return self.render(request, adapter, "error.html.j2", code=code, message=message, http_status=code)

    def render(self, request: Request, adapter: MapAdapter, template: str, http_status: int = 200, **context: Any) -> Response:
        def url(endpoint: str, **values: Any) -> str:
            return adapter.build(endpoint, {k: v for k, v in values.items() if v is not None})

        html = self.env.get_template(template).render(url=url, request=request, nav=template.split(".")[0], **context)
        response = Response(html, status=http_status, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    def view_static(self, request: Request, adapter: MapAdapter, path: str) -> Response:
        root = (HERE / "static").resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise NotFound(f"no static file {path}")
        response = Response(target.read_bytes(), mimetype=mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        response.headers["Cache-Control"] = "max-age=300"
        return response

    # ------------------------------------------------------------------------------------------------ overview

    def view_home(self, request: Request, adapter: MapAdapter) -> Response:
        return redirect(adapter.build("executions"), code=302)

    # ------------------------------------------------------------------------------------------------ executions

    def view_executions(self, request: Request, adapter: MapAdapter) -> Response:
        machines = self.sources.state_machines()
        status = request.args.get("status") or None
        if status and status not in EXECUTION_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(EXECUTION_STATUSES)}")
        chosen = request.args.get("machine") or None
        selected = [m for m in machines if chosen in (None, m["name"])]
        if chosen and not selected:
            raise NotFound(f"no state machine named {chosen!r}")
        sections = []
        for machine in selected:
            token = request.args.get("next") if chosen else None
            executions, next_token = self.sources.executions(machine["stateMachineArn"], status, token,
                                                             PAGE_SIZE if chosen else 10)
            rows = []
            for summary in executions:
                described = self.sources.execution(summary["executionArn"])
                rows.append({**summary, "cause": self.sources.start_cause(summary["executionArn"], described.get("input")),
                             "error": described.get("error"), "seconds": _seconds(summary.get("startDate"), summary.get("stopDate"))})
            sections.append({"machine": machine, "rows": rows, "next": next_token})
        running = any(r["status"] == "RUNNING" for s in sections for r in s["rows"])
        template = "executions_live.html.j2" if request.args.get("fragment") else "executions.html.j2"
        return self.render(request, adapter, template, machines=machines, sections=sections, status=status,
                           chosen=chosen, statuses=EXECUTION_STATUSES, running=running)

    def view_execution(self, request: Request, adapter: MapAdapter, arn: str) -> Response:
        try:
            execution = self.sources.execution(arn)
        except Exception as exc:  # noqa: BLE001 - ExecutionDoesNotExist / InvalidArn from the API
            raise NotFound(f"no execution {arn}: {exc}") from exc
        terminal = execution["status"] in TERMINAL
        history = self.sources.history(arn, terminal)
        definition = self.sources.machine(execution["stateMachineArn"])["definition"]
        graph = self.sources.graph(definition)
        runs = state_runs(history, graph, execution["status"])
        cause = self.sources.start_cause(arn, execution.get("input"))
        children = _children(history)
        fragment = request.args.get("fragment")
        if fragment == "live":
            body = {"status": execution["status"], "nodes": runs.node_status(graph),
                    "history": self.env.get_template("history_table.html.j2").render(events=_history_rows(history, execution), url=None),
                    "summary": self.env.get_template("execution_summary.html.j2").render(
                        execution=execution, cause=cause, seconds=_seconds(execution.get("startDate"), execution.get("stopDate")),
                        children=children, url=_builder(adapter))}
            return Response(json.dumps(body, default=str), mimetype="application/json", headers={"Cache-Control": "no-store"})
        state = request.args.get("state")
        panel = self._state_panel(state, graph, runs) if state else None
        if fragment == "state":
            if panel is None:
                raise NotFound(f"no state {state!r} in this execution's definition")
            return self.render(request, adapter, "state_panel.html.j2", panel=panel)
        nodes = {n.name: n for n in graph.nodes if n.type not in ("Start", "End", "Cluster")}
        states_table = [{"name": name, "id": nodes[name].id, "type": nodes[name].type, "status": runs.status.get(name, "not-reached"),
                         "visits": len(runs.visits.get(name, [])), "parent": graph.parents.get(name)}
                        for name in graph.order if name in nodes]
        return self.render(
            request, adapter, "execution.html.j2", execution=execution, cause=cause, graph=graph.to_dict(),
            node_status=runs.node_status(graph), states=states_table, panel=panel, children=children,
            events=_history_rows(history, execution), terminal=terminal,
            seconds=_seconds(execution.get("startDate"), execution.get("stopDate")),
        )

    def _state_panel(self, name: str, graph: Any, runs: Any) -> dict[str, Any] | None:
        if name not in graph.states:
            return None
        definition = graph.states[name]
        visits = runs.visits.get(name, [])
        panel: dict[str, Any] = {"name": name, "type": graph.types[name], "definition": definition,
                                 "status": runs.status.get(name, "not-reached"), "visits": [], "iterations": runs.iterations.get(name, {})}
        for visit in visits[-20:]:
            entry = {
                "status": visit.status, "iteration": visit.map_index, "entered": visit.entered.get("timestamp"),
                "exited": (visit.exited or {}).get("timestamp"), "input": visit.input, "output": visit.output,
                "error": visit.error, "cause": _maybe_json(visit.cause), "retries": visit.retries,
                "attempts": [{"scheduled": (a.scheduled or {}).get("timestamp"), "outcome": (a.outcome or {}).get("type"),
                              "error": _details(a.outcome).get("error"), "cause": _details(a.outcome).get("cause")}
                             for a in visit.attempts if a.scheduled is not None or a.failed],
                "parameters": visit.parameters, "job": None,
            }
            reference = job_reference(str(definition.get("Resource", "")), visit.parameters)
            if reference:
                kind, job_name = reference
                job = self.sources.job(kind, job_name)
                entry["job"] = {
                    "kind": kind, "name": job_name, "described": job,
                    "timeline": list(iter_status_transitions(job)) if job else [],
                    "metrics": (job or {}).get("FinalMetricDataList") or [],
                    "status": (job or {}).get(f"{kind.capitalize()}JobStatus"),
                    "failure": (job or {}).get("FailureReason"),
                    "log": self.sources.job_log_tail(job_name),
                }
            panel["visits"].append(entry)
        panel["hidden_visits"] = max(0, len(visits) - 20)
        return panel

    # ------------------------------------------------------------------------------------------------ registry

    def view_registry(self, request: Request, adapter: MapAdapter) -> Response:
        groups = []
        for group in self.sources.groups():
            packages = self.sources.packages(group["ModelPackageGroupName"])
            counts: dict[str, int] = {}
            for package in packages:
                counts[package["ModelApprovalStatus"]] = counts.get(package["ModelApprovalStatus"], 0) + 1
            groups.append({**group, "counts": counts, "total": len(packages)})
        return self.render(request, adapter, "registry.html.j2", groups=groups)

    def view_group(self, request: Request, adapter: MapAdapter, group: str) -> Response:
        try:
            summaries = self.sources.packages(group)
        except Exception as exc:  # noqa: BLE001
            raise NotFound(f"no model package group {group!r}: {exc}") from exc
        rows = []
        for summary in summaries:
            described = self.sources.package(summary["ModelPackageArn"])
            props = described.get("CustomerMetadataProperties") or {}
            rows.append({**summary, "props": props, "history": approval_history(described)})
        return self.render(request, adapter, "group.html.j2", group=group, rows=rows)

    def view_package(self, request: Request, adapter: MapAdapter, arn: str, form: dict[str, Any] | None = None,
                     status: int = 200) -> Response:
        try:
            package = self.sources.package(arn)
        except Exception as exc:  # noqa: BLE001
            raise NotFound(f"no model package {arn}: {exc}") from exc
        props = package.get("CustomerMetadataProperties") or {}
        metrics = _package_metrics(self.sources, package)
        run_prefix = _run_prefix(package)
        report = f"{run_prefix}report.html" if run_prefix else None
        report_exists = bool(report) and self.sources.object_exists(report)
        hyper = _hyperparameters(props)
        lineage = [(k, props[k]) for k in sorted(props) if k.startswith(("Data", "Input", "Code", "Config", "Execution",
                                                                           "Training", "Model", "Algorithm", "Dataset"))]
        related = self._package_executions(arn, props)
        if request.args.get("fragment") == "executions":
            return self.render(request, adapter, "package_executions.html.j2", related=related)
        return self.render(
            request, adapter, "package.html.j2", http_status=status, package=package, props=props, metrics=metrics,
            history=approval_history(package), report=report if report_exists else None, run_prefix=run_prefix,
            hyper=hyper, lineage=lineage, related=related, form=form or {},
            done=request.args.get("done"), gate=_gate(props),
        )

    def _package_executions(self, arn: str, props: Mapping[str, str]) -> list[dict[str, Any]]:
        """Executions that made or used this package: its training run (lineage), and executions the event log
        says rules started on this package's events (e.g. the deployment started by its approval)."""
        rows = []
        if props.get("ExecutionArn"):
            rows.append({"arn": props["ExecutionArn"], "role": "trained it", "cause": None})
        for record in self.sources.event_log():
            if record.detail.get("ModelPackageArn") != arn and arn not in record.resources:
                continue
            for match in record.matches:
                if match.get("executionArn"):
                    rows.append({"arn": match["executionArn"], "role": f"started by rule {match.get('rule')}",
                                 "cause": f"{record.detail_type} at {record.time}"})
        for row in rows:
            try:
                row["status"] = self.sources.execution(row["arn"])["status"]
            except Exception:  # noqa: BLE001 - an execution the API no longer knows
                row["status"] = "unknown"
        return rows

    def view_decide(self, request: Request, adapter: MapAdapter) -> Response:
        _same_origin(request)
        from sagestep.registry import approvals

        arn = request.form.get("arn", "")
        decision = request.form.get("decision", "")
        by, reason = request.form.get("by", ""), request.form.get("reason", "")
        form = {"by": by, "reason": reason, "decision": decision}
        try:
            approvals.decide(self.sources.client("sagemaker"), arn, decision, by=by, reason=reason)
        except approvals.ApprovalError as exc:
            message = str(exc).replace("--by", "Name").replace("--reason", "Reason")
            return self.view_package(request, adapter, arn, form={**form, "error": message}, status=400)
        target = adapter.build("package", {"arn": arn, "done": approvals.DECISIONS.get(decision, decision)})
        return redirect(target, code=303)

    # ------------------------------------------------------------------------------------------------ endpoints

    def view_endpoints(self, request: Request, adapter: MapAdapter) -> Response:
        rows = []
        for summary in self.sources.endpoints():
            described = self.sources.endpoint(summary["EndpointName"])
            rows.append({**summary, "variants": described.get("ProductionVariants") or [],
                         "shadow": described.get("ShadowProductionVariants") or []})
        return self.render(request, adapter, "endpoints.html.j2", rows=rows, tests=self._ab_tests())

    def view_endpoint(self, request: Request, adapter: MapAdapter, name: str) -> Response:
        try:
            endpoint = self.sources.endpoint(name)
        except Exception as exc:  # noqa: BLE001
            raise NotFound(f"no endpoint {name!r}: {exc}") from exc
        config = self.sources.endpoint_config(endpoint["EndpointConfigName"]) or {}
        variants = []
        configured = {v["VariantName"]: v for v in config.get("ProductionVariants", [])}
        for variant in endpoint.get("ProductionVariants") or []:
            spec = configured.get(variant["VariantName"], {})
            variants.append({**variant, "model": spec.get("ModelName"), "package": self.sources.model_package(spec.get("ModelName")),
                             "instance": spec.get("InstanceType") or ("serverless" if spec.get("ServerlessConfig") else "")})
        shadows = [{**v, "package": self.sources.model_package(v.get("ModelName"))}
                   for v in config.get("ShadowProductionVariants", []) or []]
        created = endpoint.get("CreationTime") or dt.datetime.now(dt.timezone.utc)
        metrics = endpoint_metrics(self.sources, name, [v["VariantName"] for v in variants] + [v["VariantName"] for v in shadows],
                                   created)
        capture = capture_volume(self.sources, config, name)
        return self.render(request, adapter, "endpoint.html.j2", endpoint=endpoint, config=config, variants=variants,
                           shadows=shadows, metrics=metrics, capture=capture,
                           tests=[t for t in self._ab_tests() if t.get("endpoint") in (None, name)])

    def _ab_tests(self) -> list[dict[str, Any]]:
        bucket = self.sources.artifacts_bucket()
        if bucket is None:
            return []
        tests = []
        for prefix in self.sources.list_prefixes(bucket, "ab-tests/"):
            name = prefix.split("/")[1]
            looks = sorted(k["Key"] for k in self.sources.list_keys(bucket, f"{prefix}evidence/") if k["Key"].endswith(".json"))
            last = self.sources.object_json(bucket, looks[-1]) if looks else None
            tests.append({"name": name, "looks": len(looks), "decision": (last or {}).get("Decision"),
                          "endpoint": None, "reasons": (last or {}).get("Reasons", [])})
        return sorted(tests, key=lambda t: t["name"], reverse=True)

    def view_abtest(self, request: Request, adapter: MapAdapter, name: str) -> Response:
        bucket = self.sources.artifacts_bucket()
        if bucket is None:
            raise NotFound("no artifacts bucket")
        keys = sorted(k["Key"] for k in self.sources.list_keys(bucket, f"ab-tests/{name}/evidence/") if k["Key"].endswith(".json"))
        if not keys:
            raise NotFound(f"no A/B test {name!r} (no evidence under s3://{bucket}/ab-tests/{name}/evidence/)")
        document = self.sources.object_json(bucket, keys[-1]) or {}
        plan = document.get("Plan") or {}
        evidence = document.get("Evidence") or {}
        looks = evidence.get("Looks") or []
        series = []
        fractions = plan.get("InformationFractions") or []
        boundaries = plan.get("Boundaries") or []
        if fractions and boundaries:
            series.append(charts.Series("planned boundary", boundaries, x=fractions, style="planned", dashed=True, points=False))
            series.append(charts.Series("−planned boundary", [-b for b in boundaries], x=fractions, style="planned", dashed=True,
                                        points=False, legend=False))
        reached = [(row["InformationFraction"], row["Boundary"]) for row in looks if row.get("Boundary") is not None]
        if reached:
            series.append(charts.Series("boundary at the information reached", [b for _, b in reached], x=[x for x, _ in reached], style="boundary"))
            series.append(charts.Series("−boundary at the information reached", [-b for _, b in reached], x=[x for x, _ in reached],
                                        style="boundary", legend=False))
        series.append(charts.Series("Z (challenger − champion)", [row.get("Statistic") for row in looks],
                                    x=[row.get("InformationFraction", 0.0) for row in looks], style="s1"))
        lower = "lower" if evidence.get("LowerIsBetter", True) else "higher"
        plot = charts.chart(series, title="Z statistic per look against the boundaries",
                            x_label="information fraction n / n_max", y_label=f"Z ({evidence.get('Metric')}, {lower} is better)",
                            lines=[charts.Line(0.0, "", style="zero", marks_above=False)])
        return self.render(request, adapter, "abtest.html.j2", name=name, document=document, looks=looks, plot=plot,
                           plan=plan, evidence=evidence, keys=keys, bucket=bucket)

    # ------------------------------------------------------------------------------------------------ monitoring

    def view_monitoring(self, request: Request, adapter: MapAdapter) -> Response:
        schedules = []
        for endpoint_name, schedule in self.monitoring.schedules():
            runs = self.monitoring.runs(endpoint_name, schedule)
            last = runs[-1] if runs else None
            summaries = self.monitoring.summaries(last) if last else {}
            schedules.append({"endpoint": endpoint_name, "schedule": schedule, "runs": len(runs), "last": last,
                              "checks": {check: summaries.get(check) for check in CHECKS},
                              "flagged": (summaries.get("data_quality") or {}).get("FlaggedFeatures") or []})
        return self.render(request, adapter, "monitoring.html.j2", schedules=schedules)

    def view_schedule(self, request: Request, adapter: MapAdapter, endpoint_name: str, schedule: str) -> Response:
        runs = self.monitoring.runs(endpoint_name, schedule)
        if not runs:
            raise NotFound(f"no monitoring runs for {endpoint_name}/{schedule}")
        labels = [r.label for r in runs]
        rows, per_check_metrics = [], {check: [] for check in CHECKS}
        for run in runs:
            summaries = self.monitoring.summaries(run)
            rows.append({"run": run, "summaries": summaries,
                         "violations": sum(int(s.get("Violations", 0) or 0) for s in summaries.values())})
            for check in CHECKS:
                per_check_metrics[check].append((summaries.get(check) or {}).get("Metrics") or {})
        latest = self.monitoring.feature_digest(runs[-1])
        features = []
        digests = [self.monitoring.feature_digest(run) for run in runs]
        for name, row in latest.items():
            distances = [d.get(name, {}).get("distance") for d in digests]
            features.append({"name": name, "latest": row, "spark": charts.sparkline(distances, row.get("threshold"), label=f"{name} drift distance"),
                             "crossed": sum(1 for x in distances if x is not None and row.get("threshold") is not None and x > row["threshold"])})
        features.sort(key=lambda f: (-(f["latest"].get("distance") or 0.0), f["name"]))
        quality = _metric_chart(labels, per_check_metrics["model_quality"], ("auc", "accuracy", "f1", "precision", "recall"),
                                title="Model quality over time (once labels arrive)", y_label="metric value")
        bias_metrics = per_check_metrics["bias_attribution"]
        names = sorted({k for m in bias_metrics for k in m})
        bias = [chart for chart in (
            _metric_chart(labels, bias_metrics, tuple(k for k in names if k.startswith("disparate_impact_")),
                          title="Disparate impact per protected attribute", y_label="DI", band=(0.8, 1.25), band_label="four-fifths band 0.8–1.25"),
            _metric_chart(labels, bias_metrics, tuple(k for k in names if k.startswith("statistical_parity_difference_")),
                          title="Statistical parity difference", y_label="SPD"),
            _metric_chart(labels, bias_metrics, tuple(k for k in names if k.startswith("attribution")),
                          title="Feature attribution agreement with the baseline (NDCG)", y_label="NDCG",
                          lines=[charts.Line(0.9, "threshold", marks_above=False)]),
        ) if chart]
        violations = charts.chart([charts.Series("violations", [r["violations"] for r in rows])], categories=labels,
                                  title="Violations per run", y_label="violations", height=160, y_range=(0, None))
        live_runs = rows[::-1]
        return self.render(request, adapter, "schedule.html.j2", endpoint_name=endpoint_name, schedule=schedule, rows=live_runs,
                           features=features, quality=quality, bias=bias, violations=violations, last=runs[-1],
                           last_violations=self.monitoring.violations(runs[-1]))

    def view_feature(self, request: Request, adapter: MapAdapter, endpoint_name: str, schedule: str, feature: str) -> Response:
        runs = self.monitoring.runs(endpoint_name, schedule)
        digests = [self.monitoring.feature_digest(run).get(feature) for run in runs]
        if not any(digests):
            raise NotFound(f"no feature {feature!r} in the data-quality reports of {endpoint_name}/{schedule}")
        labels = [r.label for r in runs]
        baseline = self._baseline_for(endpoint_name).get(feature, {})
        rows = [{"run": run, **(d or {})} for run, d in zip(runs, digests)]
        threshold = next((d.get("threshold") for d in reversed(digests) if d and d.get("threshold") is not None), None)
        values = lambda key: [(d or {}).get(key) for d in digests]  # noqa: E731
        distance = charts.chart(
            [charts.Series("distance to baseline", values("distance"))], categories=labels,
            title=f"{feature}: distance to the baseline per run", y_label="distance",
            lines=[charts.Line(threshold, "threshold")] if threshold is not None else [], y_range=(0, None))
        charts_out = {"distance": distance}
        if any(v is not None for v in values("mean")):
            band = (baseline["p25"], baseline["p75"]) if baseline.get("p25") is not None else None
            charts_out["quantiles"] = charts.chart(
                [charts.Series("p05", values("p05"), style="s5", dashed=True), charts.Series("p25", values("p25"), style="s3"),
                 charts.Series("median", values("p50"), style="s1"), charts.Series("p75", values("p75"), style="s3"),
                 charts.Series("p95", values("p95"), style="s5", dashed=True)],
                categories=labels, title=f"{feature}: quantiles per run", y_label=feature, band=band, band_label="baseline p25–p75")
            mean_band = (baseline["mean"] - (baseline.get("std") or 0) * 0.1, baseline["mean"] + (baseline.get("std") or 0) * 0.1) if baseline.get("mean") is not None else None
            charts_out["mean"] = charts.chart(
                [charts.Series("mean", values("mean"))], categories=labels, title=f"{feature}: mean per run",
                y_label=feature, band=mean_band, band_label="baseline mean ± 0.1σ")
        charts_out["missing"] = charts.chart(
            [charts.Series("missing %", values("missing_pct"))], categories=labels, title=f"{feature}: missing values per run",
            y_label="% missing", band=(baseline["missing_pct"], baseline["missing_pct"]) if baseline.get("missing_pct") is not None else None,
            band_label="baseline", y_range=(0, None), height=160)
        return self.render(request, adapter, "feature.html.j2", endpoint_name=endpoint_name, schedule=schedule, feature=feature,
                           rows=rows[::-1], charts=charts_out, baseline=baseline, threshold=threshold)

    def _baseline_for(self, endpoint_name: str) -> dict[str, dict[str, Any]]:
        """The live package's data-quality baseline statistics (DriftCheckBaselines), as the monitor compares to."""
        try:
            endpoint = self.sources.endpoint(endpoint_name)
        except Exception:  # noqa: BLE001 - an endpoint deleted since: no baseline band
            return {}
        config = self.sources.endpoint_config(endpoint["EndpointConfigName"]) or {}
        for variant in config.get("ProductionVariants", []):
            package_arn = self.sources.model_package(variant.get("ModelName"))
            if package_arn:
                try:
                    package = self.sources.package(package_arn)
                except Exception:  # noqa: BLE001
                    continue
                uri = (((package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}).get("Statistics") or {}).get("S3Uri")
                return self.monitoring.baseline_digest(uri)
        return {}

    # ------------------------------------------------------------------------------------------------ notifications

    def view_notifications(self, request: Request, adapter: MapAdapter) -> Response:
        notes = self.sources.notifications()
        events = self.sources.event_log(limit=200)
        return self.render(request, adapter, "notifications.html.j2", notes=notes, events=events,
                           events_file=self.sources.workspace / "events.jsonl" if self.sources.workspace else None)

    # ------------------------------------------------------------------------------------------------ S3 objects

    def view_s3(self, request: Request, adapter: MapAdapter, bucket: str, key: str) -> Response:
        body = self.sources.object_bytes(bucket, key)
        if body is None:
            raise NotFound(f"no object s3://{bucket}/{key}")
        mimetype = mimetypes.guess_type(key)[0] or ("application/json" if key.endswith((".json", ".jsonl")) else "text/plain")
        response = Response(body, mimetype=mimetype)
        # Objects are data, not console pages: a sandboxed origin cannot post to the console as the user.
        response.headers["Content-Security-Policy"] = "sandbox allow-scripts"
        return response


# ---------------------------------------------------------------------------------------------------- helpers


def _same_origin(request: Request) -> None:
    """POSTs change the registry: accept them only from the console's own pages (Origin, else Referer)."""
    expected = f"{request.scheme}://{request.host}"
    origin = request.headers.get("Origin")
    if origin is None and request.referrer:
        parts = urlsplit(request.referrer)
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin != expected or request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden(f"refused: this form must be sent from the console's own page ({expected}), not from {origin or 'an unknown origin'}")


def _builder(adapter: MapAdapter) -> Callable[..., str]:
    def url(endpoint: str, **values: Any) -> str:
        return adapter.build(endpoint, {k: v for k, v in values.items() if v is not None})
    return url


def _details(event: Mapping[str, Any] | None) -> dict[str, Any]:
    for key, value in (event or {}).items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _children(history: list[dict[str, Any]]) -> list[str]:
    """Executions this one started (startExecution tasks): their ARNs from the task results."""
    arns = []
    for event in history:
        if event.get("type") == "TaskSucceeded" and _details(event).get("resourceType") == "states":
            output = _maybe_json(_details(event).get("output"))
            if isinstance(output, dict) and output.get("ExecutionArn"):
                arns.append(str(output["ExecutionArn"]))
    return arns


def _history_rows(history: list[dict[str, Any]], execution: Mapping[str, Any]) -> list[dict[str, Any]]:
    start = execution.get("startDate")
    rows = []
    for event in history:
        details = _details(event)
        text = details.get("name") or details.get("resource") or ""
        if details.get("index") is not None:
            text = f"{text} [{details['index']}]"
        rows.append({"id": event.get("id"), "type": event.get("type"), "step": text, "resourceType": details.get("resourceType"),
                     "elapsed": _seconds(start, event.get("timestamp")), "time": event.get("timestamp"),
                     "error": details.get("error"), "cause": details.get("cause"),
                     "failure": str(event.get("type", "")).endswith(("Failed", "TimedOut", "Aborted"))})
    return rows


def approval_history(package: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every approval decision the package carries, oldest first: numbered entries (`Approved1By`, `Rejected2At`, ...
    when decisions are kept append-only) and the latest unnumbered ones (`ApprovedBy`/`RejectedBy`), plus the
    ApprovalDescription. Duplicates (the same decision under two spellings) are shown once."""
    import re

    props = package.get("CustomerMetadataProperties") or {}
    found: dict[tuple[str, str], dict[str, str]] = {}
    for key, value in props.items():
        match = re.fullmatch(r"(Approved|Rejected)(\d*)(By|At|Reason)", key)
        if match:
            found.setdefault((match[1], match[2]), {"decision": match[1]})[match[3].lower()] = value
    rows: list[dict[str, str]] = []
    seen = set()
    for (decision, _), row in sorted(found.items(), key=lambda item: (item[1].get("at", ""), item[0][1])):
        identity = (decision, row.get("by"), row.get("at"), row.get("reason"))
        if identity in seen:
            continue
        seen.add(identity)
        rows.append(row)
    described = package.get("ApprovalDescription")
    if described and not any(r.get("reason") and r["reason"] in described for r in rows):
        rows.append({"decision": package.get("ModelApprovalStatus", ""), "by": "", "at": "", "reason": described})
    return rows


def _gate(props: Mapping[str, str]) -> str | None:
    return props.get("QualityGate")


def _hyperparameters(props: Mapping[str, str]) -> list[tuple[str, str]]:
    text = props.get("HyperParameters", "")
    pairs = []
    for item in text.split(";") if ";" in text else text.split():
        name, _, value = item.partition("=")
        if name.strip():
            pairs.append((name.strip(), value.strip()))
    return pairs


def _run_prefix(package: Mapping[str, Any]) -> str | None:
    uri = ((((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics")) or {}).get("S3Uri")
    if uri and "/evaluation/" in uri:
        return uri.rsplit("/evaluation/", 1)[0] + "/"
    return None


def _package_metrics(sources: Sources, package: Mapping[str, Any]) -> dict[str, Any]:
    """The registered evaluation (Model Monitor model-quality format): headline metrics with their std dev."""
    uri = ((((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics")) or {}).get("S3Uri")
    document = sources.uri_json(uri) if uri else None
    if not isinstance(document, dict):
        return {}
    block = document.get("binary_classification_metrics") or document.get("regression_metrics") or {}
    out = {}
    for name, value in block.items():
        if isinstance(value, dict) and isinstance(value.get("value"), (int, float)):
            out[name] = {"value": value["value"], "std": value.get("standard_deviation")}
    return out


def endpoint_metrics(sources: Sources, endpoint: str, variants: list[str], since: dt.datetime) -> dict[str, Any]:
    """Invocations, 4xx/5xx errors and p50/p99 model latency per variant over the endpoint's life, from CloudWatch
    (namespace AWS/SageMaker, dimensions EndpointName + VariantName), at most ~20 periods. Where CloudWatch returns no
    percentiles (the local one computes none) the average latency is shown instead, and the page says so."""
    now = dt.datetime.now(dt.timezone.utc)
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.timezone.utc)
    span = max((now - since).total_seconds(), 60.0)
    period = max(60, int(math.ceil(span / 20 / 60)) * 60)
    start = now - dt.timedelta(seconds=period * math.ceil(span / period) + period)
    end = now + dt.timedelta(seconds=period)
    series: dict[tuple[str, str, str], dict[dt.datetime, float]] = {}
    try:
        for variant in variants:
            for metric in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors"):
                points = sources.metric_statistics(endpoint, variant, metric, start, end, period, statistics=["Sum"])
                series[(variant, metric, "Sum")] = {p["Timestamp"]: p["Sum"] for p in points if "Sum" in p}
            points = sources.metric_statistics(endpoint, variant, "ModelLatency", start, end, period, extended=["p50", "p99"])
            for stat in ("p50", "p99"):
                series[(variant, "ModelLatency", stat)] = {p["Timestamp"]: p["ExtendedStatistics"][stat] for p in points
                                                           if stat in p.get("ExtendedStatistics", {})}
            if not series[(variant, "ModelLatency", "p99")]:
                points = sources.metric_statistics(endpoint, variant, "ModelLatency", start, end, period, statistics=["Average"])
                series[(variant, "ModelLatency", "Average")] = {p["Timestamp"]: p["Average"] for p in points if "Average" in p}
    except Exception as exc:  # noqa: BLE001 - CloudWatch unreachable: say so on the page
        return {"error": str(exc), "charts": [], "table": [], "labels": [], "period": period, "percentiles": False}
    # One bucket per period from `start`, whatever timestamp each series reports its periods with.
    buckets = int(math.ceil((end - start).total_seconds() / period))
    def bucket(stamp: dt.datetime) -> int:
        return min(buckets - 1, max(0, int((stamp - start).total_seconds() // period)))
    used = sorted({bucket(t) for values in series.values() for t in values})
    first, last = (used[0], used[-1]) if used else (0, -1)
    labels = [(start + dt.timedelta(seconds=period * i)).strftime("%H:%M") for i in range(first, last + 1)]
    table, per_metric = [], {}
    for (variant, metric, stat), by_time in series.items():
        by_bucket: dict[int, float] = {}
        for stamp, value in by_time.items():
            by_bucket[bucket(stamp)] = value
        values = [by_bucket.get(i) for i in range(first, last + 1)]
        if metric == "ModelLatency":
            values = [None if v is None else v / 1000.0 for v in values]  # microseconds -> ms
        if any(v is not None for v in values):
            per_metric.setdefault((metric, stat), []).append(
                charts.Series(variant, values, style=f"s{variants.index(variant) % 6 + 1}"))
        table.append({"variant": variant, "metric": metric, "stat": stat, "values": values,
                      "total": sum(v for v in values if v is not None) if stat == "Sum" else None})
    titles = {("Invocations", "Sum"): ("Invocations per period", "requests"),
              ("ModelLatency", "p50"): ("Model latency p50", "ms"), ("ModelLatency", "p99"): ("Model latency p99", "ms"),
              ("ModelLatency", "Average"): ("Model latency, average", "ms"),
              ("Invocation4XXErrors", "Sum"): ("4xx errors per period", "errors"),
              ("Invocation5XXErrors", "Sum"): ("5xx errors per period", "errors")}
    out_charts = [{"title": title, "series": per_metric[key],
                   "svg": charts.chart(per_metric[key], categories=labels, title=title, y_label=unit, height=180, y_range=(0, None))}
                  for key, (title, unit) in titles.items() if key in per_metric]
    percentiles = any(key in per_metric for key in (("ModelLatency", "p50"), ("ModelLatency", "p99")))
    return {"charts": out_charts, "table": table, "labels": labels, "period": period, "percentiles": percentiles}


def capture_volume(sources: Sources, config: Mapping[str, Any], endpoint: str) -> dict[str, Any] | None:
    """Data capture files and bytes per variant under `<DestinationS3Uri>/<endpoint>/<variant>/` (SageMaker's layout;
    variants of earlier configs, e.g. an A/B test's, are listed too)."""
    capture = config.get("DataCaptureConfig") or {}
    destination = capture.get("DestinationS3Uri")
    if not destination:
        return None
    try:
        bucket, prefix = parse_s3_uri(f"{destination.rstrip('/')}/{endpoint}/")
    except ValueError:
        return None
    current = {v.get("VariantName") for v in config.get("ProductionVariants", []) + (config.get("ShadowProductionVariants") or [])}
    variants: dict[str, dict[str, Any]] = {}
    for variant_prefix in sources.list_prefixes(bucket, prefix):
        variant = variant_prefix.rstrip("/").rsplit("/", 1)[-1]
        items = sources.list_keys(bucket, variant_prefix)
        variants[variant] = {"files": len(items), "bytes": sum(int(i.get("Size", 0)) for i in items), "current": variant in current}
    return {"destination": destination, "sampling": capture.get("InitialSamplingPercentage"), "variants": variants,
            "enabled": capture.get("EnableCapture", True)}


def _metric_chart(labels: list[str], metrics: list[dict[str, Any]], names: tuple[str, ...] | None, *, title: str,
                  y_label: str, band: tuple[float, float] | None = None, band_label: str = "",
                  lines: tuple[charts.Line, ...] | list[charts.Line] = ()) -> dict[str, Any] | None:
    keys = list(names) if names else sorted({k for m in metrics for k, v in m.items() if isinstance(v, (int, float)) and not k.endswith("_best_constant_classifier")})
    series = []
    for index, key in enumerate(k for k in keys if any(isinstance(m.get(k), (int, float)) for m in metrics)):
        series.append(charts.Series(key, [m.get(key) if isinstance(m.get(key), (int, float)) else None for m in metrics],
                                    style=f"s{index % 6 + 1}"))
    if not series:
        return None
    svg = charts.chart(series, categories=labels, title=title, y_label=y_label, band=band, band_label=band_label, lines=lines)
    return {"svg": svg, "series": series, "labels": labels, "title": title}


def _seconds(start: Any, stop: Any) -> float | None:
    if not isinstance(start, dt.datetime):
        return None
    end = stop if isinstance(stop, dt.datetime) else dt.datetime.now(start.tzinfo)
    return max(0.0, (end - start).total_seconds())


def _when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (int, float)) and value > 1e11:  # epoch milliseconds
        return dt.datetime.fromtimestamp(value / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return str(value or "")


def _clock(value: Any) -> str:
    return _when(value)[11:] or ""


def _ago(value: Any) -> str:
    if not isinstance(value, dt.datetime):
        return ""
    seconds = (dt.datetime.now(value.tzinfo or dt.timezone.utc) - value).total_seconds()
    return _duration(seconds) + " ago"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value:.1f} %"


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        parsed = _maybe_json(value)
        if parsed is value:
            return value
        value = parsed
    return json.dumps(value, indent=2, default=str, sort_keys=False)


def _short_arn(value: Any) -> str:
    text = str(value or "")
    if ":model-package/" in text:
        group, _, version = text.rsplit(":model-package/", 1)[1].rpartition("/")
        return f"{group} v{version}"
    return text.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if text.startswith("arn:") else text

