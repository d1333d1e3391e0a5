"""What the `ab_winner` Lambda does, without the handler: plan a test, prepare a replay, decide one look.

- `plan_test(event, s3)`: the paired group-sequential design, the guardrails and the protected attributes of the
  dataset config (`inputs.design`), stored at `PlanS3Uri`.
- `replay_input(event, s3)`: split traffic: the labelled requests one variant decided this look, written as a Batch
  Transform input (CSV, the dataset config's feature order), so the *other* model scores them too (SageMaker hosts at most one production and one shadow
  variant on an endpoint, so two production variants cannot each shadow the other). Shadow traffic needs no replay.
- `decide_look(event, s3, cloudwatch)`: every model score on labelled requests (merged capture + ground truth of each
  variant, and the replays), every decision of each variant (its data capture), the variants' invocation metrics
  and latency percentiles (CloudWatch), then `decide.decide`. The evidence JSON and a PNG are written under
  `EvidenceS3Prefix`.

Stateless: a look is recomputed from the stored plan, the merged files (each record is available from its merge
window end, in the file name), the captures up to the look's merge window end and the look cutoffs in the event,
so a retried look returns the same decision.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from sagestep.abtest import guardrails as rails_mod
from sagestep.abtest import inputs, metrics
from sagestep.abtest.decide import MODELS, decide
from sagestep.abtest.guardrails import Guardrails
from sagestep.abtest.inputs import ABInputError
from sagestep.aws.s3io import parse_s3_uri, read_json, write_json

UTC = dt.timezone.utc
_MERGED = re.compile(r"merged-(\d{8}T\d{6}Z)\.jsonl$")
_HOUR = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/")
REPLAY_FILE = "requests.csv"

__all__ = ["ABInputError", "decide_look", "plan_test", "replay_input"]


# -- plan ------------------------------------------------------------------------------------------------------
def _dataset_config(s3: Any, uri: str) -> Any:
    from sagestep.training.config import ConfigError, load_dataset_config

    bucket, key = parse_s3_uri(uri)
    name = Path(key).name
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:  # noqa: BLE001 - any failure to read is the same fix for the user
        raise ABInputError(f"A/B input: DatasetConfigS3Uri {uri}: cannot read it ({exc}); point it at the dataset "
                           f"config file (.yaml or .json) of the model line") from None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(body)
        try:
            return load_dataset_config(path)
        except ConfigError as exc:
            raise ABInputError(f"A/B input: DatasetConfigS3Uri {uri}: {str(exc).split(': ', 1)[-1]}") from None


def plan_test(event: Mapping[str, Any], s3: Any) -> dict[str, Any]:
    """event: {PlanS3Uri, Design: the A/B input's design fields with the state machine's defaults applied
    (Metric, MinimumDetectableEffect, Variance | BaseRate, Alpha, Power, Looks, MaxLooks, Mode, TrafficShare,
    LookIntervalSeconds, MergeEndOffset, DatasetConfigS3Uri, Guardrails?, Threshold?, NMax?)}."""
    spec = inputs.settings(event.get("Design") or {})
    if not spec.get("DatasetConfigS3Uri"):
        raise ABInputError("A/B input: DatasetConfigS3Uri is required: the dataset config (protected attributes, "
                           "disparate impact band) of the model under test, e.g. the training input's")
    config = _dataset_config(s3, str(spec["DatasetConfigS3Uri"]))
    design = inputs.design(spec, config.thresholds.disparate_impact)
    plan = design.plan
    attributes = [{"Name": a.name, "Group": a.privileged.to_dict(), "Privileged": a.privileged.describe(a.name)}
                  for a in config.protected_attributes]
    document = {
        "Plan": plan.to_dict(), "Guardrails": design.guardrails.to_dict(), "MaxLooks": design.max_looks,
        "Traffic": design.traffic, "TrafficShare": design.share, "LookIntervalSeconds": spec["LookIntervalSeconds"],
        "MergeEndOffset": spec["MergeEndOffset"],
        "Fairness": {"DatasetConfigS3Uri": spec["DatasetConfigS3Uri"], "Dataset": config.name,
                     "Attributes": attributes, "FeatureOrder": list(config.features.all)},
    }
    write_json(s3, event["PlanS3Uri"], document)
    return {"PlanS3Uri": event["PlanS3Uri"], "NMax": plan.n_max, "Looks": plan.looks, "MaxLooks": design.max_looks,
            "Boundaries": [round(b, 4) for b in plan.boundaries], "MinPairs": design.guardrails.min_pairs}


# -- merged records and replays --------------------------------------------------------------------------------
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


def _objects(s3: Any, prefix_uri: str) -> list[tuple[str, str]]:
    bucket, prefix = parse_s3_uri(prefix_uri.rstrip("/") + "/")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [(bucket, item["Key"]) for item in page.get("Contents", [])]
    return sorted(keys)


def _text(s3: Any, bucket: str, key: str) -> str:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")


def read_merged(s3: Any, prefix_uri: str) -> tuple[list[dict[str, Any]], int]:
    """Every merged record under a prefix (state snapshots skipped), and the number of unreadable lines."""
    records, bad = [], 0
    prefix = parse_s3_uri(prefix_uri.rstrip("/") + "/")[1]
    for bucket, key in _objects(s3, prefix_uri):
        match = _MERGED.search(key)
        if not match or "/_" in "/" + key[len(prefix):]:
            continue
        at = dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat()
        for line in _text(s3, bucket, key).splitlines():
            if line.strip():
                try:
                    records.append(merged_record(line, at))
                except (KeyError, IndexError, TypeError, ValueError):
                    bad += 1
    return records, bad


def _request_line(capture: Mapping[str, Any], feature_order: list[str]) -> str:
    """The first applicant of a captured request as one CSV line in the dataset config's feature order — the
    order the serving code reads CSV in — so a Batch Transform scores many per call (MultiRecord)."""
    block = capture["endpointInput"]
    instance = metrics.first_instance(block, _decoded(block))
    if isinstance(instance, dict):
        unknown = set(instance) - set(feature_order)
        if unknown:
            raise ValueError(f"fields {sorted(unknown)} are not features of the dataset config")
        instance = [instance.get(name) for name in feature_order]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(["" if v is None else v for v in instance])
    return buffer.getvalue()


def replay_input(event: Mapping[str, Any], s3: Any) -> dict[str, Any]:
    """event: {MergedS3Uri: this look's merged file of one variant, ReplayS3Uri: that variant's replay prefix, Look,
    PlanS3Uri}. Writes `<ReplayS3Uri>/input/look-NNN/requests.csv` (one applicant a line, for a Batch Transform with
    SplitType Line) and `<ReplayS3Uri>/ids/look-NNN.json` (the InferenceIds in the same order); returns where, and
    the count. A request that cannot be replayed is left out: its label stays unpaired, and decide says so."""
    look = int(event["Look"])
    feature_order = list(read_json(s3, event["PlanS3Uri"])["Fairness"]["FeatureOrder"])
    bucket, key = parse_s3_uri(event["MergedS3Uri"])
    ids, lines = [], []
    for line in _text(s3, bucket, key).splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        meta = record["eventMetadata"]
        try:
            lines.append(_request_line(record["captureData"], feature_order))
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        ids.append(meta.get("inferenceId") or meta["eventId"])
    root = event["ReplayS3Uri"].rstrip("/")
    input_uri = f"{root}/input/look-{look:03d}/"
    output_uri = f"{root}/output/look-{look:03d}/"
    in_bucket, in_key = parse_s3_uri(input_uri + REPLAY_FILE)
    s3.put_object(Bucket=in_bucket, Key=in_key, Body=("\n".join(lines) + "\n").encode())
    write_json(s3, f"{root}/ids/look-{look:03d}.json",
               {"Look": look, "MergedS3Uri": event["MergedS3Uri"], "InferenceIds": ids, "OutputS3Uri": output_uri})
    return {"Count": len(ids), "InputS3Uri": input_uri, "OutputS3Uri": output_uri}


def read_replays(s3: Any, replay_uri: str, last_look: int) -> tuple[dict[str, float], int]:
    """{InferenceId: the other model's score} from the replays of looks ≤ last_look, and how many requests were
    sent to a replay that gave no output (a failed transform job)."""
    scores: dict[str, float] = {}
    missing = 0
    for bucket, key in _objects(s3, replay_uri.rstrip("/") + "/ids/"):
        doc = json.loads(_text(s3, bucket, key))
        if int(doc["Look"]) > last_look:
            continue
        out_bucket, out_key = parse_s3_uri(doc["OutputS3Uri"] + REPLAY_FILE + ".out")
        try:
            lines = [x for x in _text(s3, out_bucket, out_key).splitlines() if x.strip()]
        except Exception:  # noqa: BLE001 - no output: the transform failed or was skipped
            missing += len(doc["InferenceIds"])
            continue
        if len(lines) != len(doc["InferenceIds"]):
            missing += len(doc["InferenceIds"])
            continue
        for inference_id, line in zip(doc["InferenceIds"], lines):
            scores[str(inference_id)] = score_of(line)
    return scores, missing


def model_records(
    traffic: str, merged: Mapping[str, list[dict[str, Any]]], replays: Mapping[str, Mapping[str, float]]
) -> dict[str, list[dict[str, Any]]]:
    """Each model's score on labelled requests. Split: a variant's merged records are its own model's scores on the
    requests it decided; the replay of them gives the other model's. Shadow: the champion decided every request and
    the challenger's merged records are its shadow scores of the same requests."""
    if traffic == "shadow":
        return {m: [{**r, "ServedBy": "champion"} for r in merged[m]] for m in MODELS}
    out: dict[str, list[dict[str, Any]]] = {m: [] for m in MODELS}
    for served, other in (("champion", "challenger"), ("challenger", "champion")):
        for record in merged[served]:
            out[served].append({**record, "ServedBy": served})
            score = replays[served].get(str(record["InferenceId"]))
            if score is not None:
                out[other].append({**record, "Prediction": score, "ServedBy": served})
    return out


# -- decisions from data capture -------------------------------------------------------------------------------
def read_decisions(s3: Any, capture_uri: str, start: dt.datetime, end: dt.datetime, fairness: Mapping[str, Any],
                   threshold: float) -> tuple[list[dict[str, Any]], int]:
    """Every decision a variant captured with start ≤ inferenceTime ≤ end (hour folders in that range only)."""
    first_hour = start.replace(minute=0, second=0, microsecond=0)
    decisions, bad = [], 0
    lo, hi = start.timestamp(), end.timestamp()
    for bucket, key in _objects(s3, capture_uri):
        match = _HOUR.search(key)
        if not key.endswith(".jsonl") or not match:
            continue
        hour = dt.datetime(*(int(g) for g in match.groups()), tzinfo=UTC)
        if not first_hour <= hour <= end:
            continue
        for line in _text(s3, bucket, key).splitlines():
            if not line.strip():
                continue
            try:
                decision = metrics.captured_decision(line, fairness["FeatureOrder"], fairness["Attributes"], threshold)
            except (KeyError, IndexError, TypeError, ValueError):
                bad += 1
                continue
            if lo <= decision["At"] <= hi:
                decisions.append(decision)
    return decisions, bad


# -- operational metrics ---------------------------------------------------------------------------------------
def variant_metrics(cloudwatch: Any, endpoint: str, variant: str, start: dt.datetime, end: dt.datetime,
                    error: float) -> dict[str, Any]:
    """Invocations, server-side errors, and the p99 model latency with distribution-free bounds (ms), from the
    AWS/SageMaker metrics of one variant over [start, end] as a single CloudWatch period.

    Errors are 5xx and other model errors: max(Invocation5XXErrors, InvocationModelErrors − Invocation4XXErrors);
    a 4xx is the client's. The p99 bounds are the CloudWatch percentiles `guardrails.quantile_ranks` names.
    """
    start = start.replace(second=0, microsecond=0)
    period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
    end = start + dt.timedelta(seconds=period)
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]

    def points(name: str, **kwargs: Any) -> list[dict[str, Any]]:
        return cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker", MetricName=name, Dimensions=dims, StartTime=start, EndTime=end,
            Period=period, **kwargs,
        )["Datapoints"]

    def total(name: str) -> int:
        return int(round(sum(p.get("Sum", 0.0) for p in points(name, Statistics=["Sum"]))))

    client_errors, server_errors = total("Invocation4XXErrors"), total("Invocation5XXErrors")
    out: dict[str, Any] = {
        "Invocations": total("Invocations"),
        "Errors": max(server_errors, total("InvocationModelErrors") - client_errors),
        "ClientErrors": client_errors,
        "LatencySamples": int(round(sum(p.get("SampleCount", 0.0) for p in points("ModelLatency", Statistics=["SampleCount"])))),
        "LatencyStatistic": "p99", "LatencyP99Ms": None, "LatencyP99LowerMs": None, "LatencyP99UpperMs": None,
    }
    lower, upper = rails_mod.quantile_ranks(out["LatencySamples"], 0.99, error)
    wanted = {"LatencyP99Ms": "p99", "LatencyP99LowerMs": f"p{lower:.2f}" if lower else None,
              "LatencyP99UpperMs": f"p{upper:.2f}" if upper else None}
    names = sorted({v for v in wanted.values() if v})
    found = points("ModelLatency", ExtendedStatistics=names) if out["LatencySamples"] else []
    if len(found) == 1:  # one period over the whole window; percentiles of several periods cannot be combined
        values = found[0].get("ExtendedStatistics", {})
        for key, name in wanted.items():
            if name and name in values:
                out[key] = float(values[name]) / 1000.0  # ModelLatency is in microseconds
    out["LatencyPercentiles"] = {k: v for k, v in wanted.items() if v}
    return out


