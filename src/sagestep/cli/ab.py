"""`sagestep ab ...`: A/B test statistics (the same code the ab_winner Lambda runs)."""

from __future__ import annotations

import argparse
import json
import math

from sagestep.cli import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    ab = subparsers.add_parser("ab", help="A/B test statistics")
    commands = ab.add_subparsers(dest="ab_command", required=True)
    sim = commands.add_parser(
        "simulate",
        help="Monte-Carlo false-positive rate and power of the A/B procedure; prints one JSON line",
        description="Simulate the A/B procedure under no effect and under --effect; prints one JSON line.",
    )
    sim.add_argument("--base-rate", type=float, required=True, help="champion's rate of the 0/1 loss, e.g. 0.05")
    sim.add_argument("--effect", type=float, required=True, help="challenger − champion, e.g. -0.005 for 5%% → 4.5%%")
    sim.add_argument("--looks", type=int, required=True, help="equally spaced looks (1 up to the design's maximum)")
    sim.add_argument("--reps", type=int, required=True, help="simulated tests per hypothesis")
    sim.add_argument("--alpha", type=float, default=0.05, help="two-sided type I error (default 0.05)")
    sim.add_argument("--power", type=float, default=0.8, help="target power at the design effect (default 0.8)")
    sim.add_argument("--mode", choices=("split", "shadow"), default="split",
                     help="split: independent arms; shadow: both models score every request (paired)")
    sim.add_argument("--rule", choices=("sequential", "naive"), default="sequential",
                     help="naive: fixed-horizon z test at every look, shown as a contrast")
    sim.add_argument("--outcome", choices=("binary", "continuous"), default="binary",
                     help="continuous: normal (regression-like) losses with the binary outcome's mean and variance")
    sim.add_argument("--correlation", type=float, default=0.9,
                     help="shadow mode: correlation of the two models' losses on a request (default 0.9)")
    sim.add_argument("--design-effect", type=float, default=None,
                     help="effect the plan is powered for (default: --effect; required when --effect is 0)")
    sim.add_argument("--n-per-arm", type=int, default=None, help="use this n_max instead of the computed one")
    sim.add_argument("--spending", choices=("obrien_fleming", "power"), default="obrien_fleming",
                     help="alpha spending function (default obrien_fleming)")
    sim.add_argument("--rho", type=float, default=3.0, help="exponent of power spending α·t^ρ (default 3)")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(func=run_simulate)


def _validate(args: argparse.Namespace) -> None:
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


def run_simulate(args: argparse.Namespace) -> int:
    from sagestep.abtest.simulate import simulate

    _validate(args)
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
