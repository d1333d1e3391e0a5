"""Looks: Z statistic, boundaries at the fractions reached, mSPRT always-valid p-values, decisions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sagestep.abtest.design import boundaries, plan
from sagestep.abtest.sequential import (
    DECISIONS,
    Comparison,
    Sums,
    evaluate_look,
    msprt_p_values,
    msprt_rho2,
    run_looks,
)

PLAN = plan("default_rate", 0.05, -0.005, looks=5)


def binary_looks(n: list[int], events_a: list[int], events_b: list[int]) -> Comparison:
    """Cumulative 0/1 outcomes per arm at each look (Σy² = Σy for 0/1)."""
    return Comparison.split(Sums.of(n, events_a, events_a), Sums.of(n, events_b, events_b))


def test_z_statistic_is_the_unpooled_difference_of_proportions():
    # GIVEN 5.0% vs 4.5% defaults on 10,000 requests per arm
    comparison = binary_looks([10_000], [500], [450])
    # THEN Z = (p_B − p_A) / √(p_A q_A/n_A + p_B q_B/n_B) (sample variances, n − 1)
    se = math.sqrt(0.05 * 0.95 / 9_999 + 0.045 * 0.955 / 9_999)
    assert comparison.z[0] == pytest.approx(-0.005 / se, rel=1e-9)


def test_look_inside_the_boundary_continues_with_evidence():
    # GIVEN the first planned look with a small observed improvement
    n1 = round(0.2 * PLAN.n_max)
    result = evaluate_look(PLAN, binary_looks([n1], [292], [280]))
    # THEN the test continues; the boundary is the planned one and the repeated CI contains 0
    assert result.decision == "continue"
    assert result.stopped_at is None
    assert result.current.boundary == pytest.approx(PLAN.boundaries[0], abs=1e-3)
    assert result.current.ci_low < 0 < result.current.ci_high
    assert 0 < result.current.p_value <= 1


def test_boundary_is_recomputed_at_the_information_fraction_actually_reached():
    # GIVEN looks that fell at 25% and 55% of n_max instead of the planned 20% and 40%
    n = [round(0.25 * PLAN.n_max), round(0.55 * PLAN.n_max)]
    result = evaluate_look(PLAN, binary_looks(n, [360, 800], [350, 760]))
    # THEN each boundary is Lan–DeMets at the actual fractions
    expected = boundaries(np.array(n) / PLAN.n_max, PLAN.alpha)
    assert [row.boundary for row in result.looks] == pytest.approx(list(expected), rel=1e-9)
    assert result.looks[1].boundary != pytest.approx(PLAN.boundaries[1], abs=0.02)


def test_clear_improvement_crossing_the_boundary_makes_the_challenger_win():
    # GIVEN the second look, challenger 4.0% vs champion 5.0%
    n = [round(0.2 * PLAN.n_max), round(0.4 * PLAN.n_max)]
    result = evaluate_look(PLAN, binary_looks(n, [291, 582], [260, 466]))
    # THEN the boundary is crossed at look 2 and the estimate's interval excludes 0
    assert result.decision == "challenger_wins"
    assert result.stopped_at == 2
    assert result.current.crossed and result.current.ci_high < 0


def test_reaching_n_max_without_crossing_keeps_the_champion():
    # GIVEN the planned looks up to n_max with no real difference
    n = [round(t * PLAN.n_max) for t in PLAN.information_fractions]
    events = [round(0.05 * k) for k in n]
    result = evaluate_look(PLAN, binary_looks(n, events, [e + 3 for e in events]))
    # THEN the test ends at the last look with champion_wins_or_equal
    assert result.decision == "champion_wins_or_equal"
    assert result.stopped_at == 5
    assert not any(row.crossed for row in result.looks)


def test_a_look_below_the_minimum_sample_cannot_stop_the_test():
    # GIVEN a first look where the challenger is far better, but with fewer requests than the minimum
    comparison = binary_looks([6_000], [300], [150])
    assert abs(comparison.z[0]) > PLAN.boundaries[0]
    # WHEN the minimum sample per arm is 8,000
    result = evaluate_look(PLAN, comparison, min_n_to_stop=8_000)
    # THEN the test continues
    assert result.decision == "continue"


def test_unscheduled_check_reports_an_always_valid_p_value_and_leaves_the_decision_to_scheduled_looks():
    # GIVEN one scheduled look and then an ad-hoc check with a strong effect
    n1 = round(0.2 * PLAN.n_max)
    comparison = binary_looks([n1, n1 + 3_000], [292, 440], [285, 330])
    # WHEN the last look is evaluated as unscheduled
    result = evaluate_look(PLAN, comparison, unscheduled=True)
    # THEN it has no boundary, an always-valid interval wider than a fixed-horizon one, and the decision is the
    # scheduled test's
    assert result.current.boundary is None and not result.current.scheduled
    assert result.current.ci_high - result.current.effect > 1.96 * float(comparison.se[-1])
    assert result.decision == "continue"
    assert result.current.p_value == pytest.approx(float(msprt_p_values(PLAN, comparison)[-1]))


def test_msprt_p_value_is_the_inverse_of_the_mixture_likelihood_ratio_in_the_spec():
    # GIVEN one look with an estimated per-pair variance V̂ and difference Δ̂
    comparison = binary_looks([12_000], [600], [520])
    n, delta, v = 12_000.0, float(comparison.effect[0]), float(comparison.se[0]) ** 2 * 12_000.0
    # WHEN Λ_n is computed literally: √(V/(V + nτ²))·exp(n²τ²Δ̂²/(2V(V + nτ²))), τ² = ρ²V
    tau2 = msprt_rho2(PLAN) * v
    lam = math.sqrt(v / (v + n * tau2)) * math.exp(n**2 * tau2 * delta**2 / (2 * v * (v + n * tau2)))
    # THEN the always-valid p-value is min(1, 1/Λ_n)
    assert float(msprt_p_values(PLAN, comparison)[0]) == pytest.approx(min(1.0, 1.0 / lam), rel=1e-9)


def test_msprt_p_values_never_increase_over_looks():
    # GIVEN a sequence of looks whose evidence rises and falls
    comparison = binary_looks([4_000, 8_000, 12_000], [200, 400, 600], [150, 380, 600])
    # THEN the always-valid p-value is a running minimum
    p = msprt_p_values(PLAN, comparison)
    assert np.all(np.diff(p) <= 0)


def test_vectorised_runs_give_the_same_decisions_as_single_runs():
    # GIVEN three runs evaluated together and one by one
    n = [round(0.2 * PLAN.n_max), round(0.4 * PLAN.n_max)]
    a = np.array([[291, 582], [291, 582], [291, 582]])
    b = np.array([[260, 466], [290, 580], [300, 700]])
    together = Comparison.split(Sums.of(np.broadcast_to(n, a.shape), a, a), Sums.of(np.broadcast_to(n, b.shape), b, b))
    decisions = [DECISIONS[d] for d in run_looks(PLAN, together).decision]
    # THEN they agree
    assert decisions == [evaluate_look(PLAN, binary_looks(n, list(a[i]), list(b[i]))).decision for i in range(3)]
    assert decisions == ["challenger_wins", "continue", "challenger_worse"]
