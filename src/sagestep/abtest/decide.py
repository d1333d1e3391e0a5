"""The A/B decision the `ab_winner` Lambda returns: guardrails, then the paired group-sequential test, with evidence.

Selective labels: an outcome (repaid / defaulted) exists only for the applicants someone approved, and the serving
variant decides who that is. So the two models are never compared on their own arms' labelled applicants (a model
that declines more keeps an easier book and would look better); they are compared on the same labelled requests,
each scored by both models (the serving one decided, the other scored it in shadow or in a replay). A labelled
request with one model's score only is counted, reported and left out: it cannot promote anyone.

Stateless: every call recomputes all looks from the records, the stored plan and the look cutoffs, so a retried
look returns the identical result.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from sagestep.abtest import guardrails as rails_mod
from sagestep.abtest import metrics
from sagestep.abtest.design import Plan
from sagestep.abtest.guardrails import BREACHED, WAITING, Guardrails
from sagestep.abtest.sequential import Comparison, LookResult, evaluate_look

MODELS = ("champion", "challenger")


def _cutoffs(now_info: Mapping[str, Any]) -> list[float]:
    raw = now_info.get("LookCutoffs")
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ValueError("now_info.LookCutoffs must be a non-empty list of look times (the last is this look)")
    cutoffs = [metrics.parse_time(c, f"now_info.LookCutoffs[{i}]") for i, c in enumerate(raw)]
    if any(b <= a for a, b in zip(cutoffs, cutoffs[1:])):
        raise ValueError(f"now_info.LookCutoffs must be strictly increasing, got {list(raw)}")
    return cutoffs


def _operational(value: Any, where: str) -> dict[str, dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or any(m not in value for m in MODELS):
        raise ValueError(f"{where} must map 'champion' and 'challenger' to {{Invocations, Errors, LatencySamples, "
                         f"LatencyP99Ms, LatencyP99LowerMs, LatencyP99UpperMs}}")
    out = {}
    for model in MODELS:
        arm = value[model]
        try:
            invocations, errors = int(arm["Invocations"]), int(arm["Errors"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}.{model}: Invocations and Errors must be integers") from None
        if not 0 <= errors <= invocations:
            raise ValueError(f"{where}.{model}: need 0 ≤ Errors ≤ Invocations, got {errors} of {invocations}")
        out[model] = dict(arm)
    return out


def _decisions(now_info: Mapping[str, Any], looks: int) -> list[dict[str, Any]]:
    decisions = now_info.get("Decisions")
    if not isinstance(decisions, Sequence) or len(decisions) != looks:
        raise ValueError(f"now_info.Decisions must list one {{champion, challenger}} decision summary per look "
                         f"({looks}), got {decisions!r:.80}")
    for j, look in enumerate(decisions):
        if not isinstance(look, Mapping) or any(m not in look for m in MODELS):
            raise ValueError(f"now_info.Decisions[{j}] must map 'champion' and 'challenger' to {{N, Approved, Groups}}")
    return list(decisions)


def _pairs(plan: Plan, records: Mapping[str, Sequence[Mapping[str, Any]]], cutoffs: list[float]) -> tuple[Comparison, dict[str, Any]]:
    d, available, _ = metrics.paired_differences(records["champion"], records["challenger"], plan.metric, plan.threshold)
    comparison = Comparison.paired(metrics.cumulative_sums(d, available, cutoffs))
    times = {m: {str(r["InferenceId"]): (metrics.parse_time(r["AvailableAt"], "AvailableAt"), r.get("ServedBy", "champion"))
                 for r in records[m]} for m in MODELS}
    last = cutoffs[-1]
    seen = {m: {k for k, (at, _) in times[m].items() if at <= last} for m in MODELS}
    both = seen["champion"] & seen["challenger"]
    pair_at = sorted((max(times["champion"][k][0], times["challenger"][k][0]), times["champion"][k][1])
                     for k in times["champion"].keys() & times["challenger"].keys())
    per_look = []
    for cutoff in cutoffs:
        served = [s for at, s in pair_at if at <= cutoff]
        per_look.append({"ServedByChampion": served.count("champion"), "ServedByChallenger": served.count("challenger")})
    pairing = {
        "Pairs": len(both),
        "ChampionScoreOnly": len(seen["champion"] - both),
        "ChallengerScoreOnly": len(seen["challenger"] - both),
        "PairsByLook": per_look,
    }
    return comparison, pairing


def _reported(plan: Plan, records: Mapping[str, Sequence[Mapping[str, Any]]], cutoff: float) -> dict[str, Any]:
    """Reported, not tested: each model on the shared labelled requests, and — to show what selective labels do —
    each serving variant's own score on the requests it decided (the comparison a split test must not make)."""
    if plan.metric == "absolute_error":
        return {}
    seen = {m: sorted((r for r in records[m] if metrics.parse_time(r["AvailableAt"], "AvailableAt") <= cutoff),
                      key=lambda r: str(r["InferenceId"])) for m in MODELS}
    both = {str(r["InferenceId"]) for r in seen["champion"]} & {str(r["InferenceId"]) for r in seen["challenger"]}
    out: dict[str, Any] = {}
    for model in MODELS:
        shared = [r for r in seen[model] if str(r["InferenceId"]) in both]
        out[model.capitalize()] = metrics.classification_summary(shared, plan.threshold, model)
        own = [r for r in seen[model] if r.get("ServedBy", "champion") == model]
        out[f"{model.capitalize()}OnOwnDecisions"] = {
            "N": len(own), "BrierScore": float(np.mean([(float(r["Prediction"]) - float(r["Label"])) ** 2 for r in own]))
            if own else None}
    auc_a, auc_b = out["Champion"]["AUC"], out["Challenger"]["AUC"]
    out["AUCDifference"] = auc_b - auc_a if auc_a is not None and auc_b is not None else None
    return out


