"""The proof: `sagestep ab simulate` runs the ab_winner Lambda's plan and test on the ABTestStateMachine's own look
policy and controls false positives and keeps power; `sagestep ab compare` shows why (naive rule, split vs paired)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sagestep import cli
from sagestep.abtest import decide, inputs, metrics
from sagestep.abtest.sequential import DECISIONS, Comparison, run_looks
from sagestep.abtest.simulate import Schedule

ALPHA, TARGET_POWER = 0.05, 0.8
# The state machine's defaults (hourly looks, Looks 5, MaxLooks 10, merge delay 5 min) and a design of
# 6,435 labelled pairs: the Brier score 0.01 lower, σ_d² = 0.08.
MACHINE_INPUT = {"ChallengerModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/2",
                 "Metric": "brier", "Variance": 0.08, "MinimumDetectableEffect": -0.01}
# Requests per second that reach n_max around the planned looks: split (every labelled request is paired) and
# shadow (only the share copied to the challenger is).
RATE = {"split": 0.6, "shadow": 5.5}


@pytest.fixture
def sagestep_ab(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run `sagestep ab ...` through the CLI entry; return (exit code, stdout lines, stderr)."""
    # Only the `ab` family: the other command families are built separately and are not under test here.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["ab"])

    def run(*args: str) -> tuple[int, list[str], str]:
        code = cli.main(["ab", *args])
        out = capsys.readouterr()
        return code, out.out.splitlines(), out.err

    return run


def one_json_line(sagestep_ab, *args: str) -> dict:
    code, lines, err = sagestep_ab(*args)
    assert code == 0, err
    assert len(lines) == 1, "exactly one JSON line"
    return json.loads(lines[0])


@pytest.fixture
def machine_input(tmp_path):
    path = tmp_path / "ab_input.json"
    path.write_text(json.dumps(MACHINE_INPUT))
    return path


def test_ab_commands_are_registered_in_the_cli():
    assert "ab" in cli.COMMAND_MODULES


@pytest.mark.parametrize("label_delay", ["0", "PT2H"], ids=["labels-within-merge-delay", "labels-after-2h"])
@pytest.mark.parametrize("share", ["0.1", "0.5"])
@pytest.mark.parametrize("traffic", ["split", "shadow"])
def test_the_test_as_the_state_machine_runs_it_controls_false_positives_and_keeps_power(
    sagestep_ab, machine_input, traffic, share, label_delay
):
    # GIVEN the machine's look policy: hourly looks up to MaxLooks 10, 70% of applicants approved (only they get a
    # label), the given share of traffic for the challenger and labels arriving after the given delay
    # WHEN 4,000 tests are simulated under no effect and 4,000 under the design effect
    result = one_json_line(sagestep_ab, "simulate", "--input", str(machine_input), "--rate", str(RATE[traffic]),
                           "--label-delay", label_delay, "--mode", traffic, "--share", share, "--reps", "4000",
                           "--challenger-approval-rate", "0.6",
                           "--seed", "11")
    # THEN false positives stay within α + 3 SE and power within 3 SE of the target
    assert result["false_positive_rate"] <= ALPHA + 3 * result["false_positive_rate_se"]
    assert result["power"] >= TARGET_POWER - 3 * result["power_se"]
    assert result["max_looks"] == 10 and result["n_max_reached"] == 1.0
    # AND with labels two hours late the first looks saw no data at all (the test went on, spending no α)
    if label_delay == "PT2H":
        assert result["first_look_empty"] == 1.0 and result["expected_pairs_at_looks"][:2] == [0.0, 0.0]
        assert result["mean_looks"] >= 3


def test_a_schedule_too_slow_for_n_max_still_controls_false_positives_at_the_final_look(sagestep_ab, machine_input):
    # GIVEN a 10% shadow share at a rate that reaches a third of n_max by the tenth (last, overrun) look
    result = one_json_line(sagestep_ab, "simulate", "--input", str(machine_input), "--rate", "1.0",
                           "--label-delay", "PT1H", "--mode", "shadow", "--share", "0.1", "--reps", "4000")
    # THEN the final look spends what is left of α and no more, and the shortfall in power is reported
    assert result["ended_at_max_looks_short_of_n_max"] > 0.5
    assert result["false_positive_rate"] <= ALPHA + 3 * result["false_positive_rate_se"]
    assert result["power"] < TARGET_POWER


