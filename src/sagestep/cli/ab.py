"""`sagestep ab ...`: A/B test statistics (the same code the ab_winner Lambda runs)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from sagestep.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    ab = subparsers.add_parser("ab", help="A/B test statistics")
    commands = ab.add_subparsers(dest="ab_command", required=True)
    _register_simulate(commands)
    _register_compare(commands)


def _register_simulate(commands: argparse._SubParsersAction) -> None:
    sim = commands.add_parser(
        "simulate",
        help="false-positive rate and power of an A/B test input as the ABTestStateMachine runs it; one JSON line",
        description="Simulate the test an ABTestStateMachine input starts, on the machine's own look policy: a look "
                    "every LookIntervalSeconds up to MaxLooks (the last one final), each seeing the labelled requests "
                    "scored by both models whose label has arrived and whose capture is older than the merge delay. "
                    "The plan, the boundaries and the stopping rules are the ab_winner Lambda's code. Prints one "
                    "JSON line.",
    )
    sim.add_argument("--input", type=Path, required=True,
                     help="the A/B execution input (e.g. events/ab_test_state_machine_split.json); the machine's "
                          "defaults fill what it leaves out")
    sim.add_argument("--rate", type=float, required=True, help="requests per second reaching the endpoint")
    sim.add_argument("--label-delay", required=True,
                     help="time from a request to its label: seconds or an ISO-8601 duration (e.g. PT2H)")
    sim.add_argument("--approval-rate", type=float, default=0.7,
                     help="the champion's approval rate: only approved applicants get a label (default 0.7)")
    sim.add_argument("--challenger-approval-rate", type=float, default=None,
                     help="the challenger's approval rate (default: the champion's)")
    sim.add_argument("--share", type=float, default=None, help="override the input's TrafficShare")
    sim.add_argument("--mode", choices=("split", "shadow"), default=None, help="override the input's Mode")
    sim.add_argument("--look-interval", type=float, default=None, help="override LookIntervalSeconds")
    sim.add_argument("--max-looks", type=int, default=None, help="override MaxLooks")
    sim.add_argument("--effect", type=float, default=None,
                     help="true mean loss difference challenger − champion for the power run "
                          "(default: the input's MinimumDetectableEffect)")
    sim.add_argument("--reps", type=int, default=4000, help="simulated tests per hypothesis (default 4000)")
    sim.add_argument("--arrival-draws", type=int, default=20,
                     help="realisations of the Poisson arrivals, each shared by reps/draws tests (default 20)")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(func=run_simulate)


def _register_compare(commands: argparse._SubParsersAction) -> None:
    sim = commands.add_parser(
        "compare",
        help="design-level Monte-Carlo at evenly spaced looks: sequential vs naive, split vs paired; one JSON line",
        description="Simulate a design under no effect and under --effect at evenly spaced looks with equal "
                    "traffic (the textbook setting, to compare rules and designs); prints one JSON line. For the "
                    "state machine's own schedule use `sagestep ab simulate`.",
    )
    sim.add_argument("--base-rate", type=float, required=True, help="champion's rate of the 0/1 loss, e.g. 0.05")
    sim.add_argument("--effect", type=float, required=True, help="challenger − champion, e.g. -0.005 for 5%% → 4.5%%")
    sim.add_argument("--looks", type=int, required=True, help="equally spaced looks (1 up to the design's maximum)")
    sim.add_argument("--reps", type=int, required=True, help="simulated tests per hypothesis")
    sim.add_argument("--alpha", type=float, default=0.05, help="two-sided type I error (default 0.05)")
    sim.add_argument("--power", type=float, default=0.8, help="target power at the design effect (default 0.8)")
    sim.add_argument("--mode", choices=("split", "paired"), default="split",
                     help="split: independent arms; paired: both models scored on the same requests")
    sim.add_argument("--rule", choices=("sequential", "naive"), default="sequential",
                     help="naive: fixed-horizon z test at every look, shown as a contrast")
    sim.add_argument("--outcome", choices=("binary", "continuous"), default="binary",
                     help="continuous: normal (regression-like) losses with the binary outcome's mean and variance")
    sim.add_argument("--correlation", type=float, default=0.9,
                     help="paired mode: correlation of the two models' losses on a request (default 0.9)")
    sim.add_argument("--design-effect", type=float, default=None,
                     help="effect the plan is powered for (default: --effect; required when --effect is 0)")
    sim.add_argument("--n-per-arm", type=int, default=None, help="use this n_max instead of the computed one")
    sim.add_argument("--spending", choices=("obrien_fleming", "power"), default="obrien_fleming",
                     help="alpha spending function (default obrien_fleming)")
    sim.add_argument("--rho", type=float, default=3.0, help="exponent of power spending α·t^ρ (default 3)")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(func=run_compare)


def _seconds(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        from sagestep.monitoring.merge import MergeInputError, parse_iso_duration

        try:
            value = parse_iso_duration(text).total_seconds()
        except MergeInputError:
            raise UserError(f"{flag} must be seconds or an ISO-8601 duration such as PT2H, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{flag} must not be negative, got {text!r}")
    return value


def _read_input(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; pass an A/B execution input (JSON)") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}); fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: an A/B execution input is a JSON object")
    return data


def run_simulate(args: argparse.Namespace) -> int:
    from sagestep.abtest import inputs
    from sagestep.abtest.simulate import Schedule, simulate_schedule

    overrides = {"TrafficShare": args.share, "Mode": args.mode, "LookIntervalSeconds": args.look_interval,
                 "MaxLooks": args.max_looks}
    spec = inputs.settings({**_read_input(args.input), **{k: v for k, v in overrides.items() if v is not None}})
    label_delay = _seconds(args.label_delay, "--label-delay")
    merge_delay = -_seconds_signed(str(spec["MergeEndOffset"]), f"{args.input}: MergeEndOffset")
    if args.reps < 2 or args.arrival_draws < 1 or args.arrival_draws > args.reps:
        raise UserError("--reps must be at least 2 and --arrival-draws in 1..reps")
    if not args.rate > 0:
        raise UserError(f"--rate must be a number of requests per second greater than 0, got {args.rate:g}")
    try:
        design = inputs.design(spec, None)
        schedule = Schedule(
            look_interval=float(spec["LookIntervalSeconds"]), max_looks=int(spec["MaxLooks"]), rate=args.rate,
            share=design.share, traffic=design.traffic, label_delay=label_delay, merge_delay=max(merge_delay, 0.0),
            approval_rate=args.approval_rate,
            challenger_approval_rate=args.approval_rate if args.challenger_approval_rate is None
            else args.challenger_approval_rate,
        )
        result = simulate_schedule(design.plan, schedule, min_pairs=design.guardrails.min_pairs, reps=args.reps,
                                   arrival_draws=args.arrival_draws, seed=args.seed, effect=args.effect)
    except ValueError as exc:  # ABInputError and impossible schedules
        raise UserError(f"{args.input}: {exc}") from None
    result.update(input=str(args.input), traffic=schedule.traffic, share=schedule.share, rate=schedule.rate,
                  label_delay_seconds=label_delay, merge_delay_seconds=schedule.merge_delay,
                  look_interval_seconds=schedule.look_interval)
    print(json.dumps(result, allow_nan=False))
    return 0


def _seconds_signed(text: str, where: str) -> float:
    from sagestep.monitoring.merge import MergeInputError, parse_iso_duration

    try:
        return parse_iso_duration(text).total_seconds()
    except MergeInputError as exc:
        raise UserError(f"{where}: {exc}") from None


def _validate_compare(args: argparse.Namespace) -> None:
    from sagestep.abtest.design import MAX_LOOKS

    checks = [
        (0.0 < args.base_rate < 1.0, f"--base-rate must be in (0, 1), got {args.base_rate}"),
        (math.isfinite(args.effect), f"--effect must be a number, got {args.effect}"),
        (0.0 < args.base_rate + args.effect < 1.0,
         f"--base-rate + --effect must be in (0, 1), got {args.base_rate + args.effect:g}"),
        (1 <= args.looks <= MAX_LOOKS, f"--looks must be in 1..{MAX_LOOKS}, got {args.looks}"),
        (args.reps >= 2, f"--reps must be at least 2, got {args.reps}"),
        (0.0 < args.alpha < 0.5, f"--alpha must be in (0, 0.5), got {args.alpha}"),
        (0.0 < args.power < 1.0, f"--power must be in (0, 1), got {args.power}"),
        (-1.0 <= args.correlation <= 1.0, f"--correlation must be in [-1, 1], got {args.correlation}"),
        (args.effect != 0.0 or args.design_effect not in (None, 0.0),
         "--effect is 0: give --design-effect, the effect the plan is powered for (e.g. -0.005)"),
        (args.n_per_arm is None or args.n_per_arm >= args.looks, "--n-per-arm must be at least --looks"),
        (args.rho > 0.0, f"--rho must be positive, got {args.rho}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def run_compare(args: argparse.Namespace) -> int:
    from sagestep.abtest.simulate import simulate

    _validate_compare(args)
    try:
        result = simulate(
            args.base_rate, args.effect, args.looks, args.reps, args.alpha, args.power, args.mode, args.seed,
            rule=args.rule, outcome=args.outcome, correlation=args.correlation, design_effect=args.design_effect,
            n_per_arm=args.n_per_arm, spending=args.spending, rho=args.rho,
        )
    except ValueError as exc:  # e.g. a correlation impossible for these rates
        raise UserError(str(exc)) from None
    print(json.dumps(result, allow_nan=False))
    return 0