def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "n/a" if x is None else format(x, spec)


def _test_reasons(plan: Plan, result: LookResult, min_pairs: int) -> list[str]:
    look = result.current
    better = "lower" if plan.lower_is_better else "higher"
    if result.stopped_at is not None:
        end = result.looks[result.stopped_at - 1]
        where = f"at look {end.look} (t = {end.information_fraction:.2f}, {end.n_champion} labelled requests scored by both)"
        interval = f"{1 - plan.alpha:.0%} repeated CI [{_fmt(end.ci_low)}, {_fmt(end.ci_high)}]"
        if result.decision == "challenger_wins":
            return [f"challenger {plan.metric} {better} by {_fmt(abs(end.effect))} on the same labelled requests "
                    f"({interval}): Z = {end.statistic:.3f} crossed the boundary ±{_fmt(end.boundary, '.3f')} {where}"]
        if result.decision == "challenger_worse":
            return [f"challenger {plan.metric} worse by {_fmt(abs(end.effect))} on the same labelled requests "
                    f"({interval}): Z = {end.statistic:.3f} crossed the boundary ±{_fmt(end.boundary, '.3f')} {where}"]
        return [f"no significant difference when the test ended {where}: Z = {end.statistic:.3f} within "
                f"±{_fmt(end.boundary, '.3f')}; effect {_fmt(end.effect)} ({interval}); the champion stays"]
    reasons = []
    if look.n_champion == 0:
        reasons.append(f"look {look.look}: no labelled request scored by both models yet (labels arrive later, and only "
                       f"for approved applicants); nothing to test, no α spent")
    elif look.n_champion < min_pairs:
        reasons.append(f"{look.n_champion} labelled requests scored by both models, below the {min_pairs} needed "
                       f"before the test may stop")
    if look.n_champion and look.scheduled:
        bound = f"within ±{look.boundary:.3f}" if look.boundary is not None else "(no new information, no boundary)"
        reasons.append(f"look {look.look} (t = {look.information_fraction:.2f}): Z = {look.statistic:.3f} {bound}; "
                       f"always-valid p = {look.p_value:.3g}")
    elif look.n_champion:
        reasons.append(f"unscheduled check (t = {look.information_fraction:.2f}): Z = {look.statistic:.3f}, "
                       f"always-valid p = {look.p_value:.3g}; decisions are taken at scheduled looks")
    return reasons


def _unpaired_reason(pairing: Mapping[str, Any]) -> list[str]:
    only_a, only_b = pairing["ChampionScoreOnly"], pairing["ChallengerScoreOnly"]
    if not only_a and not only_b:
        return []
    return [f"{only_a + only_b} labelled requests carry one model's score only ({only_a} the champion's, {only_b} the "
            f"challenger's): not compared, since each model's own labelled applicants are a different population"]


def _end_reason(decision: str, result: LookResult, breaches: list[str], waiting: list[str], final: bool) -> str:
    if decision == "abort":
        return "guardrail breached: " + "; ".join(breaches)
    if result.stopped_at is None:
        return "continuing: " + ("waiting for guardrail data: " + ", ".join(waiting) if waiting else
                                 "no boundary crossed and n_max not reached")
    end = result.looks[result.stopped_at - 1]
    if result.decision in ("challenger_wins", "challenger_worse"):
        text = f"boundary crossed at look {end.look} ({result.decision.replace('_', ' ')})"
        if decision == "continue":
            return text + "; waiting for guardrail data: " + ", ".join(waiting)
        if decision == "keep_champion" and result.decision == "challenger_wins":
            return text + "; guardrails not verified by the last look: " + ", ".join(waiting)
        return text
    if end.information_fraction >= 1.0 - 1e-12:
        return f"n_max reached at look {end.look} without a significant difference"
    return f"last look ({end.look}) reached before n_max{' (final: the rest of α spent)' if final else ''}"


