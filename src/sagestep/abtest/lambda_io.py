"""What the `ab_winner` Lambda does, without the handler: plan a test, and decide one look from S3 and CloudWatch.

`plan_test(event, s3)` designs the group-sequential test (`design.plan`) from the A/B execution input and stores
it, with the traffic share and guardrails, at `PlanS3Uri`. `decide_look(event, s3, cloudwatch)` reads the plan,
every merged record of both variants (capture + groundTruthData, see MONITORING_FORMATS.md), the variants'
invocation metrics, and calls `decide.decide`; the evidence JSON (and a PNG of statistic vs boundary per look) is
written under `EvidenceS3Prefix`. Stateless: a look is recomputed from the stored plan, the merged files (each
record is available from its merge window end, in the file name) and the look cutoffs in the event, so a retried
look returns the same decision.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import re
from typing import Any, Mapping

from sagestep.abtest import design
from sagestep.abtest.decide import Guardrails, decide
from sagestep.aws.s3io import parse_s3_uri, read_json, write_json

UTC = dt.timezone.utc
_MERGED = re.compile(r"merged-(\d{8}T\d{6}Z)\.jsonl$")
VARIANT_KEYS = ("champion", "challenger")


class ABInputError(ValueError):
    """A bad A/B input; the message names the field and the fix."""


def _number(event: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = event.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ABInputError(f"A/B input: {key} must be a number, got {value!r}")
    return float(value)


# -- plan ------------------------------------------------------------------------------------------------------
def plan_test(event: Mapping[str, Any], s3: Any) -> dict[str, Any]:
    """event: {PlanS3Uri, Metric, Mode, MinimumDetectableEffect, Alpha, Power, Looks, TrafficShare,
    Variance (mean metrics: σ_A² + σ_B², or σ_d² in shadow mode) | BaseRate (default_rate), Guardrails?, NMax?};
    the design fields may also come grouped under "Design" (as the state machine passes them)."""
    event = {**(event.get("Design") or {}), **{k: v for k, v in event.items() if k != "Design"}}
    metric = event.get("Metric", "brier")
    looks = int(_number(event, "Looks", 5))
    share = _number(event, "TrafficShare", 0.1)
    if not 0.0 < share < 1.0:
        raise ABInputError(f"A/B input: TrafficShare must be in (0, 1), got {share}")
    spread_key = "BaseRate" if metric in design.PROPORTION_METRICS else "Variance"
    if spread_key not in event:
        raise ABInputError(
            f"A/B input: {spread_key} is required for metric {metric!r} (the champion's "
            f"{'default rate' if spread_key == 'BaseRate' else 'per-request loss variance, summed over both arms'})"
        )
    try:
        plan = design.plan(
            metric,
            _number(event, spread_key),
            _number(event, "MinimumDetectableEffect"),
            alpha=_number(event, "Alpha", 0.05),
            power=_number(event, "Power", 0.8),
            looks=looks,
            mode=event.get("Mode", "split"),
            threshold=_number(event, "Threshold", 0.5),
            n_max=int(event["NMax"]) if event.get("NMax") is not None else None,
        )
    except ValueError as exc:
        raise ABInputError(f"A/B input: {exc}") from None
    rails = dict(event.get("Guardrails") or {})
    rails.setdefault("MinSamplePerArm", min(1000, math.ceil(plan.n_max / looks)))
    try:
        Guardrails.from_dict(rails)  # fail now, not at the first look
    except ValueError as exc:
        raise ABInputError(f"A/B input: {exc}") from None
    if rails["MinSamplePerArm"] > plan.n_max:
        raise ABInputError(f"A/B input: Guardrails.MinSamplePerArm ({rails['MinSamplePerArm']}) exceeds the plan's NMax "
                           f"({plan.n_max}); lower it or the MinimumDetectableEffect")
    champion_n, challenger_n = plan.arm_sizes(share) if plan.mode == "split" else (plan.n_max, plan.n_max)
    document = {"Plan": plan.to_dict(), "TrafficShare": share, "Guardrails": rails,
                "ArmSizes": {"Champion": champion_n, "Challenger": challenger_n}}
    write_json(s3, event["PlanS3Uri"], document)
    return {"PlanS3Uri": event["PlanS3Uri"], "NMax": plan.n_max, "Looks": plan.looks,
            "Boundaries": [round(b, 4) for b in plan.boundaries], "NChampion": champion_n, "NChallenger": challenger_n}


# -- merged records --------------------------------------------------------------------------------------------
def _decoded(block: Mapping[str, Any]) -> str:
    data = block.get("data", "")
    return base64.b64decode(data).decode("utf-8") if block.get("encoding") == "BASE64" else data


def score_of(output: str) -> float:
    """The predicted probability in an endpoint output: JSON {"predictions": [{"score": …}]}, or a bare number/CSV."""
    text = output.strip()
    if text.startswith("{"):
        return float(json.loads(text)["predictions"][0]["score"])
    return float(text.split(",")[0].splitlines()[0])


def merged_record(line: str, available_at: str) -> dict[str, Any]:
    """A merged capture line as the record `decide` reads: InferenceId, Prediction, Label, AvailableAt."""
    record = json.loads(line)
    meta = record["eventMetadata"]
    return {
        "InferenceId": meta.get("inferenceId") or meta["eventId"],
        "Prediction": score_of(_decoded(record["captureData"]["endpointOutput"])),
        "Label": float(_decoded(record["groundTruthData"]).strip()),
        "AvailableAt": available_at,
    }


def read_merged(s3: Any, prefix_uri: str) -> tuple[list[dict[str, Any]], int]:
    """Every merged record under a prefix (state snapshots skipped), and the number of unreadable lines."""
    bucket, prefix = parse_s3_uri(prefix_uri.rstrip("/") + "/")
    records, bad = [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            match = _MERGED.search(item["Key"])
            if not match or "/_" in "/" + item["Key"][len(prefix):]:
                continue
            at = dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat()
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode("utf-8")
            for line in body.splitlines():
                if line.strip():
                    try:
                        records.append(merged_record(line, at))
                    except (KeyError, IndexError, TypeError, ValueError):
                        bad += 1
    return records, bad


# -- operational metrics ---------------------------------------------------------------------------------------
def variant_metrics(cloudwatch: Any, endpoint: str, variant: str, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Invocations, errors (4XX + 5XX) and latency p99 (ms) of one variant from AWS/SageMaker metrics."""
    end = max(end, start + dt.timedelta(seconds=60))
    period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]

    def stats(name: str, **kwargs: Any) -> list[dict[str, Any]]:
        return cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=name, Dimensions=dims, StartTime=start, EndTime=end,
            Period=period, **kwargs,
        )["Datapoints"]

    def total(name: str) -> int:
        return int(round(sum(p.get("Sum", 0.0) for p in stats(name, Statistics=["Sum"]))))

    latency = stats("ModelLatency", ExtendedStatistics=["p99"])
    p99 = [p["ExtendedStatistics"]["p99"] for p in latency if "p99" in p.get("ExtendedStatistics", {})]
    statistic = "p99"
    if not p99:  # moto (local runtime) computes no percentiles: the average stands in, and the evidence says so
        p99 = [p["Average"] for p in stats("ModelLatency", Statistics=["Average"]) if "Average" in p]
        statistic = "Average"
    out: dict[str, Any] = {"Invocations": total("Invocations"),
                           "Errors": total("Invocation4XXErrors") + total("Invocation5XXErrors"),
                           "LatencyStatistic": statistic}
    out["LatencyMs"] = [max(p99) / 1000.0] if p99 else []
    return out


