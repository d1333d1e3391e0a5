"""The A/B decision the `ab_winner` Lambda returns: guardrails, then the group-sequential test, with evidence.

Stateless: every call recomputes all looks from the merged records, the stored plan and the look cutoffs,
so a retried look returns the identical result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np

from sagestep.abtest import metrics
from sagestep.abtest.design import Plan
from sagestep.abtest.sequential import Comparison, LookResult, evaluate_look

VARIANTS = ("champion", "challenger")
OUTCOMES = ("continue", "promote", "keep_champion", "abort")


@dataclass(frozen=True)
class Guardrails:
    """Checked before any promotion. Margins are absolute: challenger minus champion."""

    min_sample_per_arm: int = 1000
    max_error_rate_increase: float = 0.001
    max_latency_p99_increase_ms: float = 25.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Guardrails:
        keys = {"MinSamplePerArm": "min_sample_per_arm", "MaxErrorRateIncrease": "max_error_rate_increase",
                "MaxLatencyP99IncreaseMs": "max_latency_p99_increase_ms"}
        unknown = sorted(set(data) - set(keys))
        if unknown:
            raise ValueError(f"guardrails: unknown field(s) {unknown}; expected some of {sorted(keys)}")
        values = {keys[k]: v for k, v in data.items()}
        for f in fields(cls):
            value = values.get(f.name, f.default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"guardrails: {f.name} must be a non-negative number, got {value!r}")
        return cls(**values)


def _p99(arm: Mapping[str, Any], where: str) -> float | None:
    if "LatencyP99Ms" in arm:
        return float(arm["LatencyP99Ms"])
    if "LatencyMs" in arm:
        latencies = np.asarray(arm["LatencyMs"], dtype=float)
        return float(np.percentile(latencies, 99)) if latencies.size else None
    raise ValueError(f"{where}: give LatencyMs (a list) or LatencyP99Ms")


def _operational(now_info: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    operational = now_info.get("Operational")
    if not isinstance(operational, Mapping) or any(v not in operational for v in VARIANTS):
        raise ValueError(
            "now_info.Operational must map 'champion' and 'challenger' to "
            "{Invocations, Errors, LatencyMs | LatencyP99Ms}"
        )
    out = {}
    for variant in VARIANTS:
        arm, where = operational[variant], f"now_info.Operational.{variant}"
        try:
            invocations, errors = int(arm["Invocations"]), int(arm["Errors"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: Invocations and Errors must be integers") from None
        if not 0 <= errors <= invocations:
            raise ValueError(f"{where}: need 0 ≤ Errors ≤ Invocations, got {errors} of {invocations}")
        out[variant] = {"Invocations": invocations, "Errors": errors,
                        "ErrorRate": errors / invocations if invocations else None, "LatencyP99Ms": _p99(arm, where)}
    return out


def _guardrail_failures(ops: dict[str, dict[str, Any]], rails: Guardrails) -> tuple[list[str], dict[str, Any]]:
    failures: list[str] = []
    a, b = ops["champion"], ops["challenger"]
    error_ok = True
    if a["ErrorRate"] is not None and b["ErrorRate"] is not None:
        error_ok = b["ErrorRate"] - a["ErrorRate"] <= rails.max_error_rate_increase
        if not error_ok:
            failures.append(
                f"challenger error rate {b['ErrorRate']:.2%} ({b['Errors']}/{b['Invocations']}) exceeds the champion's "
                f"{a['ErrorRate']:.2%} by more than the allowed {rails.max_error_rate_increase:.2%}"
            )
    latency_ok = True
    if a["LatencyP99Ms"] is not None and b["LatencyP99Ms"] is not None:
        latency_ok = b["LatencyP99Ms"] - a["LatencyP99Ms"] <= rails.max_latency_p99_increase_ms
        if not latency_ok:
            failures.append(
                f"challenger latency p99 {b['LatencyP99Ms']:.1f} ms exceeds the champion's {a['LatencyP99Ms']:.1f} ms "
                f"by more than the allowed {rails.max_latency_p99_increase_ms:g} ms"
            )
    evidence = {
        "ErrorRate": {"Champion": a["ErrorRate"], "Challenger": b["ErrorRate"],
                      "MaxIncrease": rails.max_error_rate_increase, "Passed": error_ok},
        "LatencyP99Ms": {"Champion": a["LatencyP99Ms"], "Challenger": b["LatencyP99Ms"],
                         "MaxIncrease": rails.max_latency_p99_increase_ms, "Passed": latency_ok},
    }
    return failures, evidence


def _cutoffs(now_info: Mapping[str, Any]) -> list[float]:
    raw = now_info.get("LookCutoffs")
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ValueError("now_info.LookCutoffs must be a non-empty list of look times (the last is this look)")
    cutoffs = [metrics.parse_time(c, f"now_info.LookCutoffs[{i}]") for i, c in enumerate(raw)]
    if any(b <= a for a, b in zip(cutoffs, cutoffs[1:])):
        raise ValueError(f"now_info.LookCutoffs must be strictly increasing, got {list(raw)}")
    return cutoffs


def _comparison(
    plan: Plan, records: Mapping[str, Sequence[Mapping[str, Any]]], cutoffs: list[float]
) -> tuple[Comparison, int]:
    if plan.mode == "shadow":
        d, available, unpaired = metrics.paired_differences(
            records["champion"], records["challenger"], plan.metric, plan.threshold
        )
        return Comparison.paired(metrics.cumulative_sums(d, available, cutoffs)), unpaired
    sums = []
    for variant in VARIANTS:
        losses, available, _ = metrics.request_losses(records[variant], plan.metric, plan.threshold, variant)
        sums.append(metrics.cumulative_sums(losses, available, cutoffs))
    return Comparison.split(*sums), 0


def _reported(plan: Plan, records: Mapping[str, Sequence[Mapping[str, Any]]], cutoff: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant in VARIANTS:
        timed = [
            (metrics.parse_time(r["AvailableAt"], "AvailableAt"), str(r["InferenceId"]), r) for r in records[variant]
        ]
        # Ordered so that a retried look sums in the same order whatever order the records came in.
        seen = [r for at, _, r in sorted(timed, key=lambda x: x[:2]) if at <= cutoff]
        out[variant.capitalize()] = (
            metrics.regression_summary(seen, variant) if plan.metric == "absolute_error"
            else metrics.classification_summary(seen, plan.threshold, variant)
        )
    if plan.metric != "absolute_error":
        auc_a, auc_b = out["Champion"]["AUC"], out["Challenger"]["AUC"]
        out["AUCDifference"] = auc_b - auc_a if auc_a is not None and auc_b is not None else None
    return out


def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "n/a" if x is None else format(x, spec)


def _test_reasons(plan: Plan, result: LookResult, rails: Guardrails) -> list[str]:
    look = result.current
    better = "lower" if plan.lower_is_better else "higher"
    if result.stopped_at is not None:
        end = result.looks[result.stopped_at - 1]
        where = f"at look {end.look} (t = {end.information_fraction:.2f}, n = {end.n_champion}/{end.n_challenger})"
        interval = f"{1 - plan.alpha:.0%} repeated CI [{_fmt(end.ci_low)}, {_fmt(end.ci_high)}]"
        if result.decision == "challenger_wins":
            return [f"challenger {plan.metric} {better} by {_fmt(abs(end.effect))} ({interval}): "
                    f"Z = {end.statistic:.3f} crossed the boundary ±{_fmt(end.boundary, '.3f')} {where}"]
        if result.decision == "challenger_worse":
            return [f"challenger {plan.metric} worse by {_fmt(abs(end.effect))} ({interval}): "
                    f"Z = {end.statistic:.3f} crossed the boundary ±{_fmt(end.boundary, '.3f')} {where}"]
        return [f"no significant difference when the test ended {where}: Z = {end.statistic:.3f} within "
                f"±{_fmt(end.boundary, '.3f')}; effect {_fmt(end.effect)} ({interval}); the champion stays"]
    reasons = []
    if min(look.n_champion, look.n_challenger) < rails.min_sample_per_arm:
        reasons.append(f"below the minimum sample of {rails.min_sample_per_arm} per arm "
                       f"(champion {look.n_champion}, challenger {look.n_challenger}); the test cannot stop yet")
    if look.scheduled:
        bound = f"within ±{look.boundary:.3f}" if look.boundary is not None else "(no new information, no boundary)"
        reasons.append(f"look {look.look} (t = {look.information_fraction:.2f}): Z = {look.statistic:.3f} {bound}; "
                       f"always-valid p = {look.p_value:.3g}")
    else:
        reasons.append(f"unscheduled check (t = {look.information_fraction:.2f}): Z = {look.statistic:.3f}, "
                       f"always-valid p = {look.p_value:.3g}; decisions are taken at scheduled looks")
    return reasons


def decide(
    plan: Plan | Mapping[str, Any],
    records_by_variant: Mapping[str, Sequence[Mapping[str, Any]]],
    guardrails: Guardrails | Mapping[str, Any],
    now_info: Mapping[str, Any],
) -> dict[str, Any]:
    """Decide one look of an A/B test.

    plan: a Plan or Plan.to_dict(). records_by_variant: {"champion": [...], "challenger": [...]} merged records
    (see sagestep.abtest.metrics; in shadow mode both lists hold the same InferenceIds).
    guardrails: Guardrails or {"MinSamplePerArm", "MaxErrorRateIncrease", "MaxLatencyP99IncreaseMs"}.
    now_info: {"LookCutoffs": [t_1, …, t_k] (epoch seconds or ISO-8601; the last is this look),
               "Operational": {"champion"|"challenger": {"Invocations", "Errors", "LatencyMs" | "LatencyP99Ms"}},
               "Final": bool (optional: maximum duration reached, spend what is left of α now),
               "Unscheduled": bool (optional: an ad-hoc check, judged by its always-valid p-value only)}.
    Returns {"Decision": "continue" | "promote" | "keep_champion" | "abort", "Reasons": [...], "Evidence": {...}}.
    """
    plan = plan if isinstance(plan, Plan) else Plan.from_dict(plan)
    rails = guardrails if isinstance(guardrails, Guardrails) else Guardrails.from_dict(guardrails)
    missing = [v for v in VARIANTS if v not in records_by_variant]
    if missing:
        raise ValueError(f"records_by_variant needs keys {list(VARIANTS)}; missing {missing}")
    if rails.min_sample_per_arm > plan.n_max:
        raise ValueError(
            f"guardrails.MinSamplePerArm ({rails.min_sample_per_arm}) exceeds the plan's NMax ({plan.n_max})"
        )

    cutoffs = _cutoffs(now_info)
    ops = _operational(now_info)
    comparison, unpaired = _comparison(plan, records_by_variant, cutoffs)
    result = evaluate_look(
        plan,
        comparison,
        final=bool(now_info.get("Final", False)),
        unscheduled=bool(now_info.get("Unscheduled", False)),
        min_n_to_stop=rails.min_sample_per_arm,
    )
    failures, rail_evidence = _guardrail_failures(ops, rails)
    current = result.current
    rail_evidence["MinSamplePerArm"] = {
        "Required": rails.min_sample_per_arm, "Champion": current.n_champion, "Challenger": current.n_challenger,
        "Passed": min(current.n_champion, current.n_challenger) >= rails.min_sample_per_arm,
    }

    reasons = _test_reasons(plan, result, rails)
    if failures:
        decision, reasons = "abort", failures + reasons
    else:
        decision = {"challenger_wins": "promote", "continue": "continue"}.get(result.decision, "keep_champion")

    evidence: dict[str, Any] = {
        "Metric": plan.metric,
        "Mode": plan.mode,
        "LowerIsBetter": plan.lower_is_better,
        "Alpha": plan.alpha,
        "ConfidenceLevel": 1.0 - plan.alpha,
        "NMax": plan.n_max,
        "Spending": plan.spending,
        "TestDecision": result.decision,
        **result.to_dict(),
        "Guardrails": rail_evidence,
        "Reported": _reported(plan, records_by_variant, cutoffs[-1]),
    }
    evidence.pop("Decision")
    if plan.mode == "shadow":
        evidence["UnpairedRecords"] = unpaired
    return {"Decision": decision, "Reasons": reasons, "Evidence": _json_safe(evidence)}


def _json_safe(value: Any) -> Any:
    """Plain JSON types only (Step Functions rejects NaN and Infinity)."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
