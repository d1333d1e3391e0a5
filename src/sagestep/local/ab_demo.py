"""The A/B part of the demo, for the lead's `sagestep demo` to call: a challenger at a traffic share, real held-out
rows through the endpoint, the ABTestStateMachine deciding, and a printed and plotted evidence trail.

    from sagestep.local.ab_demo import run_ab_demo
    summary = run_ab_demo(runtime, challenger_arn, run_dir / "preprocess/test/test.csv",
                          dataset_config=root / "ml/config/credit_data.yaml", plot_path=run_dir / "ab_evidence.png")
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sagestep.local.traffic import Traffic, load_rows
from sagestep.aws.s3io import parse_s3_uri

DEMO_INPUT = Path("events/ab_test_state_machine_split.json")


def run_ab_demo(
    runtime: Any,
    challenger_package_arn: str,
    rows_csv: str | Path,
    *,
    dataset_config: str | Path | None = None,
    endpoint: str | None = None,
    overrides: dict[str, Any] | None = None,
    rate: float = 150.0,
    labels_after: float = 0.5,
    plot_path: str | Path | None = None,
    timeout: float = 600.0,
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run one A/B test against the live endpoint while traffic flows; print each look; return the summary.

    The input is events/ab_test_state_machine_split.json with the challenger and `overrides` (e.g.
    {"TrafficShare": 0.1}); the endpoint is the challenger's model line endpoint (its group's name). Returns {"Status", "Decision",
    "Reasons", "EvidenceS3Uri", "PlotPath", "Looks", "Traffic"}.
    """
    endpoint = endpoint or runtime.client("sagemaker").describe_model_package(
        ModelPackageName=challenger_package_arn)["ModelPackageGroupName"]
    execution_input = {**json.loads((Path(runtime.root) / DEMO_INPUT).read_text()),
                       "ChallengerModelPackageArn": challenger_package_arn, **(overrides or {})}
    rows = load_rows(rows_csv, dataset_config=dataset_config)
    out(f"A/B test on {endpoint}: challenger {challenger_package_arn} at {execution_input['TrafficShare']:.0%} of "
        f"traffic, metric {execution_input['Metric']}, α {execution_input['Alpha']}, power {execution_input['Power']}, "
        f"{execution_input['Looks']} planned looks; {len(rows.instances)} held-out rows sent at {rate:g}/s")
    # As in lending, an outcome (repaid / defaulted) arrives only for the applicants the serving variant approved.
    traffic = Traffic(runtime, endpoint, rows, rate=rate, labels_after=labels_after, labels="approved").start()
    try:
        arn = runtime.start("ABTestStateMachine", execution_input)
        sfn = runtime.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(1.0)
        record = runtime.wait(arn, timeout=10)
    finally:
        report = traffic.stop()
    summary: dict[str, Any] = {"Status": record.status, "ExecutionArn": arn, "Traffic": report.to_dict(), "Looks": [],
                               "PlotPath": None}
    if record.status != "SUCCEEDED":
        out(f"The A/B test ended {record.status}: {record.error}: {record.cause} (the champion serves all traffic)")
        return {**summary, "Decision": None, "Reasons": [record.cause], "EvidenceS3Uri": None}
    decision = record.output["Decision"]
    evidence = runtime.read_json(decision["EvidenceS3Uri"])
    out(f"{'look':>4} {'pairs':>6} {'by champion':>11} {'by challenger':>13} {'t':>5} {'Z':>7} {'boundary':>8} "
        f"{'effect [repeated CI]':>28}  guardrails")
    for row in evidence["Evidence"]["Looks"]:
        boundary = "-" if row["Boundary"] is None else f"±{row['Boundary']:.3f}"
        low, high = row["ConfidenceInterval"]
        interval = f"{row['Effect']:+.4f} [{'-inf' if low is None else f'{low:+.4f}'}, {'inf' if high is None else f'{high:+.4f}'}]"
        rails = ", ".join(f"{name} {state}" for name, state in row["Guardrails"].items())
        out(f"{row['Look']:>4} {row['Pairs']:>6} {row['LabelledServedByChampion']:>11} {row['LabelledServedByChallenger']:>13} "
            f"{row['InformationFraction']:>5.2f} {row['Statistic']:>7.3f} {boundary:>8} {interval:>28}  {rails}")
    out(f"Why the test ended: {evidence['Evidence']['EndReason']}")
    out(f"Decision after look {decision['Look']}: {decision['Decision']}")
    for reason in decision["Reasons"]:
        out(f"  - {reason}")
    out(f"Evidence: {decision['EvidenceS3Uri']}")
    plot_uri = decision["EvidenceS3Uri"][: -len(".json")] + ".png"
    if plot_path is not None:
        bucket, key = parse_s3_uri(plot_uri)
        try:
            png = runtime.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception:  # noqa: BLE001 - no plot (matplotlib missing in the Lambda): the JSON is the evidence
            png = None
        if png:
            Path(plot_path).write_bytes(png)
            summary["PlotPath"] = str(plot_path)
            out(f"Evidence plot (statistic vs boundary per look): {plot_path}")
    summary.update(Decision=decision["Decision"], Reasons=decision["Reasons"], EvidenceS3Uri=decision["EvidenceS3Uri"],
                   Looks=evidence["Evidence"]["Looks"])
    return summary
