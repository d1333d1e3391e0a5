"""Guardrails are sequential tests: over all looks a guardrail falsely aborts with probability ≤ Alpha, it waits for
its minimum count, and it catches real harm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sagestep.abtest import guardrails as g

RAILS = g.Guardrails(min_count=100, alpha=0.05, max_error_rate_increase=0.002, approval_rate_band=(-0.05, 0.05))
MAX_LOOKS = 10
REPS = 2000


def looks_of(rng: np.random.Generator, p: float, per_look: int) -> np.ndarray:
    """Cumulative successes at each of MAX_LOOKS looks, `per_look` new observations each, for REPS tests."""
    return np.cumsum(rng.binomial(per_look, p, size=(REPS, MAX_LOOKS)), axis=1)


def breach_rate(breached: np.ndarray) -> tuple[float, float]:
    rate = float(breached.mean())
    return rate, math.sqrt(max(rate, 1e-4) * (1 - rate) / breached.size)


def decisions(n: int, approved: int, groups: tuple[tuple[int, int], tuple[int, int]] | None = None) -> dict:
    (n_p, x_p), (n_u, x_u) = groups or ((0, 0), (0, 0))
    return {"N": n, "Approved": approved, "Groups": {"Age": {"Privileged": [n_p, x_p], "Unprivileged": [n_u, x_u]}}}


def test_approval_rate_guardrail_at_the_band_edge_falsely_aborts_at_most_alpha_over_all_looks():
    # GIVEN a challenger whose approval rate is exactly 5 points above the champion's (the band's edge)
    rng = np.random.default_rng(1)
    a, b = looks_of(rng, 0.70, 300), looks_of(rng, 0.75, 300)
    z = stats.norm.isf(g.look_level(RAILS, MAX_LOOKS) / 2)
    # WHEN the guardrail is asked at every one of the 10 looks
    breached = np.zeros(REPS, dtype=bool)
    for k in range(MAX_LOOKS):
        n = 300 * (k + 1)
        for r in range(REPS):
            state = g.approval_rate({"champion": {"N": n, "Approved": a[r, k]}, "challenger": {"N": n, "Approved": b[r, k]}},
                                    RAILS, z)
            breached[r] |= state["State"] == g.BREACHED
    # THEN a false abort happens in at most α of the tests (+ 3 SE)
    rate, se = breach_rate(breached)
    assert rate <= RAILS.alpha + 3 * se


def test_error_rate_guardrail_at_its_margin_falsely_aborts_at_most_alpha_and_catches_a_real_increase():
    rng = np.random.default_rng(2)
    z = stats.norm.isf(g.look_level(RAILS, MAX_LOOKS))

    def any_breach(p_a: float, p_b: float) -> np.ndarray:
        a, b = looks_of(rng, p_a, 500), looks_of(rng, p_b, 500)
        hit = np.zeros(REPS, dtype=bool)
        for k in range(MAX_LOOKS):
            n = 500 * (k + 1)
            for r in range(REPS):
                ops = {"champion": {"Invocations": n, "Errors": a[r, k]}, "challenger": {"Invocations": n, "Errors": b[r, k]}}
                hit[r] |= g.error_rate(ops, RAILS, z)["State"] == g.BREACHED
        return hit

    # GIVEN the challenger's error rate exactly at the allowed increase, THEN at most α false aborts
    rate, se = breach_rate(any_breach(0.001, 0.003))
    assert rate <= RAILS.alpha + 3 * se
    # GIVEN a challenger failing 2% of requests THEN the guardrail aborts nearly always
    assert any_breach(0.001, 0.02).mean() > 0.95


def test_disparate_impact_at_the_band_edge_falsely_aborts_at_most_alpha():
    # GIVEN challenger decisions with DI exactly 0.8 (young 56% approved vs 70%), young 20% of applicants
    rng = np.random.default_rng(3)
    z = stats.norm.isf(g.look_level(RAILS, MAX_LOOKS) / 2)
    young, old = looks_of(rng, 0.56, 60), looks_of(rng, 0.70, 240)
    breached = np.zeros(REPS, dtype=bool)
    attributes = [{"Name": "Age", "Privileged": "Age >= 25"}]
    for k in range(MAX_LOOKS):
        n_u, n_p = 60 * (k + 1), 240 * (k + 1)
        for r in range(REPS):
            summary = decisions(n_u + n_p, 0, ((n_p, old[r, k]), (n_u, young[r, k])))
            state = g.disparate_impact({"challenger": summary}, attributes, RAILS, z)[0]
            breached[r] |= state["State"] == g.BREACHED
    rate, se = breach_rate(breached)
    assert rate <= RAILS.alpha + 3 * se


def test_disparate_impact_waits_for_each_group_then_breaches_a_clear_violation():
    z = stats.norm.isf(g.look_level(RAILS, MAX_LOOKS) / 2)
    attributes = [{"Name": "Age", "Privileged": "Age >= 25"}]
    few = g.disparate_impact({"challenger": decisions(600, 0, ((550, 400), (50, 10)))}, attributes, RAILS, z)[0]
    many = g.disparate_impact({"challenger": decisions(1200, 0, ((1000, 700), (200, 60)))}, attributes, RAILS, z)[0]
    assert few["State"] == g.WAITING and "waiting for 100" in few["Reason"]
    assert many["State"] == g.BREACHED and many["Estimate"] == pytest.approx(0.3 / 0.7)


@pytest.mark.parametrize("n", [700, 2000, 5000])
def test_p99_bounds_from_two_more_percentiles_cover_the_true_p99(n):
    # GIVEN n log-normal latencies (the shape of real latencies) and the percentiles the guardrail reads
    error = 0.01
    lower, upper = g.quantile_ranks(n, 0.99, error)
    rng = np.random.default_rng(n)
    values = np.sort(rng.lognormal(1.0, 0.6, size=(2000, n)), axis=1)
    true_p99 = math.exp(1.0 + 0.6 * stats.norm.ppf(0.99))

    def nearest_rank(level: float) -> np.ndarray:  # as CloudWatch defines pNN (and the local plug-in computes it)
        return values[:, max(1, math.ceil(level / 100 * n)) - 1]

    # THEN each bound misses the true p99 with probability ≤ error (+ 3 SE), and the bounds straddle the p99
    low_miss, high_miss = (nearest_rank(lower) > true_p99).mean(), (nearest_rank(upper) < true_p99).mean()
    se = math.sqrt(error * (1 - error) / 2000)
    assert low_miss <= error + 3 * se and high_miss <= error + 3 * se
    assert lower < 99.0 < upper


def test_too_few_latencies_give_no_upper_bound_so_the_latency_guardrail_waits():
    assert g.quantile_ranks(200, 0.99, 0.0025)[1] is None
    ops = {m: {"Invocations": 200, "Errors": 0, "LatencySamples": 200, "LatencyP99Ms": 5.0,
               "LatencyP99LowerMs": 4.0, "LatencyP99UpperMs": None} for m in ("champion", "challenger")}
    assert g.latency_p99(ops, RAILS)["State"] == g.WAITING


@pytest.mark.parametrize(
    ("raw", "message"),
    [({"ApprovalRateBand": [0.05, -0.05]}, "ApprovalRateBand"), ({"Alpha": 1.5}, "Alpha"),
     ({"MinCount": 0}, "MinCount"), ({"MaxErrorRateIncrease": -1}, "MaxErrorRateIncrease"), ({"Typo": 1}, "Typo")],
)
def test_bad_guardrail_settings_are_rejected_with_the_field_named(raw, message):
    with pytest.raises(ValueError, match=message):
        g.Guardrails.from_dict(raw)


def test_guardrail_settings_round_trip_through_the_stored_plan():
    rails = g.Guardrails.from_dict({"MinCount": 50, "ApprovalRateBand": [-0.1, 0.02], "DisparateImpactBand": [0.8, 1.25]})
    assert g.Guardrails.from_dict(rails.to_dict()) == rails
