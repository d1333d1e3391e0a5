"""The A/B execution input as the state machine reads it, and the design it gives: plan, guardrails, fairness.

`MACHINE_DEFAULTS` are the defaults the ABTestStateMachine's "Prepare test" state applies (a static test checks
that the two agree); `settings` applies them here so `sagestep ab simulate` studies the very test an input starts.
`design` is what the ab_winner Lambda's `plan` action computes and stores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from sagestep.abtest import design as design_mod
from sagestep.abtest.design import Plan
from sagestep.abtest.guardrails import Guardrails

MACHINE_DEFAULTS: dict[str, Any] = {
    "TrafficShare": 0.1,
    "Mode": "split",
    "LookIntervalSeconds": 3600,
    "MergeEndOffset": "-PT5M",
    "Metric": "brier",
    "Alpha": 0.05,
    "Power": 0.8,
    "Looks": 5,
}
LOOKS_OVERRUN = 2  # MaxLooks defaults to this many times Looks
TRAFFIC_MODES = ("split", "shadow")


class ABInputError(ValueError):
    """A bad A/B input; the message names the field and the fix."""


def _number(event: Mapping[str, Any], key: str) -> float:
    value = event.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ABInputError(f"A/B input: {key} must be a number, got {value!r}")
    return float(value)


def _count(event: Mapping[str, Any], key: str) -> int:
    """A positive whole number (JSONata arithmetic may hand over 10.0 for 10)."""
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1 or not float(value).is_integer():
        raise ABInputError(f"A/B input: {key} must be a positive integer, got {value!r}")
    return int(value)


def settings(execution_input: Mapping[str, Any]) -> dict[str, Any]:
    """The execution input with the state machine's defaults filled in (MaxLooks = 2 × Looks)."""
    out = {**MACHINE_DEFAULTS, **{k: v for k, v in execution_input.items() if v is not None}}
    out.setdefault("MaxLooks", int(out["Looks"]) * LOOKS_OVERRUN)
    return out


@dataclass(frozen=True)
class Design:
    plan: Plan
    guardrails: Guardrails
    max_looks: int
    traffic: str
    share: float


def design(event: Mapping[str, Any], disparate_impact_band: tuple[float, float] | None) -> Design:
    """Plan the paired group-sequential test and the guardrails of one A/B input (after `settings`).

    The test is always paired: both models' losses on the same labelled requests, so `Variance` is σ_d², the
    variance of one request's loss difference (challenger − champion); `BaseRate` for "default_rate".
    """
    metric = event.get("Metric")
    traffic = event.get("Mode")
    if traffic not in TRAFFIC_MODES:
        raise ABInputError(f"A/B input: Mode must be one of {list(TRAFFIC_MODES)}, got {traffic!r}")
    share = _number(event, "TrafficShare")
    if not (0.0 < share < 1.0 or (traffic == "shadow" and share == 1.0)):
        raise ABInputError(f"A/B input: TrafficShare must be in (0, 1) (up to 1 in shadow mode), got {share}")
    looks, max_looks = _count(event, "Looks"), _count(event, "MaxLooks")
    spread_key = "BaseRate" if metric in design_mod.PROPORTION_METRICS else "Variance"
    if spread_key not in event:
        raise ABInputError(
            f"A/B input: {spread_key} is required for metric {metric!r} (the champion's "
            f"{'default rate' if spread_key == 'BaseRate' else 'variance of the per-request loss difference'})"
        )
    try:
        plan = design_mod.plan(
            str(metric), _number(event, spread_key), _number(event, "MinimumDetectableEffect"),
            alpha=_number(event, "Alpha"), power=_number(event, "Power"), looks=looks, mode="paired",
            threshold=_number(event, "Threshold") if "Threshold" in event else 0.5,
            n_max=int(event["NMax"]) if event.get("NMax") is not None else None,
        )
    except ValueError as exc:
        raise ABInputError(f"A/B input: {exc}") from None
    raw = dict(event.get("Guardrails") or {})
    if "DisparateImpactBand" in raw:
        raise ABInputError("A/B input: Guardrails.DisparateImpactBand comes from the dataset config "
                           "(thresholds.disparate_impact); set it there, not per test")
    raw.setdefault("MinPairs", min(1000, math.ceil(plan.n_max / looks)))
    if disparate_impact_band is not None:  # None: the loss test alone is studied (sagestep ab simulate)
        raw["DisparateImpactBand"] = list(disparate_impact_band)
    try:
        rails = Guardrails.from_dict(raw)
    except ValueError as exc:
        raise ABInputError(f"A/B input: {exc}") from None
    if rails.min_pairs > plan.n_max:
        raise ABInputError(f"A/B input: Guardrails.MinPairs ({rails.min_pairs}) exceeds the plan's NMax "
                           f"({plan.n_max}); lower it or the MinimumDetectableEffect")
    return Design(plan, rails, max_looks, str(traffic), share)
