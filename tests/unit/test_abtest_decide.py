"""decide(): what the ab_winner Lambda returns for each scenario."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from sagestep.abtest import decide, plan

PLAN = plan("brier", 0.02, -0.01, looks=5)
CUTOFFS = [round(t * PLAN.n_max) for t in PLAN.information_fractions]
RAILS = {"MinSamplePerArm": 200, "MaxErrorRateIncrease": 0.005, "MaxLatencyP99IncreaseMs": 20}


def scored_requests(seed: int, n: int, noise: float, labels_seed: int | None = None) -> list[dict]:
    """Requests scored by a model whose predicted default probability has the given noise.

    The i-th record becomes available at time i + 1, so cutoff c sees the first c records.
    """
    label_rng = np.random.default_rng(seed if labels_seed is None else labels_seed)
    defaults = label_rng.random(n) < 0.2
    rng = np.random.default_rng(seed + 10_000)
    prediction = np.clip(np.where(defaults, 0.6, 0.15) + rng.normal(0.0, noise, n), 0.0, 1.0)
    return [
        {"InferenceId": f"req-{i}", "Prediction": float(prediction[i]), "Label": int(defaults[i]), "AvailableAt": i + 1}
        for i in range(n)
    ]


def healthy(errors_challenger: int = 1, p99_challenger: float = 41.0) -> dict:
    return {
        "champion": {"Invocations": 4000, "Errors": 2, "LatencyMs": [30.0] * 95 + [40.0] * 5},
        "challenger": {"Invocations": 4000, "Errors": errors_challenger, "LatencyP99Ms": p99_challenger},
    }


def now(looks: int, **extra) -> dict:
    return {"LookCutoffs": CUTOFFS[:looks], "Operational": healthy(), **extra}


def test_clearly_better_challenger_is_promoted_with_evidence():
    # GIVEN a challenger with much sharper predictions, at the third scheduled look
    records = {"champion": scored_requests(1, PLAN.n_max, 0.30), "challenger": scored_requests(2, PLAN.n_max, 0.05)}
    # WHEN the Lambda decides
    out = decide(PLAN.to_dict(), records, RAILS, now(3))
    # THEN it promotes, and the evidence shows where the boundary was crossed and by how much
    assert out["Decision"] == "promote"
    evidence = out["Evidence"]
    stop = evidence["Looks"][evidence["StoppedAtLook"] - 1]
    assert stop["Crossed"] and abs(stop["Statistic"]) >= stop["Boundary"]
    assert stop["ConfidenceInterval"][1] < 0  # challenger's Brier score is lower
    assert len(evidence["Looks"]) == 3 and evidence["Look"]["Look"] == 3
    assert evidence["Reported"]["AUCDifference"] > 0
    assert "crossed the boundary" in out["Reasons"][0]


def test_identical_models_keep_the_champion_at_n_max_without_promotion():
    # GIVEN two equally good models on different requests, all five looks up to n_max
    records = {"champion": scored_requests(3, PLAN.n_max, 0.2), "challenger": scored_requests(4, PLAN.n_max, 0.2)}
    # WHEN the last look is decided
    out = decide(PLAN, records, RAILS, now(5))
    # THEN the champion stays: no look crossed, the test ended at n_max
    assert out["Decision"] == "keep_champion"
    assert out["Evidence"]["TestDecision"] == "champion_wins_or_equal"
    assert out["Evidence"]["StoppedAtLook"] == 5
    assert not any(look["Crossed"] for look in out["Evidence"]["Looks"])
    assert all(look["Boundary"] is not None for look in out["Evidence"]["Looks"])


def test_challenger_error_rate_guardrail_aborts_even_when_it_scores_better():
    # GIVEN a better challenger that fails 1.5% of its requests against the champion's 0.05%
    records = {"champion": scored_requests(1, PLAN.n_max, 0.30), "challenger": scored_requests(2, PLAN.n_max, 0.05)}
    info = now(3, Operational=healthy(errors_challenger=60))
    # WHEN the Lambda decides
    out = decide(PLAN, records, RAILS, info)
    # THEN it aborts with the guardrail as the first reason
    assert out["Decision"] == "abort"
    assert "error rate" in out["Reasons"][0]
    assert out["Evidence"]["Guardrails"]["ErrorRate"]["Passed"] is False


def test_challenger_latency_guardrail_aborts():
    # GIVEN a challenger whose p99 latency is 60 ms above the champion's 40 ms
    records = {"champion": scored_requests(5, 500, 0.2), "challenger": scored_requests(6, 500, 0.2)}
    out = decide(PLAN, records, RAILS, now(1, Operational=healthy(p99_challenger=100.0)))
    # THEN it aborts
    assert out["Decision"] == "abort"
    assert "latency p99" in out["Reasons"][0]


def test_below_the_minimum_sample_the_test_continues():
    # GIVEN 150 labelled requests per arm and a minimum of 200 per arm
    records = {"champion": scored_requests(1, 150, 0.30), "challenger": scored_requests(2, 150, 0.05)}
    # WHEN the Lambda decides at that early look
    out = decide(PLAN, records, RAILS, {"LookCutoffs": [150], "Operational": healthy()})
    # THEN it continues and says why
    assert out["Decision"] == "continue"
    assert "minimum sample" in out["Reasons"][0]
    assert out["Evidence"]["Guardrails"]["MinSamplePerArm"]["Passed"] is False


def test_rerunning_the_same_look_gives_the_identical_result_even_after_more_data_arrived():
    # GIVEN the second look of a test in progress
    records = {"champion": scored_requests(7, PLAN.n_max, 0.2), "challenger": scored_requests(8, PLAN.n_max, 0.17)}
    first = decide(PLAN.to_dict(), records, RAILS, now(2))
    # WHEN the look is retried later, with records that arrived after its cutoff and in another order
    later = {k: random.Random(0).sample(v, len(v)) + scored_requests(9, 50, 0.2) for k, v in records.items()}
    for extra in later.values():
        for r in extra[-50:]:
            r["AvailableAt"] = CUTOFFS[1] + 1_000
    again = decide(PLAN.to_dict(), later, RAILS, now(2))
    # THEN the result is identical
    assert again == first
    assert first["Decision"] == "continue"


def test_shadow_mode_compares_both_models_on_the_same_requests():
    # GIVEN a shadow test: both models score the same requests (same labels)
    shadow_plan = plan("brier", 0.01, -0.005, looks=4, mode="shadow")
    n = shadow_plan.n_max
    champion = scored_requests(11, n, 0.20, labels_seed=99)
    challenger = scored_requests(12, n, 0.15, labels_seed=99)
    cutoffs = [round(t * n) for t in shadow_plan.information_fractions]
    # WHEN the Lambda decides at the last look
    out = decide(shadow_plan, {"champion": champion, "challenger": challenger}, RAILS,
                 {"LookCutoffs": cutoffs, "Operational": healthy()})
    # THEN the paired differences show the sharper challenger wins
    assert out["Decision"] == "promote"
    assert out["Evidence"]["Mode"] == "shadow"
    assert out["Evidence"]["UnpairedRecords"] == 0


def test_output_is_plain_json_for_the_state_machine():
    # GIVEN any decision
    records = {"champion": scored_requests(1, PLAN.n_max, 0.30), "challenger": scored_requests(2, PLAN.n_max, 0.05)}
    out = decide(PLAN, records, RAILS, now(4))
    # THEN it survives strict JSON (no NaN/Infinity) unchanged
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert set(out) == {"Decision", "Reasons", "Evidence"}


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"LookCutoffs": [], "Operational": healthy()}, "LookCutoffs"),
        ({"LookCutoffs": [200, 100], "Operational": healthy()}, "strictly increasing"),
        ({"LookCutoffs": [100]}, "Operational"),
    ],
)
def test_bad_look_information_is_rejected_with_the_field_named(info, message):
    # GIVEN malformed now_info WHEN deciding THEN the error names the field
    records = {"champion": scored_requests(1, 100, 0.2), "challenger": scored_requests(2, 100, 0.2)}
    with pytest.raises(ValueError, match=message):
        decide(PLAN, records, RAILS, info)


def test_unknown_guardrail_key_is_rejected():
    # GIVEN a typo in the guardrail configuration THEN it is not silently ignored
    records = {"champion": scored_requests(1, 100, 0.2), "challenger": scored_requests(2, 100, 0.2)}
    with pytest.raises(ValueError, match="MinSamplesPerArm"):
        decide(PLAN, records, {"MinSamplesPerArm": 10}, now(1))