def test_the_simulation_decides_as_the_lambda_does_look_by_look():
    # GIVEN a small paired design and the machine's schedule with an empty first look
    spec = inputs.settings({**MACHINE_INPUT, "Variance": 0.004, "MinimumDetectableEffect": -0.008, "Looks": 3})
    design = inputs.design(spec, None)
    plan, min_pairs = design.plan, design.guardrails.min_pairs
    schedule = Schedule(3600, 6, 0.06, 0.5, "split", 4000, 300, 0.7, 0.7)
    rng = np.random.default_rng(4)
    counts = schedule.draw_pairs(rng)
    assert counts[0] == 0
    cutoffs = [float(c) for c in counts]
    healthy = {"N": 5000, "Approved": 3500, "Groups": {}}
    ops = {"Invocations": 5000, "Errors": 0, "LatencySamples": 5000, "LatencyP99Ms": 5.0, "LatencyP99LowerMs": 4.0,
           "LatencyP99UpperMs": 6.0}
    for run in range(12):
        # losses: champion predicts √0.5 for a non-default (Brier 0.5), the challenger √(0.5 + d)
        d = np.clip(rng.normal(plan.minimum_detectable_effect * (run % 2), math.sqrt(plan.variance), counts[-1]),
                    -0.5, 0.5)
        records = {m: [{"InferenceId": f"r{i}", "Prediction": math.sqrt(0.5 + (d[i] if m == "challenger" else 0.0)),
                        "Label": 0, "AvailableAt": i + 1, "ServedBy": "champion"} for i in range(counts[-1])]
                   for m in ("champion", "challenger")}
        # WHEN the Lambda decides look by look until the machine would stop
        for k in range(1, len(cutoffs) + 1):
            now = {"LookCutoffs": cutoffs[:k], "MaxLooks": len(cutoffs), "Final": k == len(cutoffs), "Attributes": [],
                   "Decisions": [{"champion": healthy, "challenger": healthy}] * k,
                   "Operational": {"champion": ops, "challenger": ops}}
            out = decide(plan, records, design.guardrails, now)
            if out["Decision"] != "continue":
                break
        # AND the simulation's path runs on the same losses
        losses = np.array([metrics.loss("brier", r["Prediction"], 0.0, 0.5) for r in records["challenger"]]) - 0.5
        sums = metrics.cumulative_sums(losses, np.arange(1, counts[-1] + 1, dtype=float), cutoffs)
        simulated = run_looks(plan, Comparison.paired(sums), final=True, min_n_to_stop=min_pairs)
        # THEN both stop at the same look with the same decision
        assert out["Evidence"]["StoppedAtLook"] == int(simulated.stop_index) + 1 == k
        assert out["Evidence"]["TestDecision"] == DECISIONS[int(simulated.decision)]


def test_simulating_an_input_with_a_bad_field_names_it(sagestep_ab, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**MACHINE_INPUT, "Mode": "bandit"}))
    code, lines, err = sagestep_ab("simulate", "--input", str(path), "--rate", "1", "--label-delay", "0", "--reps", "20")
    assert code == 2 and lines == [] and "Mode" in err and "Traceback" not in err


# -- design-level comparisons (evenly spaced looks, equal traffic) ---------------------------------------------
DESIGN = ("--base-rate", "0.05", "--effect", "-0.005", "--reps", "20000", "--seed", "7")


@pytest.mark.parametrize(("looks", "spending"), [("5", "obrien_fleming"), ("10", "obrien_fleming"), ("5", "power")])
def test_group_sequential_test_controls_false_positives_and_keeps_power(sagestep_ab, looks, spending):
    result = one_json_line(sagestep_ab, "compare", *DESIGN, "--looks", looks, "--spending", spending)
    assert result["false_positive_rate"] <= ALPHA + 3 * result["false_positive_rate_se"]
    assert result["power"] >= TARGET_POWER - 3 * result["power_se"]
    assert result["mean_n_per_arm"] < 0.9 * result["n_max"]
    assert result["n_max"] > 28_408


def test_naive_z_test_at_every_look_fails_the_false_positive_check(sagestep_ab):
    result = one_json_line(sagestep_ab, "compare", *DESIGN, "--looks", "5", "--rule", "naive")
    assert result["false_positive_rate"] > ALPHA + 3 * result["false_positive_rate_se"]
    assert result["n_max"] == 28_408


def test_paired_comparison_has_more_power_than_split_traffic_at_the_same_n(sagestep_ab):
    common = (*DESIGN, "--looks", "5", "--outcome", "continuous", "--correlation", "0.9")
    paired = one_json_line(sagestep_ab, "compare", *common, "--mode", "paired")
    split = one_json_line(sagestep_ab, "compare", *common, "--mode", "split", "--n-per-arm", str(paired["n_max"]))
    assert paired["power"] >= TARGET_POWER - 3 * paired["power_se"]
    assert paired["false_positive_rate"] <= ALPHA + 3 * paired["false_positive_rate_se"]
    assert paired["power"] - split["power"] > 3 * math.hypot(paired["power_se"], split["power_se"])
    assert split["power"] < 0.3


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("--base-rate", "1.5", "--effect", "-0.005"), "--base-rate"),
        (("--base-rate", "0.05", "--effect", "-0.06"), "--base-rate + --effect"),
        (("--base-rate", "0.05", "--effect", "0"), "--design-effect"),
    ],
)
def test_bad_arguments_print_one_clear_line(sagestep_ab, args, flag):
    code, lines, err = sagestep_ab("compare", *args, "--looks", "5", "--reps", "100")
    assert code == 2 and lines == []
    assert len(err.strip().splitlines()) == 1 and flag in err and "Traceback" not in err
