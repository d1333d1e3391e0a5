"""Plan: fixed-horizon sample sizes, Lan–DeMets boundaries, inflation for power."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from sagestep.abtest.design import Plan, alpha_spent, boundaries, crossing_probabilities, plan


def h0_crossing_probability(t: np.ndarray, c: np.ndarray) -> float:
    """1 − P(|Z_k| < c_k for all k), corr(Z_j, Z_k) = √(t_j/t_k): an independent check via scipy's MVN CDF."""
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    inside = stats.multivariate_normal.cdf(c, cov=cov, lower_limit=-c, abseps=1e-6, releps=0, rng=7)
    return 1.0 - float(inside)


def test_sample_size_for_default_rate_5_to_4_5_percent_is_28408_per_arm():
    # GIVEN the spec's example: 5% → 4.5%, two-sided α = 0.05, 80% power
    # WHEN planning a single-look (fixed-horizon) test
    p = plan("default_rate", 0.05, -0.005, alpha=0.05, power=0.8, looks=1)
    # THEN the proportions formula gives 28,408 per arm, and one look needs no inflation
    assert p.n_fixed == 28_408
    assert p.n_max == 28_408


def test_sample_size_for_a_mean_metric_uses_the_variance_formula():
    # GIVEN a per-request mean metric with V = σ_A² + σ_B² = 0.5 and a change of 0.02
    p = plan("brier", 0.5, -0.02, looks=1)
    # THEN n = (z₀.₉₇₅ + z₀.₈)²·V/δ²
    expected = (stats.norm.isf(0.025) + stats.norm.ppf(0.8)) ** 2 * 0.5 / 0.02**2
    assert p.n_fixed == math.ceil(expected)


def test_paired_design_with_correlated_outcomes_needs_fewer_requests():
    # GIVEN the same rates, two independent samples vs both models scored on the same requests (correlation 0.9)
    split = plan("default_rate", 0.05, -0.005, mode="split")
    paired = plan("default_rate", 0.05, -0.005, mode="paired", correlation=0.9)
    # THEN the paired design's variance, hence n, is several times smaller
    assert paired.n_max < split.n_max / 5


def test_obrien_fleming_boundaries_for_five_looks_match_published_values():
    # GIVEN 5 equally spaced looks, two-sided α = 0.05, O'Brien–Fleming-type spending
    p = plan("default_rate", 0.05, -0.005, looks=5)
    # THEN the computed boundaries agree with the published ones (a cross-check, not their source)
    assert p.boundaries == pytest.approx([4.88, 3.36, 2.68, 2.29, 2.04], abs=0.02)
    assert p.information_fractions == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])


@pytest.mark.parametrize("spending", ["obrien_fleming", "power"])
def test_boundaries_spend_exactly_alpha_under_no_effect(spending):
    # GIVEN the planned boundaries for 5 looks
    p = plan("default_rate", 0.05, -0.005, looks=5, spending=spending, rho=3.0)
    # WHEN the total crossing probability under H0 is computed independently with the multivariate normal CDF
    total = h0_crossing_probability(np.array(p.information_fractions), np.array(p.boundaries))
    # THEN it equals α
    assert total == pytest.approx(0.05, abs=0.002)


def test_boundaries_at_unplanned_fractions_spend_the_spending_function_at_the_actual_fractions():
    # GIVEN looks that fell at unplanned information fractions, the last one not yet at n_max
    t = np.array([0.17, 0.43, 0.58])
    # WHEN boundaries are recomputed for these fractions
    c = boundaries(t, 0.05)
    # THEN the probability of crossing by the last look equals α(t_last), and it differs from the planned design
    assert h0_crossing_probability(t, c) == pytest.approx(float(alpha_spent(0.58, 0.05)), abs=2e-4)
    assert c[0] != pytest.approx(4.88, abs=0.02)


def test_final_look_spends_what_is_left_of_alpha():
    # GIVEN a test stopped early by its maximum duration at t = 0.9
    t = np.array([0.3, 0.6, 0.9])
    # WHEN the last look is final
    c = boundaries(t, 0.05, final=True)
    # THEN the whole α is spent and the last boundary is lower than a non-final one
    assert h0_crossing_probability(t, c) == pytest.approx(0.05, abs=0.002)
    assert c[-1] < boundaries(t, 0.05)[-1]


def test_inflated_sample_size_keeps_the_target_power():
    # GIVEN a 5-look design
    p = plan("default_rate", 0.05, -0.005, looks=5, power=0.8)
    # WHEN the probability of crossing in the right direction is computed at the design effect with n_max
    drift = (stats.norm.isf(0.025) + stats.norm.ppf(0.8)) * math.sqrt(p.inflation)
    upper, _ = crossing_probabilities(p.information_fractions, p.boundaries, drift)
    # THEN it is the target power, bought with a few percent more requests (≈ 2.5% for this design)
    assert upper.sum() == pytest.approx(0.8, abs=1e-6)
    assert 1.02 < p.inflation < 1.03
    assert p.n_max == math.ceil(p.inflation * 28_407.96)


def test_plan_round_trips_through_json():
    # GIVEN a plan as the state machine stores it
    p = plan("absolute_error", 4.0, -0.1, looks=4, mode="paired", spending="power", rho=2.0)
    # WHEN it is serialised to JSON and read back
    restored = Plan.from_dict(json.loads(json.dumps(p.to_dict(), allow_nan=False)))
    # THEN nothing is lost
    assert restored == p
    assert p.to_dict()["NMax"] == p.n_max


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("default_rate", 1.2, -0.005), {}, "base rate"),
        (("default_rate", 0.05, 0.0), {}, "minimum_detectable_effect"),
        (("brier", -1.0, -0.01), {}, "variance"),
        (("auc", 0.05, -0.005), {}, "metric"),
        (("default_rate", 0.05, -0.005), {"looks": 0}, "looks"),
        (("default_rate", 0.05, -0.005), {"mode": "bandit"}, "mode"),
    ],
)
def test_plan_rejects_bad_inputs_with_a_message_naming_the_field(args, kwargs, message):
    # GIVEN an impossible design WHEN planning THEN a ValueError names the field
    with pytest.raises(ValueError, match=message):
        plan(*args, **kwargs)
