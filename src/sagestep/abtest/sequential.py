"""Evaluate the looks of an A/B test: Z statistics, group-sequential decision, mSPRT always-valid p-values.

Everything is vectorised over leading axes (simulated runs) with looks on the last axis, so the Lambda
(`decide`, one run) and the Monte-Carlo (`simulate`, thousands of runs) execute the same code.
Sign convention: effects are challenger − champion on a loss (lower is better unless the plan says otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from sagestep.abtest.design import Plan, boundaries

Rule = Literal["sequential", "naive"]
DECISIONS = ("continue", "challenger_wins", "challenger_worse", "champion_wins_or_equal")
CONTINUE, CHALLENGER_WINS, CHALLENGER_WORSE, CHAMPION_WINS_OR_EQUAL = range(4)


def _float_array(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float)


@dataclass(frozen=True)
class Sums:
    """Cumulative sufficient statistics of a per-request outcome at each look: count, Σy, Σy²."""

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def of(cls, n: Any, total: Any, total_sq: Any) -> Sums:
        return cls(_float_array(n), _float_array(total), _float_array(total_sq))

    def mean_and_variance(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(n > 0, self.total / n, 0.0)
            ss = np.maximum(self.total_sq - n * mean * mean, 0.0)
            var = np.where(n > 1, ss / (n - 1.0), 0.0)
        return mean, var


@dataclass(frozen=True)
class Comparison:
    """Challenger − champion at each look (last axis), for one or many runs (leading axes).

    `n` is the information in per-arm requests: the harmonic mean of the arm sizes in split mode (what an
    equal split would need for the same precision), the number of pairs in paired mode.
    """

    n_champion: np.ndarray
    n_challenger: np.ndarray
    n: np.ndarray
    effect: np.ndarray
    se: np.ndarray

    @classmethod
    def split(cls, champion: Sums, challenger: Sums) -> Comparison:
        mean_a, var_a = champion.mean_and_variance()
        mean_b, var_b = challenger.mean_and_variance()
        n_a, n_b = champion.n, challenger.n
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(np.where((n_a > 0) & (n_b > 0), var_a / n_a + var_b / n_b, 0.0))
            n = np.where((n_a > 0) & (n_b > 0), 2.0 / (1.0 / n_a + 1.0 / n_b), 0.0)
        return cls(n_a, n_b, n, mean_b - mean_a, se)

    @classmethod
    def paired(cls, differences: Sums) -> Comparison:
        mean, var = differences.mean_and_variance()
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.sqrt(np.where(differences.n > 0, var / differences.n, 0.0))
        return cls(differences.n, differences.n, differences.n, mean, se)

    def __getitem__(self, looks: slice) -> Comparison:
        return Comparison(*(getattr(self, f)[..., looks] for f in ("n_champion", "n_challenger", "n", "effect", "se")))

    @property
    def z(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.se > 0, self.effect / self.se, 0.0)


@dataclass(frozen=True)
class Outcome:
    """Result of the sequential test over looks 1..K for each run."""

    t: np.ndarray  # information fraction per look (K,)
    z: np.ndarray  # (..., K)
    boundaries: np.ndarray  # (K,), inf where the test had already ended or the look added no information
    decision: np.ndarray  # (...) index into DECISIONS
    stop_index: np.ndarray  # (...) 0-based look where the test ended, −1 while it continues
    crossed: np.ndarray  # (..., K) the look crossed its boundary and was allowed to stop
    p_value: np.ndarray  # (..., K) mSPRT always-valid p-value (running minimum over looks)


def information_fractions(plan: Plan, comparison: Comparison) -> np.ndarray:
    n = np.asarray(comparison.n, dtype=float)
    flat = n.reshape(-1, n.shape[-1])
    if flat.shape[0] > 1 and np.any(flat != flat[0]):
        raise ValueError("all simulated runs must share their look sizes")
    return flat[0] / plan.n_max


def msprt_rho2(plan: Plan) -> float:
    """ρ² of the normal mixing prior, tuned so the mSPRT is most powerful near n* = n_max."""
    log_alpha = math.log(plan.alpha)
    return (-2.0 * log_alpha + math.log(1.0 - 2.0 * log_alpha)) / plan.n_max


def msprt_p_values(plan: Plan, comparison: Comparison) -> np.ndarray:
    """Always-valid p-values: running min of 1/Λ_n over the looks, with τ² = ρ²·V̂.

    With τ² = ρ²V, nτ²/V = nρ² and n²τ²Δ̂²/(V(V + nτ²)) = z²·nρ²/(1 + nρ²), so
    ln Λ_n = ½[z²·nρ²/(1 + nρ²) − ln(1 + nρ²)].
    """
    a = comparison.n * msprt_rho2(plan)
    log_lambda = 0.5 * (comparison.z**2 * a / (1.0 + a) - np.log1p(a))
    return np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lambda)), axis=-1)


def msprt_interval(plan: Plan, effect: float, se: float, n: float) -> tuple[float, float]:
    """Always-valid (1 − α) confidence interval {δ : Λ_n(δ) < 1/α} at one look."""
    a = n * msprt_rho2(plan)
    if a <= 0 or se <= 0:
        return (-math.inf, math.inf)
    half = se * math.sqrt((2.0 * math.log(1.0 / plan.alpha) + math.log1p(a)) * (1.0 + a) / a)
    return (effect - half, effect + half)


def run_looks(
    plan: Plan,
    comparison: Comparison,
    *,
    rule: Rule = "sequential",
    final: bool = False,
    min_n_to_stop: float = 0.0,
) -> Outcome:
    """Apply the test to looks 1..K of each run.

    The test ends at the first look that crosses its boundary, or at the first look with t ≥ 1 (n_max reached),
    or at the last look when `final` (e.g. maximum duration). Looks where either arm has fewer than
    `min_n_to_stop` requests may not stop the test (this only lowers the type I error).
    rule "naive" is the contrast: a fixed-horizon z test at level α at every look.
    """
    t = information_fractions(plan, comparison)
    k_looks = t.size
    reached = np.flatnonzero(t >= 1.0 - 1e-12)
    last = int(reached[0]) if reached.size else k_looks - 1
    ends = bool(reached.size) or final
    active = last + 1

    bounds = np.full(k_looks, np.inf)
    if rule == "sequential":
        positive = np.maximum(t[:active], 1e-12)
        bounds[:active] = boundaries(np.maximum.accumulate(positive), plan.alpha, plan.spending, plan.rho, final=ends)
    elif rule == "naive":
        bounds[:active] = stats.norm.isf(plan.alpha / 2.0)
    else:
        raise ValueError(f"rule must be 'sequential' or 'naive', got {rule!r}")

    z = comparison.z
    improvement = -z if plan.lower_is_better else z
    allowed = np.minimum(comparison.n_champion, comparison.n_challenger) >= min_n_to_stop
    wins = (improvement >= bounds) & allowed
    worse = (-improvement >= bounds) & allowed
    crossed = wins | worse
    any_crossed = crossed.any(axis=-1)
    first = np.argmax(crossed, axis=-1)
    won = np.take_along_axis(wins, first[..., None], axis=-1)[..., 0]

    decision = np.full(any_crossed.shape, CONTINUE, dtype=int)
    stop_index = np.full(any_crossed.shape, -1, dtype=int)
    if ends:
        decision[...] = CHAMPION_WINS_OR_EQUAL
        stop_index[...] = last
    decision = np.where(any_crossed, np.where(won, CHALLENGER_WINS, CHALLENGER_WORSE), decision)
    stop_index = np.where(any_crossed, first, stop_index)
    return Outcome(t, z, bounds, decision, stop_index, crossed, msprt_p_values(plan, comparison))


@dataclass(frozen=True)
class LookRow:
    """One look as recomputed from the data."""

    look: int
    n_champion: int
    n_challenger: int
    information_fraction: float
    statistic: float
    boundary: float | None
    effect: float
    ci_low: float | None
    ci_high: float | None
    p_value: float
    scheduled: bool
    crossed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "Look": self.look,
            "NChampion": self.n_champion,
            "NChallenger": self.n_challenger,
            "InformationFraction": self.information_fraction,
            "Statistic": self.statistic,
            "Boundary": self.boundary,
            "Effect": self.effect,
            "ConfidenceInterval": [self.ci_low, self.ci_high],
            "PValue": self.p_value,
            "Scheduled": self.scheduled,
            "Crossed": self.crossed,
        }


@dataclass(frozen=True)
class LookResult:
    """The current look and the test's state, recomputed from all data and the plan."""

    decision: str  # one of DECISIONS
    stopped_at: int | None  # 1-based look where the test ended (boundary crossed or n_max reached), else None
    current: LookRow
    looks: tuple[LookRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "Decision": self.decision,
            "StoppedAtLook": self.stopped_at,
            "Look": self.current.to_dict(),
            "Looks": [row.to_dict() for row in self.looks],
        }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def evaluate_look(
    plan: Plan,
    comparison: Comparison,
    *,
    final: bool = False,
    unscheduled: bool = False,
    min_n_to_stop: float = 0.0,
) -> LookResult:
    """Evaluate the latest look of one test; `comparison` holds every look so far (1-D arrays over looks).

    Boundaries are recomputed at the information fractions actually reached. With `unscheduled`, the last look
    is an ad-hoc check: it does not take part in the group-sequential test (its decision comes from the
    scheduled looks) and is judged by its always-valid mSPRT p-value and confidence interval only.
    """
    if np.ndim(comparison.n) != 1 or np.size(comparison.n) == 0:
        raise ValueError("evaluate_look takes one run with at least one look (1-D arrays)")
    k_looks = int(np.size(comparison.n))
    scheduled_looks = k_looks - 1 if unscheduled else k_looks
    p_values = msprt_p_values(plan, comparison)
    t_all = comparison.n / plan.n_max

    bounds = np.full(k_looks, np.inf)
    crossed = np.zeros(k_looks, dtype=bool)
    decision, stopped_at = CONTINUE, None
    if scheduled_looks:
        outcome = run_looks(
            plan, comparison[:scheduled_looks], final=final and not unscheduled, min_n_to_stop=min_n_to_stop
        )
        bounds[:scheduled_looks] = outcome.boundaries
        crossed[:scheduled_looks] = outcome.crossed
        decision = int(outcome.decision)
        stopped_at = int(outcome.stop_index) + 1 if outcome.stop_index >= 0 else None
        if stopped_at is not None:  # the test is over; later looks are shown without a boundary
            bounds[stopped_at:] = np.inf
            crossed[stopped_at:] = False

    rows = []
    for k in range(k_looks):
        effect, se, c = float(comparison.effect[k]), float(comparison.se[k]), float(bounds[k])
        is_scheduled = k < scheduled_looks
        if is_scheduled:
            # Repeated confidence interval: simultaneous 1 − α coverage over the looks.
            low, high = (effect - c * se, effect + c * se) if math.isfinite(c) else (-math.inf, math.inf)
        else:
            low, high = msprt_interval(plan, effect, se, float(comparison.n[k]))
        rows.append(
            LookRow(
                look=k + 1,
                n_champion=int(comparison.n_champion[k]),
                n_challenger=int(comparison.n_challenger[k]),
                information_fraction=float(t_all[k]),
                statistic=float(comparison.z[k]),
                boundary=_finite(c),
                effect=effect,
                ci_low=_finite(low),
                ci_high=_finite(high),
                p_value=float(p_values[k]),
                scheduled=is_scheduled,
                crossed=bool(crossed[k]),
            )
        )
    return LookResult(
        decision=DECISIONS[decision],
        stopped_at=stopped_at,
        current=rows[-1],
        looks=tuple(rows),
    )
