"""The proof: `sagestep ab simulate` (the Lambda's plan and test code) controls false positives and keeps power."""

from __future__ import annotations

import json
import math

import pytest

from sagestep import cli

ALPHA, TARGET_POWER = 0.05, 0.8


@pytest.fixture
def sagestep_ab(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run `sagestep ab simulate ...` through the CLI entry; return (exit code, stdout lines, stderr)."""
    # Only the `ab` family: the other command families are built separately and are not under test here.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["ab"])

    def run(*args: str) -> tuple[int, list[str], str]:
        code = cli.main(["ab", "simulate", *args])
        out = capsys.readouterr()
        return code, out.out.splitlines(), out.err

    return run


def simulate(sagestep_ab, *args: str) -> dict:
    code, lines, err = sagestep_ab(*args)
    assert code == 0, err
    assert len(lines) == 1, "exactly one JSON line"
    return json.loads(lines[0])


DESIGN = ("--base-rate", "0.05", "--effect", "-0.005", "--reps", "20000", "--seed", "7")


def test_ab_commands_are_registered_in_the_cli():
    # GIVEN the CLI's list of command families THEN `ab` is one of them
    assert "ab" in cli.COMMAND_MODULES


@pytest.mark.parametrize(("looks", "spending"), [("5", "obrien_fleming"), ("10", "obrien_fleming"), ("5", "power")])
def test_group_sequential_test_controls_false_positives_and_keeps_power(sagestep_ab, looks, spending):
    # GIVEN the spec's design, 5% → 4.5% at α = 0.05 and 80% power, with the planned look schedule
    # WHEN 20,000 tests are simulated under no effect and 20,000 under the design effect
    result = simulate(sagestep_ab, *DESIGN, "--looks", looks, "--spending", spending)
    # THEN false positives stay within α + 3 SE, power within 3 SE of the target, and stopping early saves requests
    assert result["false_positive_rate"] <= ALPHA + 3 * result["false_positive_rate_se"]
    assert result["power"] >= TARGET_POWER - 3 * result["power_se"]
    assert result["mean_n_per_arm"] < 0.9 * result["n_max"]
    assert result["n_max"] > 28_408


def test_naive_z_test_at_every_look_fails_the_false_positive_check(sagestep_ab):
    # GIVEN the contrast: a fixed-horizon z test at level α repeated at each of 5 looks
    result = simulate(sagestep_ab, *DESIGN, "--looks", "5", "--rule", "naive")
    # THEN its false-positive rate is far above α (about 14%)
    assert result["false_positive_rate"] > ALPHA + 3 * result["false_positive_rate_se"]
    assert result["n_max"] == 28_408


def test_shadow_mode_has_more_power_than_split_traffic_at_the_same_n(sagestep_ab):
    # GIVEN a regression-like loss whose values for the two models correlate 0.9 on the same request
    common = (*DESIGN, "--looks", "5", "--outcome", "continuous", "--correlation", "0.9")
    shadow = simulate(sagestep_ab, *common, "--mode", "shadow")
    # WHEN split traffic gets the same number of requests per arm
    split = simulate(sagestep_ab, *common, "--mode", "split", "--n-per-arm", str(shadow["n_max"]))
    # THEN pairing keeps the target power (with valid false positives) where splitting loses most of it
    assert shadow["power"] >= TARGET_POWER - 3 * shadow["power_se"]
    assert shadow["false_positive_rate"] <= ALPHA + 3 * shadow["false_positive_rate_se"]
    assert shadow["power"] - split["power"] > 3 * math.hypot(shadow["power_se"], split["power_se"])
    assert split["power"] < 0.3


def test_zero_effect_reports_the_rejection_rate_against_a_design_effect(sagestep_ab):
    # GIVEN no true effect and the design effect the plan is powered for
    result = simulate(sagestep_ab, "--base-rate", "0.05", "--effect", "0", "--design-effect", "-0.005",
                      "--looks", "5", "--reps", "5000")
    # THEN the rejection rate is the false-positive rate and there is no power to report
    assert result["power"] is None
    assert result["false_positive_rate"] <= ALPHA + 3 * result["false_positive_rate_se"]
    assert {"false_positive_rate", "power", "mean_n_per_arm", "n_max"} <= set(result)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("--base-rate", "1.5", "--effect", "-0.005"), "--base-rate"),
        (("--base-rate", "0.05", "--effect", "-0.06"), "--base-rate + --effect"),
        (("--base-rate", "0.05", "--effect", "0"), "--design-effect"),
    ],
)
def test_bad_arguments_print_one_clear_line(sagestep_ab, args, flag):
    # GIVEN an impossible input WHEN the command runs THEN it exits 2 with one line naming the flag, no traceback
    code, lines, err = sagestep_ab(*args, "--looks", "5", "--reps", "100")
    assert code == 2 and lines == []
    assert len(err.strip().splitlines()) == 1 and flag in err and "Traceback" not in err
