"""decide(): what the ab_winner Lambda returns for each scenario."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from sagestep.abtest import decide, plan

PLAN = plan("brier", 0.02, -0.01, looks=5, mode="paired")
CUTOFFS = [round(t * PLAN.n_max) for t in PLAN.information_fractions]
RAILS = {"MinPairs": 200, "MinCount": 200, "MaxErrorRateIncrease": 0.005, "MaxLatencyP99IncreaseMs": 20,
         "ApprovalRateBand": [-0.05, 0.05]}
AGE = [{"Name": "Age", "Privileged": "Age >= 25"}]


def scored(n: int, noise_a: float, noise_b: float, seed: int = 0, challenger_share: float = 0.1) -> dict:
    """Both models' scores of the same n labelled requests; request i becomes available at time i + 1, so cutoff c
    sees the first c pairs. Every tenth request was decided by the challenger."""
    rng = np.random.default_rng(seed)
    defaults = rng.random(n) < 0.2
    base = np.where(defaults, 0.6, 0.15)
    served = np.where(rng.random(n) < challenger_share, "challenger", "champion")
    out = {}
    for model, noise in (("champion", noise_a), ("challenger", noise_b)):
        prediction = np.clip(base + rng.normal(0.0, noise, n), 0.0, 1.0)
        out[model] = [{"InferenceId": f"req-{i}", "Prediction": float(prediction[i]), "Label": int(defaults[i]),
                       "AvailableAt": i + 1, "ServedBy": str(served[i])} for i in range(n)]
    return out


def summary(n: int = 3000, approved: float = 0.7, young_approved: float = 0.6, young: float = 0.15) -> dict:
    n_young = round(n * young)
    n_old = n - n_young
    x_young, x_old = round(n_young * young_approved), round(approved * n) - round(n_young * young_approved)
    return {"N": n, "Approved": x_young + x_old,
            "Groups": {"Age": {"Privileged": [n_old, x_old], "Unprivileged": [n_young, x_young], "Missing": 0}}}


def operational(errors_b: int = 1, p99_b: float = 41.0, invocations: int = 4000) -> dict:
    champion = {"Invocations": invocations, "Errors": 2, "LatencySamples": invocations, "LatencyP99Ms": 40.0,
                "LatencyP99LowerMs": 38.0, "LatencyP99UpperMs": 42.0}
    challenger = {"Invocations": invocations, "Errors": errors_b, "LatencySamples": invocations, "LatencyP99Ms": p99_b,
                  "LatencyP99LowerMs": p99_b - 2.0, "LatencyP99UpperMs": p99_b + 2.0}
    return {"champion": champion, "challenger": challenger}


def now(looks: int, cutoffs: list | None = None, challenger: dict | None = None, **extra) -> dict:
    cutoffs = (cutoffs or CUTOFFS)[:looks]
    decisions = [{"champion": summary(), "challenger": challenger or summary()} for _ in cutoffs]
    return {"LookCutoffs": cutoffs, "MaxLooks": 10, "Attributes": AGE, "Decisions": decisions,
            "Operational": operational(), **extra}


def test_clearly_better_challenger_is_promoted_with_evidence():
    # GIVEN a challenger with much sharper predictions on the same labelled requests, at the third look
    records = scored(PLAN.n_max, 0.30, 0.05)
    # WHEN the Lambda decides
    out = decide(PLAN.to_dict(), records, RAILS, now(3))
    # THEN it promotes, and the evidence shows per look n, the statistic, the boundary, the guardrails and why
    assert out["Decision"] == "promote"
    evidence = out["Evidence"]
    stop = evidence["Looks"][evidence["StoppedAtLook"] - 1]
    assert stop["Crossed"] and abs(stop["Statistic"]) >= stop["Boundary"]
    assert stop["ConfidenceInterval"][1] < 0  # the challenger's Brier score is lower
    assert len(evidence["Looks"]) == 3 and evidence["Look"]["Look"] == 3
    assert stop["LabelledServedByChampion"] + stop["LabelledServedByChallenger"] == stop["Pairs"]
    assert set(stop["Guardrails"]) == {"ApprovalRate", "DisparateImpact:Age"}  # no metrics of past looks given
    assert {g["Name"]: g["State"] for g in evidence["Guardrails"]} == {
        "ErrorRate": "within", "ApprovalRate": "within", "DisparateImpact:Age": "within", "LatencyP99": "within"}
    assert evidence["EndReason"].startswith("boundary crossed")
    assert evidence["Reported"]["AUCDifference"] > 0
    assert "crossed the boundary" in out["Reasons"][0]


def test_identical_models_keep_the_champion_at_n_max_without_promotion():
    # GIVEN two equally good models, all five looks up to n_max
    records = scored(PLAN.n_max, 0.2, 0.2, seed=3)
    out = decide(PLAN, records, RAILS, now(5))
    # THEN the champion stays: no look crossed, the test ended at n_max
    assert out["Decision"] == "keep_champion"
    assert out["Evidence"]["TestDecision"] == "champion_wins_or_equal"
    assert out["Evidence"]["StoppedAtLook"] == 5
    assert "n_max reached" in out["Evidence"]["EndReason"]
    assert not any(look["Crossed"] for look in out["Evidence"]["Looks"])


def test_a_challenger_that_declines_more_is_judged_on_the_same_labelled_requests():
    # GIVEN the same scores for both models (no better), but the challenger declines everyone above 0.3, so on the
    # requests it decided only its low-risk approvals got a label
    rng = np.random.default_rng(5)
    n = 3 * PLAN.n_max
    defaults = rng.random(n) < 0.2
    score = np.clip(np.where(defaults, 0.55, 0.2) + rng.normal(0.0, 0.15, n), 0.0, 1.0)
    served = np.where(np.arange(n) % 2 == 0, "champion", "challenger")
    labelled = np.where(served == "champion", score < 0.5, score < 0.3)
    records = {m: [{"InferenceId": f"r{i}", "Prediction": float(score[i]), "Label": int(defaults[i]), "AvailableAt": int(i),
                    "ServedBy": str(served[i])} for i in np.flatnonzero(labelled)] for m in ("champion", "challenger")}
    cutoffs = [n * k // 5 for k in range(1, 6)]
    # WHEN the test runs to its end
    out = decide(PLAN, records, RAILS, now(5, cutoffs))
    # THEN no promotion: the paired effect is exactly 0, although each model's Brier score on its own decisions
    # favours the challenger (the comparison a split test must not make)
    reported = out["Evidence"]["Reported"]
    assert reported["ChallengerOnOwnDecisions"]["BrierScore"] < reported["ChampionOnOwnDecisions"]["BrierScore"] - 0.02
    assert out["Decision"] == "keep_champion"
    assert out["Evidence"]["Look"]["Effect"] == 0.0


def test_labelled_requests_with_one_models_score_are_reported_and_left_out():
    # GIVEN labels on 400 requests the challenger never scored (a failed replay), besides the pairs
    records = scored(PLAN.n_max, 0.2, 0.2, seed=4)
    records["champion"] += [{**r, "InferenceId": f"extra-{i}", "Prediction": 0.99 * r["Label"]}
                            for i, r in enumerate(records["champion"][:400])]
    out = decide(PLAN, records, RAILS, now(2))
    # THEN the test counts pairs only, and the reasons say what was left out
    assert out["Evidence"]["Pairing"] == {"Pairs": CUTOFFS[1], "ChampionScoreOnly": 400, "ChallengerScoreOnly": 0}
    assert any("one model's score only" in r for r in out["Reasons"])


def test_a_look_that_sees_no_data_continues_and_spends_no_alpha():
    # GIVEN a first look before any label arrived (labels come later than the look timer), then three looks
    records = scored(PLAN.n_max, 0.2, 0.2, seed=6)
    empty_first = [0.5] + CUTOFFS[:3]
    # WHEN the first look is decided
    first = decide(PLAN, records, RAILS, now(1, empty_first))
    # THEN it continues, says why, shows no boundary, and later boundaries are those of the looks with data
    assert first["Decision"] == "continue"
    assert first["Evidence"]["Look"]["Pairs"] == 0 and first["Evidence"]["Look"]["Boundary"] is None
    assert "no labelled request scored by both models yet" in first["Reasons"][0]
    later = decide(PLAN, records, RAILS, now(4, empty_first))
    without = decide(PLAN, records, RAILS, now(3))
    assert [x["Boundary"] for x in later["Evidence"]["Looks"][1:]] == [x["Boundary"] for x in without["Evidence"]["Looks"]]


def test_error_rate_guardrail_aborts_on_server_errors_even_when_the_challenger_scores_better():
    # GIVEN a better challenger whose 5xx rate is 1.5% against the champion's 0.05%
    records = scored(PLAN.n_max, 0.30, 0.05)
    out = decide(PLAN, records, RAILS, now(3, Operational=operational(errors_b=60)))
    # THEN abort, with the guardrail as the first reason and in the evidence
    assert out["Decision"] == "abort"
    assert "error rate" in out["Reasons"][0]
    states = {g["Name"]: g for g in out["Evidence"]["Guardrails"]}
    assert states["ErrorRate"]["State"] == "breached" and states["ErrorRate"]["Interval"][0] > 0.005
    assert out["Evidence"]["EndReason"].startswith("guardrail breached")


def test_one_early_error_cannot_trip_the_error_rate_guardrail():
    # GIVEN the first look: 150 invocations each, one challenger error (below the minimum count), then 400 with 2
    records = scored(400, 0.2, 0.2)
    small = operational(errors_b=1, invocations=150)
    small["champion"]["Errors"] = 0
    first = decide(PLAN, records, RAILS, now(1, [100], Operational=small))
    bigger = operational(errors_b=2, invocations=400)
    bigger["champion"]["Errors"] = 0
    second = decide(PLAN, records, RAILS, now(2, [100, 200], Operational=bigger))
    # THEN the guardrail waits, then finds no evidence of harm
    assert {g["Name"]: g["State"] for g in first["Evidence"]["Guardrails"]}["ErrorRate"] == "waiting"
    assert {g["Name"]: g["State"] for g in second["Evidence"]["Guardrails"]}["ErrorRate"] == "within"
    assert second["Decision"] == "continue"


def test_approval_rate_guardrail_aborts_when_the_change_is_outside_the_band():
    # GIVEN a challenger approving 55% against the champion's 70%
    out = decide(PLAN, scored(400, 0.2, 0.2), RAILS, now(1, [200], challenger=summary(approved=0.55)))
    # THEN abort naming the approval rate
    assert out["Decision"] == "abort"
    assert "approves 55.0%" in out["Reasons"][0] and "outside the allowed band" in out["Reasons"][0]


def test_disparate_impact_guardrail_aborts_on_the_challengers_decisions():
    # GIVEN a challenger approving 35% of applicants under 25 and 76% of the others (DI 0.46)
    out = decide(PLAN, scored(400, 0.2, 0.2), RAILS, now(1, [200], challenger=summary(young_approved=0.35)))
    # THEN abort naming the attribute and the band
    assert out["Decision"] == "abort"
    assert "disparate impact of Age" in out["Reasons"][0] and "[0.8, 1.25]" in out["Reasons"][0]


def test_disparate_impact_waits_for_the_minimum_count_per_group():
    # GIVEN too few young applicants among the challenger's decisions so far
    few = summary(n=600, young=0.1, young_approved=0.2)
    out = decide(PLAN, scored(400, 0.2, 0.2), RAILS, now(1, [200], challenger=few))
    # THEN the guardrail waits (no abort on 60 applicants)
    assert {g["Name"]: g["State"] for g in out["Evidence"]["Guardrails"]}["DisparateImpact:Age"] == "waiting"
    assert out["Decision"] == "continue"


def test_latency_guardrail_aborts_when_the_p99_lower_bound_exceeds_the_champions_upper_bound_plus_margin():
    out = decide(PLAN, scored(400, 0.2, 0.2), RAILS, now(1, [200], Operational=operational(p99_b=100.0)))
    assert out["Decision"] == "abort"
    assert "p99 model latency" in out["Reasons"][0]


def test_a_winning_challenger_waits_for_its_guardrails_and_is_not_promoted_unchecked_at_the_last_look():
    # GIVEN a clearly better challenger whose decisions are too few yet for the fairness guardrail
    records = scored(PLAN.n_max, 0.30, 0.05)
    few = summary(n=600, young=0.1)
    waiting = decide(PLAN, records, RAILS, now(3, challenger=few))
    final = decide(PLAN, records, RAILS, now(3, challenger=few, Final=True))
    # THEN it keeps looking, and at the last look the champion stays
    assert waiting["Decision"] == "continue" and "promotion waits" in waiting["Reasons"][-1]
    assert final["Decision"] == "keep_champion" and "could not be checked" in final["Reasons"][-1]


def test_rerunning_the_same_look_gives_the_identical_result_even_after_more_data_arrived():
    records = scored(PLAN.n_max, 0.2, 0.17, seed=7)
    first = decide(PLAN.to_dict(), records, RAILS, now(2))
    later = {k: random.Random(0).sample(v, len(v)) + [{**r, "InferenceId": f"late-{i}", "AvailableAt": CUTOFFS[1] + 1_000}
                                                      for i, r in enumerate(v[:50])] for k, v in records.items()}
    assert decide(PLAN.to_dict(), later, RAILS, now(2)) == first
    assert first["Decision"] == "continue"


def test_output_is_plain_json_for_the_state_machine():
    out = decide(PLAN, scored(PLAN.n_max, 0.30, 0.05), RAILS, now(4))
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert set(out) == {"Decision", "Reasons", "Evidence"}


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"LookCutoffs": []}, "LookCutoffs"),
        ({"LookCutoffs": [200, 100]}, "strictly increasing"),
        ({"Operational": None}, "Operational"),
        ({"Decisions": []}, "Decisions"),
        ({"MaxLooks": 0}, "MaxLooks"),
    ],
)
def test_bad_look_information_is_rejected_with_the_field_named(info, message):
    with pytest.raises(ValueError, match=message):
        decide(PLAN, scored(100, 0.2, 0.2), RAILS, {**now(1, [100]), **info})


def test_unknown_guardrail_key_is_rejected():
    # GIVEN a typo in the guardrail configuration THEN it is not silently ignored
    with pytest.raises(ValueError, match="MinPair"):
        decide(PLAN, scored(100, 0.2, 0.2), {"MinPair": 10}, now(1, [100]))
