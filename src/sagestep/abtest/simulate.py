"""Monte-Carlo proof of the A/B procedure, running the same plan and test code as `decide`.

Two studies:
- `simulate_schedule`: what the ABTestStateMachine does. Looks come on its timer (LookIntervalSeconds) up to
  MaxLooks (twice the planned looks by default), the last one final; each sees the labelled requests scored by both
  models whose label has arrived and whose capture is older than the merge delay, so early looks may see nothing.
  Requests arrive as a Poisson process at `rate`; labels exist only for approved applicants.
- `simulate`: design-level comparisons at evenly spaced looks (sequential vs a naive z test, split vs paired).

Only the data are simulated: per-pair (or per-arm) sums at the look sizes, drawn block by block (binomial /
multinomial / normal with chi-square sums of squares), so thousands of runs take milliseconds. They go through
sequential.Comparison and sequential.run_looks, the code `decide` runs for every look of the Lambda.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sagestep.abtest.design import Plan, plan as make_plan
from sagestep.abtest.sequential import (
    CHALLENGER_WINS,
    CHALLENGER_WORSE,
    CONTINUE,
    Comparison,
    Rule,
    Sums,
    run_looks,
)

OutcomeKind = Literal["binary", "continuous"]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _look_sizes(plan: Plan) -> np.ndarray:
    sizes = np.array([max(1, round(t * plan.n_max)) for t in plan.information_fractions], dtype=np.int64)
    sizes[-1] = plan.n_max
    return np.maximum.accumulate(sizes)


def _normal_sums(rng: np.random.Generator, blocks: np.ndarray, mean: float, sd: float, reps: int) -> Sums:
    """Cumulative Σy and Σy² of N(mean, sd²) draws in blocks, from the block mean and the block's chi-square SS
    (a block of 0 draws — a look that saw nothing new — adds nothing)."""
    shape = (reps, blocks.size)
    block_mean = rng.normal(mean, sd / np.sqrt(np.maximum(blocks, 1)), size=shape) * (blocks > 0)
    ss = sd**2 * rng.chisquare(np.maximum(blocks - 1, 1), size=shape) * (blocks > 1)
    total = blocks * block_mean
    n = np.broadcast_to(np.cumsum(blocks), shape)
    return Sums.of(n, np.cumsum(total, axis=1), np.cumsum(ss + total * block_mean, axis=1))


def _paired_binary_cells(p_a: float, p_b: float, correlation: float) -> tuple[float, float]:
    """P(d = +1) and P(d = −1) for d = y_B − y_A, 0/1 outcomes with these rates and correlation."""
    both = p_a * p_b + correlation * math.sqrt(p_a * (1 - p_a) * p_b * (1 - p_b))
    only_b, only_a = p_b - both, p_a - both
    _check(both >= 0 and only_a >= 0 and only_b >= 0 and both + only_a + only_b <= 1,
           f"correlation {correlation} is impossible for 0/1 outcomes with rates {p_a:g} and {p_b:g}")
    return only_b, only_a


def _draw(
    rng: np.random.Generator, plan: Plan, sizes: np.ndarray, reps: int, base_rate: float, effect: float,
    outcome: OutcomeKind, correlation: float,
) -> Comparison:
    blocks = np.diff(sizes, prepend=0)
    p_a, p_b = base_rate, base_rate + effect
    shape = (reps, blocks.size)
    n = np.broadcast_to(sizes, shape)
    if plan.mode == "split" and outcome == "binary":
        a = np.cumsum(rng.binomial(blocks, p_a, size=shape), axis=1)
        b = np.cumsum(rng.binomial(blocks, p_b, size=shape), axis=1)
        return Comparison.split(Sums.of(n, a, a), Sums.of(n, b, b))
    sd_a, sd_b = math.sqrt(p_a * (1 - p_a)), math.sqrt(p_b * (1 - p_b))
    if plan.mode == "split":
        return Comparison.split(_normal_sums(rng, blocks, p_a, sd_a, reps), _normal_sums(rng, blocks, p_b, sd_b, reps))
    if outcome == "binary":
        plus, minus = _paired_binary_cells(p_a, p_b, correlation)
        counts = rng.multinomial(np.broadcast_to(blocks, shape), [plus, minus, 1.0 - plus - minus])
        up, down = np.cumsum(counts[..., 0], axis=1), np.cumsum(counts[..., 1], axis=1)
        return Comparison.paired(Sums.of(n, up - down, up + down))
    sd_d = math.sqrt(max(sd_a**2 + sd_b**2 - 2 * correlation * sd_a * sd_b, 0.0))
    return Comparison.paired(_normal_sums(rng, blocks, effect, sd_d, reps))


def _rate(hits: np.ndarray) -> tuple[float, float]:
    p = float(hits.mean())
    return p, math.sqrt(p * (1 - p) / hits.size)


def simulate(
    base_rate: float,
    effect: float,
    looks: int = 5,
    reps: int = 2000,
    alpha: float = 0.05,
    power: float = 0.8,
    mode: str = "split",
    seed: int = 0,
    *,
    rule: Rule = "sequential",
    outcome: OutcomeKind = "binary",
    correlation: float = 0.9,
    design_effect: float | None = None,
    n_per_arm: int | None = None,
    spending: str = "obrien_fleming",
    rho: float = 3.0,
) -> dict[str, Any]:
    """Run the procedure `reps` times under no effect and (when effect ≠ 0) under `effect`.

    base_rate: champion's rate of a 0/1 loss (e.g. 0.05); effect: challenger − champion (e.g. −0.005).
    The plan is powered for `design_effect` (default: effect). outcome "continuous" draws normal losses with
    the same means and variances ("regression-like"); in paired mode the two models' losses on a request have
    `correlation`. rule "naive": a z test at level α at every look of the fixed-horizon design, as a contrast.
    `n_per_arm` replaces the computed n_max (to compare designs at the same n).

    false_positive_rate: P(any boundary crossed | no effect), two-sided; false_promotion_rate: P(promotion | no
    effect); power: P(crossing in the direction of `effect` | effect); mean_n_per_arm: requests per arm (pairs
    in paired mode) when the test ends, under `effect` (under no effect if effect = 0).
    """
    _check(0.0 < base_rate < 1.0, f"base_rate must be in (0, 1), got {base_rate}")
    _check(0.0 < base_rate + effect < 1.0, f"base_rate + effect must be in (0, 1), got {base_rate + effect}")
    _check(isinstance(reps, int) and reps >= 1, f"reps must be a positive integer, got {reps}")
    _check(outcome in ("binary", "continuous"), f"outcome must be 'binary' or 'continuous', got {outcome!r}")
    _check(rule in ("sequential", "naive"), f"rule must be 'sequential' or 'naive', got {rule!r}")
    design = effect if design_effect is None else design_effect
    _check(design != 0.0, "effect is 0: give design_effect, the effect the plan is powered for")

    common: dict[str, Any] = dict(alpha=alpha, power=power, looks=looks, mode=mode, spending=spending, rho=rho)
    if outcome == "binary":
        if mode == "paired":
            _paired_binary_cells(base_rate, base_rate + design, correlation)
        spec: tuple[str, float] = ("default_rate", base_rate)
        common["correlation"] = correlation if mode == "paired" else 0.0
    else:
        v_a, v_b = base_rate * (1 - base_rate), (base_rate + design) * (1 - base_rate - design)
        paired = v_a + v_b - 2 * correlation * math.sqrt(v_a * v_b)
        spec = ("absolute_error", v_a + v_b if mode == "split" else paired)
    the_plan = make_plan(*spec, design, **common, n_max=n_per_arm)
    if rule == "naive" and n_per_arm is None:
        the_plan = make_plan(*spec, design, **common, n_max=the_plan.n_fixed)
    sizes = _look_sizes(the_plan)

    result: dict[str, Any] = {
        "rule": rule, "mode": mode, "outcome": outcome, "base_rate": base_rate, "effect": effect,
        "design_effect": design, "alpha": alpha, "target_power": power, "looks": looks, "reps": reps, "seed": seed,
        "correlation": correlation if mode == "paired" else None, "spending": spending,
        "n_fixed": the_plan.n_fixed, "n_max": the_plan.n_max, "inflation": the_plan.inflation,
        "look_sizes": sizes.tolist(),
    }
    truths = [0.0] if effect == 0.0 else [0.0, effect]
    for i, truth in enumerate(truths):
        rng = np.random.default_rng([seed, i])
        comparison = _draw(rng, the_plan, sizes, reps, base_rate, truth, outcome, correlation)
        out = run_looks(the_plan, comparison, rule=rule)
        assert not np.any(out.decision == CONTINUE), "every run ends at n_max"
        n_at_stop = sizes[out.stop_index]
        if truth == 0.0:
            result["boundaries"] = [float(c) for c in out.boundaries]
            result["false_positive_rate"], result["false_positive_rate_se"] = _rate(
                (out.decision == CHALLENGER_WINS) | (out.decision == CHALLENGER_WORSE))
            result["false_promotion_rate"], _ = _rate(out.decision == CHALLENGER_WINS)
            result["mean_n_per_arm_no_effect"] = float(n_at_stop.mean())
        else:
            improves = (truth < 0) == the_plan.lower_is_better
            right_direction = CHALLENGER_WINS if improves else CHALLENGER_WORSE
            result["power"], result["power_se"] = _rate(out.decision == right_direction)
        result["mean_n_per_arm"] = float(n_at_stop.mean())
        result["mean_n_per_arm_se"] = float(n_at_stop.std(ddof=1) / math.sqrt(reps)) if reps > 1 else None
    result.setdefault("power", None)
    result.setdefault("power_se", None)
    return result


# -- the state machine's look policy ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """How the ABTestStateMachine looks, and how labelled requests scored by both models reach its looks.

    Look k happens `look_interval` seconds after look k − 1 (the first one interval after the test starts), up
    to `max_looks`, the last one final. A request made at time u is seen at a look at time c when its label has
    arrived (u + label_delay ≤ c) and its capture is older than the merge delay (u ≤ c − merge_delay). Requests
    arrive as a Poisson process at `rate` per second; labels exist only for approved applicants. In split traffic
    every labelled request is scored by both models (the serving one decides, the other is replayed); in shadow
    traffic only the `share` copied to the shadow challenger is.
    """

    look_interval: float
    max_looks: int
    rate: float
    share: float
    traffic: str  # "split" | "shadow"
    label_delay: float
    merge_delay: float
    approval_rate: float  # the champion's
    challenger_approval_rate: float

    def __post_init__(self) -> None:
        _check(self.look_interval > 0, f"look interval must be positive, got {self.look_interval}")
        _check(isinstance(self.max_looks, int) and 1 <= self.max_looks <= 200,
               f"max looks must be an integer in 1..200, got {self.max_looks}")
        _check(self.rate > 0, f"rate must be positive, got {self.rate}")
        _check(0.0 < self.share < 1.0 or (self.traffic == "shadow" and self.share == 1.0),
               f"share must be in (0, 1), got {self.share}")
        _check(self.traffic in ("split", "shadow"), f"traffic must be 'split' or 'shadow', got {self.traffic!r}")
        _check(self.label_delay >= 0 and self.merge_delay >= 0, "label and merge delays must not be negative")
        for rate in (self.approval_rate, self.challenger_approval_rate):
            _check(0.0 < rate <= 1.0, f"approval rates must be in (0, 1], got {rate}")

    @property
    def pair_rate(self) -> float:
        """Labelled requests scored by both models, per second."""
        if self.traffic == "shadow":
            return self.rate * self.share * self.approval_rate
        return self.rate * ((1.0 - self.share) * self.approval_rate + self.share * self.challenger_approval_rate)

    def expected_pairs(self) -> np.ndarray:
        """Expected labelled pairs seen by each look 1..max_looks."""
        looks = np.arange(1, self.max_looks + 1) * self.look_interval
        return np.maximum(looks - max(self.label_delay, self.merge_delay), 0.0) * self.pair_rate

    def draw_pairs(self, rng: np.random.Generator) -> np.ndarray:
        """One realisation of the cumulative pair counts at the looks (Poisson arrivals)."""
        return np.cumsum(rng.poisson(np.diff(self.expected_pairs(), prepend=0.0)))


def simulate_schedule(
    plan: Plan,
    schedule: Schedule,
    *,
    min_pairs: int,
    reps: int = 4000,
    arrival_draws: int = 20,
    seed: int = 0,
    effect: float | None = None,
) -> dict[str, Any]:
    """False-positive rate and power of the test as the state machine runs it.

    `arrival_draws` realisations of the arrival process are each shared by reps / arrival_draws simulated tests
    (the boundaries depend on the information reached, so a shared schedule keeps the runs vectorised). Paired
    loss differences are normal with the plan's variance and mean 0 (no effect) or `effect` (default: the plan's
    minimum detectable effect). Every run goes through sequential.run_looks with the machine's rules: the test
    stops at the first look that crosses its boundary (not before `min_pairs` pairs), at the first look that
    reaches n_max, or at look max_looks, which spends what is left of α.
    """
    _check(isinstance(reps, int) and reps >= 2, f"reps must be an integer ≥ 2, got {reps}")
    _check(isinstance(arrival_draws, int) and 1 <= arrival_draws <= reps,
           f"arrival_draws must be an integer in 1..reps, got {arrival_draws}")
    _check(plan.mode == "paired", f"the state machine's test is paired; got a {plan.mode!r} plan")
    truth_effect = plan.minimum_detectable_effect if effect is None else float(effect)
    sd = math.sqrt(plan.variance)
    per_draw = np.diff(np.linspace(0, reps, arrival_draws + 1).round().astype(int))
    arrivals = np.random.default_rng([seed, 0])
    schedules = [schedule.draw_pairs(arrivals) for _ in range(arrival_draws)]
    result: dict[str, Any] = {
        "reps": reps, "arrival_draws": arrival_draws, "seed": seed, "n_max": plan.n_max, "looks": plan.looks,
        "max_looks": schedule.max_looks, "alpha": plan.alpha, "target_power": plan.power,
        "design_effect": plan.minimum_detectable_effect, "effect": truth_effect, "min_pairs": min_pairs,
        "pairs_per_second": schedule.pair_rate, "expected_pairs_at_looks": schedule.expected_pairs().round(1).tolist(),
        "first_look_empty": float(np.mean([s[0] == 0 for s in schedules])),
    }
    for index, truth in enumerate((0.0, truth_effect)):
        rng = np.random.default_rng([seed, 1 + index])
        decisions, stops, pairs_at_stop = [], [], []
        for counts, runs in zip(schedules, per_draw):
            if runs == 0:
                continue
            blocks = np.diff(counts, prepend=0)
            comparison = Comparison.paired(_normal_sums(rng, blocks, truth, sd, int(runs)))
            out = run_looks(plan, comparison, final=True, min_n_to_stop=min_pairs)
            decisions.append(out.decision)
            stops.append(out.stop_index)
            pairs_at_stop.append(counts[out.stop_index])
        decision, stop, n_stop = np.concatenate(decisions), np.concatenate(stops), np.concatenate(pairs_at_stop)
        reached = np.concatenate([np.full(r, (c >= plan.n_max).any()) for c, r in zip(schedules, per_draw) if r])
        if truth == 0.0:
            result["false_positive_rate"], result["false_positive_rate_se"] = _rate(
                (decision == CHALLENGER_WINS) | (decision == CHALLENGER_WORSE))
            result["false_promotion_rate"], _ = _rate(decision == CHALLENGER_WINS)
        else:
            improves = (truth < 0) == plan.lower_is_better
            result["power"], result["power_se"] = _rate(decision == (CHALLENGER_WINS if improves else CHALLENGER_WORSE))
            result["mean_pairs_at_stop"] = float(n_stop.mean())
            result["mean_looks"] = float((stop + 1).mean())
            result["n_max_reached"] = float(reached.mean())
            result["ended_at_max_looks_short_of_n_max"] = float(((stop == schedule.max_looks - 1) & ~reached).mean())
    return result