# -- decide ----------------------------------------------------------------------------------------------------
def decide_look(event: Mapping[str, Any], s3: Any, cloudwatch: Any) -> dict[str, Any]:
    """event: {PlanS3Uri, EndpointName, StartTime, LookCutoffs, Final?, EvidenceS3Prefix,
    Variants: {"Champion": {"VariantName", "MergedS3Uri"}, "Challenger": {…}}}."""
    stored = read_json(s3, event["PlanS3Uri"])
    cutoffs = list(event["LookCutoffs"])
    if not cutoffs:
        raise ABInputError("A/B look: LookCutoffs is empty; the state machine appends this look's time to it")
    look = len(cutoffs)
    start = dt.datetime.fromisoformat(str(event["StartTime"]).replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(str(cutoffs[-1]).replace("Z", "+00:00"))
    metrics_end = dt.datetime.now(UTC) + dt.timedelta(seconds=60)
    variants = event["Variants"]
    records, operational, unreadable = {}, {}, {}
    for key in VARIANT_KEYS:
        spec = variants[key.capitalize()]
        records[key], unreadable[key] = read_merged(s3, spec["MergedS3Uri"])
        # Metrics up to now, not the cutoff: CloudWatch publishes invocation metrics a minute or more after the fact.
        operational[key] = variant_metrics(cloudwatch, event["EndpointName"], spec["VariantName"], start, metrics_end)
    # A look sees exactly what was merged by its cutoff (later merges of a retried or later look are excluded).
    last = end.timestamp()
    for key in VARIANT_KEYS:
        records[key] = [r for r in records[key] if dt.datetime.fromisoformat(r["AvailableAt"]).timestamp() <= last]
    now_info = {"LookCutoffs": cutoffs, "Final": bool(event.get("Final", False)),
                "Operational": {k: {x: v[x] for x in ("Invocations", "Errors", "LatencyMs")} for k, v in operational.items()}}
    result = decide(stored["Plan"], records, stored["Guardrails"], now_info)
    evidence_uri = f"{event['EvidenceS3Prefix'].rstrip('/')}/look-{look:03d}.json"
    document = {
        "Look": look, "Decision": result["Decision"], "Reasons": result["Reasons"], "Evidence": result["Evidence"],
        "Operational": operational, "UnreadableMergedLines": unreadable, "LookCutoffs": cutoffs,
        "Plan": stored["Plan"], "TrafficShare": stored["TrafficShare"], "Guardrails": stored["Guardrails"],
    }
    write_json(s3, evidence_uri, document)
    plot_uri = evidence_uri[: -len(".json")] + ".png"
    try:
        png = evidence_plot(document)
    except ImportError:  # matplotlib is optional in the Lambda image
        plot_uri = None
    else:
        bucket, key = parse_s3_uri(plot_uri)
        s3.put_object(Bucket=bucket, Key=key, Body=png, ContentType="image/png")
    return {"Decision": result["Decision"], "Reasons": result["Reasons"][:5], "EvidenceS3Uri": evidence_uri,
            "PlotS3Uri": plot_uri, "Look": look}


def evidence_plot(document: Mapping[str, Any]) -> bytes:
    """PNG: the Z statistic per look against the ± boundaries (the improvement side is where the challenger wins)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evidence = document["Evidence"]
    looks = evidence.get("Looks", [])
    plan = document["Plan"]
    x = [row["InformationFraction"] for row in looks]
    z = [row["Statistic"] for row in looks]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(plan["InformationFractions"], plan["Boundaries"], "k--", lw=1, label="planned boundary")
    ax.plot(plan["InformationFractions"], [-b for b in plan["Boundaries"]], "k--", lw=1)
    bx = [row["InformationFraction"] for row in looks if row.get("Boundary") is not None]
    bb = [row["Boundary"] for row in looks if row.get("Boundary") is not None]
    if bb:
        ax.plot(bx, bb, "r:", marker="_", label="boundary at the information reached")
        ax.plot(bx, [-b for b in bb], "r:", marker="_")
    ax.plot(x, z, "o-", color="tab:blue", label="Z (challenger − champion)")
    ax.axhline(0.0, color="grey", lw=0.5)
    lower = "lower" if evidence.get("LowerIsBetter", True) else "higher"
    ax.set_xlabel("information fraction n / n_max")
    ax.set_ylabel(f"Z statistic ({evidence.get('Metric')}, {lower} is better)")
    ax.set_title(f"A/B look {document['Look']}: {document['Decision']}")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
