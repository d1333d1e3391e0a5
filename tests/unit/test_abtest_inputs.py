"""The A/B execution input as the state machine reads it: defaults, the paired design, and refusals naming the field."""

from __future__ import annotations

import pytest

from sagestep.abtest import inputs

BASE = {"Metric": "brier", "Variance": 0.08, "MinimumDetectableEffect": -0.05}


def test_the_machines_defaults_fill_the_gaps_and_max_looks_is_twice_the_looks():
    spec = inputs.settings({**BASE, "Looks": 4})
    assert spec["MaxLooks"] == 8 and spec["Mode"] == "split" and spec["TrafficShare"] == 0.1
    design = inputs.design(spec, (0.8, 1.25))
    assert design.plan.mode == "paired" and design.max_looks == 8
    assert design.guardrails.min_pairs == -(-design.plan.n_max // 4)  # n_max / looks, rounded up
    assert design.guardrails.disparate_impact_band == (0.8, 1.25)


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"Mode": "bandit"}, "Mode"), ({"TrafficShare": 1.0}, "TrafficShare"), ({"Looks": 2.5}, "Looks"),
     ({"Guardrails": {"DisparateImpactBand": [0.7, 1.3]}}, "dataset config"),
     ({"Guardrails": {"MinPairs": 10**6}}, "MinPairs"), ({"Variance": None}, "Variance"),
     ({"Metric": "default_rate"}, "BaseRate")],
)
def test_a_bad_input_is_refused_with_the_field_named(extra, field):
    with pytest.raises(inputs.ABInputError, match=field):
        inputs.design(inputs.settings({**BASE, **extra}), (0.8, 1.25))


def test_a_shadow_test_may_copy_all_traffic_to_the_challenger():
    assert inputs.design(inputs.settings({**BASE, "Mode": "shadow", "TrafficShare": 1.0}), None).share == 1.0