# -- decide ----------------------------------------------------------------------------------------------------
def _time(value: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _previous_operational(s3: Any, prefix: str, look: int) -> list[Any]:
    if look <= 1:
        return []
    try:
        previous = read_json(s3, f"{prefix}/look-{look - 1:03d}.json")
    except Exception:  # noqa: BLE001 - no earlier record (e.g. removed): the history starts here
        return [None] * (look - 1)
    history = list(previous.get("OperationalByLook") or [])
    return (history + [None] * look)[: look - 1]


def decide_look(event: Mapping[str, Any], s3: Any, cloudwatch: Any) -> dict[str, Any]:
    """event: {PlanS3Uri, EndpointName, StartTime, LookCutoffs, Final?, EvidenceS3Prefix,
    Variants: {"Champion"|"Challenger": {VariantName, CaptureS3Uri, MergedS3Uri, ReplayS3Uri}}}."""
    from sagestep.monitoring.merge import parse_iso_duration

    stored = read_json(s3, event["PlanS3Uri"])
    cutoffs = list(event["LookCutoffs"])
    if not cutoffs:
        raise ABInputError("A/B look: LookCutoffs is empty; the state machine appends this look's time to it")
    look = len(cutoffs)
    rails = Guardrails.from_dict(stored["Guardrails"])
    max_looks = int(stored["MaxLooks"])
    fairness = stored["Fairness"]
    threshold = float(stored["Plan"]["Threshold"])
    start = _time(event["StartTime"])
    lag = parse_iso_duration(stored["MergeEndOffset"])
    variants = {m: event["Variants"][m.capitalize()] for m in MODELS}
    prefix = event["EvidenceS3Prefix"].rstrip("/")

    merged, replays, decisions, unreadable = {}, {}, {}, {}
    last = _time(cutoffs[-1])
    for model in MODELS:
        records, bad = read_merged(s3, variants[model]["MergedS3Uri"])
        # A look sees exactly what was merged by its cutoff (later merges of a retried or later look are excluded).
        merged[model] = [r for r in records if _time(r["AvailableAt"]) <= last]
        replays[model], failed = (read_replays(s3, variants[model]["ReplayS3Uri"], look)
                                  if stored["Traffic"] == "split" else ({}, 0))
        decisions[model], bad_captures = read_decisions(s3, variants[model]["CaptureS3Uri"], start, last + lag,
                                                        fairness, threshold)
        unreadable[model] = {"MergedLines": bad, "CaptureLines": bad_captures, "ReplayRequestsWithoutOutput": failed}
    records = model_records(stored["Traffic"], merged, replays)
    names = [a["Name"] for a in fairness["Attributes"]]
    summaries = [{m: metrics.decision_summary(decisions[m], (_time(c) + lag).timestamp(), names) for m in MODELS}
                 for c in cutoffs]
    # Metrics up to now, not the cutoff: CloudWatch publishes invocation metrics a minute or more after the fact.
    metrics_end = dt.datetime.now(UTC) + dt.timedelta(seconds=60)
    error = rails_mod.look_level(rails, max_looks) / 2.0
    operational = {m: variant_metrics(cloudwatch, event["EndpointName"], variants[m]["VariantName"], start,
                                      metrics_end, error) for m in MODELS}
    history = _previous_operational(s3, prefix, look)
    now_info = {"LookCutoffs": cutoffs, "Final": bool(event.get("Final", False)), "MaxLooks": max_looks,
                "Attributes": fairness["Attributes"], "Decisions": summaries, "Operational": operational,
                "PreviousOperational": history}
    result = decide(stored["Plan"], records, rails, now_info)
    evidence_uri = f"{prefix}/look-{look:03d}.json"
    document = {
        "Look": look, "Decision": result["Decision"], "Reasons": result["Reasons"], "Evidence": result["Evidence"],
        "Operational": operational, "OperationalByLook": history + [operational], "Unreadable": unreadable,
        "LookCutoffs": cutoffs, "Plan": stored["Plan"], "Traffic": stored["Traffic"],
        "TrafficShare": stored["TrafficShare"], "MaxLooks": max_looks, "Guardrails": stored["Guardrails"],
        "Fairness": fairness,
    }
    write_json(s3, evidence_uri, document)
    plot_uri: str | None = evidence_uri[: -len(".json")] + ".png"
    try:
        png = evidence_plot(document)
    except ImportError:  # matplotlib is optional in the Lambda image
        plot_uri = None
    else:
        bucket, key = parse_s3_uri(str(plot_uri))
        s3.put_object(Bucket=bucket, Key=key, Body=png, ContentType="image/png")
    return {"Decision": result["Decision"], "Reasons": result["Reasons"][:5], "EvidenceS3Uri": evidence_uri,
            "PlotS3Uri": plot_uri, "Look": look, "EndReason": result["Evidence"]["EndReason"]}


_STATE_COLOURS = {"waiting": "#d9d9d9", "within": "#74c476", "breached": "#de2d26"}


def evidence_plot(document: Mapping[str, Any]) -> bytes:
    """PNG for a reviewer: per look the statistic against its boundary, the effect with its repeated confidence
    interval, the labelled pairs and decisions per variant, each guardrail's state, and why the test ended."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    evidence = document["Evidence"]
    looks = evidence.get("Looks", [])
    x = [row["Look"] for row in looks]
    fig, axes = plt.subplots(4, 1, figsize=(7.5, 10.0), dpi=100, sharex=True,
                             gridspec_kw={"height_ratios": [3, 2.2, 2, 1.8]})
    ax = axes[0]
    bounded = [(row["Look"], row["Boundary"]) for row in looks if row.get("Boundary") is not None]
    if bounded:
        bx, bb = zip(*bounded)
        ax.plot(bx, bb, "r--", marker="_", ms=14, label="boundary at the information reached")
        ax.plot(bx, [-b for b in bb], "r--", marker="_", ms=14)
    ax.plot(x, [row["Statistic"] for row in looks], "o-", color="tab:blue", label="Z (challenger − champion)")
    ax.axhline(0.0, color="grey", lw=0.5)
    for row in looks:
        ax.annotate(f"t={row['InformationFraction']:.2f}", (row["Look"], row["Statistic"]), fontsize=7,
                    xytext=(3, 4), textcoords="offset points")
    better = "lower" if evidence.get("LowerIsBetter", True) else "higher"
    ax.set_ylabel(f"Z ({evidence.get('Metric')})")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(f"A/B look {document['Look']}: {document['Decision']}\n{_wrap(evidence.get('EndReason', ''))}",
                 fontsize=9)

    ax = axes[1]
    for row in looks:
        low, high = row["ConfidenceInterval"]
        if low is not None and high is not None:
            ax.plot([row["Look"]] * 2, [low, high], color="tab:purple", lw=2)
    ax.plot(x, [row["Effect"] for row in looks], "o", color="tab:purple",
            label=f"effect with {evidence.get('ConfidenceLevel', 0.95):.0%} repeated CI")
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_ylabel(f"challenger − champion\n({better} is better)")
    ax.legend(fontsize=7, loc="best")

    ax = axes[2]
    width = 0.27
    served_a = [row["LabelledServedByChampion"] for row in looks]
    served_b = [row["LabelledServedByChallenger"] for row in looks]
    ax.bar([v - width for v in x], served_a, width, color="tab:gray", label="labelled pairs decided by champion")
    ax.bar([v - width for v in x], served_b, width, bottom=served_a, color="tab:orange",
           label="labelled pairs decided by challenger")
    ax.bar(x, [row["DecisionsChampion"] for row in looks], width, color="tab:blue", alpha=0.5,
           label="champion decisions")
    ax.bar([v + width for v in x], [row["DecisionsChallenger"] for row in looks], width, color="tab:olive",
           label="challenger decisions")
    ax.plot(x, [evidence.get("NMax")] * len(x), "k:", lw=1, label="n_max (pairs)")
    ax.set_ylabel("count")
    ax.legend(fontsize=7, loc="best")

    ax = axes[3]
    names = sorted({name for row in looks for name in row.get("Guardrails", {})})
    codes = {"waiting": 0, "within": 1, "breached": 2}
    grid = [[codes.get(row.get("Guardrails", {}).get(name, "waiting"), 0) for row in looks] for name in names] or [[0]]
    ax.imshow(grid, aspect="auto", cmap=ListedColormap([_STATE_COLOURS[k] for k in codes]), vmin=0, vmax=2,
              extent=(min(x, default=1) - 0.5, max(x, default=1) + 0.5, len(names) - 0.5, -0.5))
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlabel("look (grey: waiting for data, green: within, red: breached)")
    ax.set_xticks(x)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _wrap(text: str, width: int = 100) -> str:
    return "\n".join(text[i:i + width] for i in range(0, len(text), width))