def decide(
    plan: Plan | Mapping[str, Any],
    records_by_model: Mapping[str, Sequence[Mapping[str, Any]]],
    guardrails: Guardrails | Mapping[str, Any],
    now_info: Mapping[str, Any],
) -> dict[str, Any]:
    """Decide one look of an A/B test.

    plan: a paired Plan or Plan.to_dict(). records_by_model: {"champion": [...], "challenger": [...]}: each model's
    score on labelled requests (see sagestep.abtest.metrics), with "ServedBy" ("champion" | "challenger") naming the
    variant that decided the request; pairs are joined on InferenceId.
    guardrails: Guardrails or its dict (see sagestep.abtest.guardrails).
    now_info: {"LookCutoffs": [t_1, …, t_k] (epoch seconds or ISO-8601; the last is this look),
               "MaxLooks": int, "Final": bool (optional: the last look, spend what is left of α),
               "Unscheduled": bool (optional: an ad-hoc check, judged by its always-valid p-value only),
               "Attributes": [{"Name", "Privileged"}] (protected attributes of the dataset config),
               "Decisions": [per look: {"champion"|"challenger": metrics.decision_summary(...)}],
               "Operational": {"champion"|"challenger": {Invocations, Errors, LatencySamples, LatencyP99Ms,
                               LatencyP99LowerMs, LatencyP99UpperMs}} (this look),
               "PreviousOperational": [per earlier look: the same or null] (optional, for the record)}.
    Returns {"Decision": "continue" | "promote" | "keep_champion" | "abort", "Reasons": [...], "Evidence": {...}}.
    """
    plan = plan if isinstance(plan, Plan) else Plan.from_dict(plan)
    rails = guardrails if isinstance(guardrails, Guardrails) else Guardrails.from_dict(guardrails)
    missing = [m for m in MODELS if m not in records_by_model]
    if missing:
        raise ValueError(f"records_by_model needs keys {list(MODELS)}; missing {missing}")
    if rails.min_pairs > plan.n_max:
        raise ValueError(f"guardrails.MinPairs ({rails.min_pairs}) exceeds the plan's NMax ({plan.n_max})")
    cutoffs = _cutoffs(now_info)
    max_looks = int(now_info.get("MaxLooks") or 0)
    if max_looks < 1:
        raise ValueError("now_info.MaxLooks must be a positive integer (the state machine's MaxLooks)")
    attributes = list(now_info.get("Attributes") or [])
    decisions = _decisions(now_info, len(cutoffs))
    operational = _operational(now_info.get("Operational"), "now_info.Operational")
    if operational is None:
        raise ValueError("now_info.Operational is required for this look")
    previous = list(now_info.get("PreviousOperational") or [])
    previous = (previous + [None] * len(cutoffs))[: len(cutoffs) - 1]
    final = bool(now_info.get("Final", False))

    comparison, pairing = _pairs(plan, records_by_model, cutoffs)
    result = evaluate_look(plan, comparison, final=final, unscheduled=bool(now_info.get("Unscheduled", False)),
                           min_n_to_stop=rails.min_pairs)
    by_look = []
    for j in range(len(cutoffs)):
        ops = operational if j == len(cutoffs) - 1 else _operational(previous[j], f"now_info.PreviousOperational[{j}]")
        by_look.append(rails_mod.evaluate(rails, max_looks, decisions[j], attributes, ops))
    current = by_look[-1]
    breaches = [g["Reason"] for g in current if g["State"] == BREACHED]
    waiting = [g["Name"] for g in current if g["State"] == WAITING]

    reasons = _test_reasons(plan, result, rails.min_pairs) + _unpaired_reason(pairing)
    if breaches:
        decision, reasons = "abort", breaches + reasons
    elif result.decision == "challenger_wins":
        if not waiting:
            decision = "promote"
        elif final:
            decision = "keep_champion"
            reasons.append(f"the test favours the challenger but guardrails could not be checked by the last look "
                           f"({', '.join(waiting)}): the champion stays")
        else:
            decision = "continue"
            reasons.append(f"the test favours the challenger; promotion waits for enough data on {', '.join(waiting)}")
    else:
        decision = "continue" if result.decision == "continue" else "keep_champion"

    looks = []
    for j, row in enumerate(result.looks):
        entry = row.to_dict()
        entry.update(
            Pairs=row.n_champion,
            LabelledServedByChampion=pairing["PairsByLook"][j]["ServedByChampion"],
            LabelledServedByChallenger=pairing["PairsByLook"][j]["ServedByChallenger"],
            DecisionsChampion=int(decisions[j]["champion"]["N"]),
            DecisionsChallenger=int(decisions[j]["challenger"]["N"]),
            Guardrails={g["Name"]: g["State"] for g in by_look[j]},
        )
        looks.append(entry)
    evidence: dict[str, Any] = {
        "Metric": plan.metric,
        "LowerIsBetter": plan.lower_is_better,
        "Alpha": plan.alpha,
        "ConfidenceLevel": 1.0 - plan.alpha,
        "NMax": plan.n_max,
        "MaxLooks": max_looks,
        "Spending": plan.spending,
        "TestDecision": result.decision,
        "StoppedAtLook": result.stopped_at,
        "EndReason": _end_reason(decision, result, breaches, waiting, final),
        "Look": looks[-1],
        "Looks": looks,
        "Pairing": {k: v for k, v in pairing.items() if k != "PairsByLook"},
        "Guardrails": current,
        "GuardrailSettings": {**rails.to_dict(), "LookLevel": rails_mod.look_level(rails, max_looks)},
        "Reported": _reported(plan, records_by_model, cutoffs[-1]),
    }
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
