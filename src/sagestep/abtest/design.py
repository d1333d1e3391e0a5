"""Plan an A/B test: maximum sample size per arm and Lan–DeMets group-sequential boundaries.

Boundaries are computed by recursive numerical integration of the joint law of the look statistics
(Armitage–McPherson–Rowe): on the B-value scale B_k = Z_k·√t_k the increments are independent normal with
variance t_k − t_{k−1}, which is the same law as corr(Z_j, Z_k) = √(t_j / t_k). The test suite cross-checks the
result against scipy's multivariate normal CDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Literal, Mapping, Sequence

import numpy as np
from scipy import optimize, special, stats

Metric = Literal["default_rate", "brier", "log_loss", "absolute_error"]
Mode = Literal["split", "paired"]
Spending = Literal["obrien_fleming", "power"]

PROPORTION_METRICS = frozenset({"default_rate"})
MEAN_METRICS = frozenset({"brier", "log_loss", "absolute_error"})
METRICS = PROPORTION_METRICS | MEAN_METRICS
MODES = ("split", "paired")
SPENDING_FUNCTIONS = ("obrien_fleming", "power")
MAX_LOOKS = 50

# Information increments below this (0.01% of n_max) are treated as "no new data": no alpha is spent there.
_MIN_INCREMENT = 1e-4
# B-values further than this many standard deviations from their mean carry negligible mass (< 1e-18).
_TAIL_SDS = 9.0


@dataclass(frozen=True)
class Plan:
    """A stored A/B design. `n_*` count labelled requests per arm under equal allocation ("split": two independent
    samples), or labelled requests scored by both models ("paired", what the state machine runs)."""

    metric: str
    mode: str
    alpha: float
    power: float
    minimum_detectable_effect: float  # signed change challenger − champion the design is powered for
    base_rate: float | None  # champion rate, proportion metrics only
    variance: float  # V: variance of one pair's contribution to the difference (p_A q_A + p_B q_B, σ_A²+σ_B², σ_d²)
    correlation: float
    looks: int
    spending: str
    rho: float  # exponent of power spending α·t^ρ; unused for obrien_fleming
    information_fractions: tuple[float, ...]
    boundaries: tuple[float, ...]  # |Z| critical values at the planned fractions
    cumulative_alpha: tuple[float, ...]
    n_fixed: int  # fixed-horizon sample size per arm
    inflation: float  # n_max / n_fixed, so that the group-sequential design keeps the power
    n_max: int
    threshold: float = 0.5  # decision threshold on the predicted default probability (approve below it)
    lower_is_better: bool = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[_pascal(f.name)] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        by_key = {_pascal(f.name): f.name for f in fields(cls)}
        unknown = sorted(set(data) - set(by_key))
        if unknown:
            raise ValueError(f"plan: unknown field(s) {unknown}; expected keys {sorted(by_key)}")
        kwargs = {by_key[k]: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"plan: {exc}; build it with sagestep.abtest.plan(...).to_dict()") from None


def _pascal(name: str) -> str:
    return "".join(part.upper() if part == "n" else part.capitalize() for part in name.split("_"))


def alpha_spent(
    t: Sequence[float] | np.ndarray | float, alpha: float, spending: str = "obrien_fleming", rho: float = 3.0
) -> np.ndarray:
    """Cumulative two-sided type I error α(t) allowed by information fraction t (capped at α for t ≥ 1).

    O'Brien–Fleming type: the boundaries are symmetric, so each side spends α/2 by Lan–DeMets'
    α₁(t) = 2 − 2Φ(z₁₋α₁/₂ / √t) with α₁ = α/2, and α(t) = 2·α₁(t). (Plugging the two-sided α into α₁ instead
    gives a valid but different design, with a first of 5 boundaries at 4.38 rather than the usual 4.88.)
    """
    frac = np.clip(np.asarray(t, dtype=float), 0.0, 1.0)
    if spending == "obrien_fleming":
        z = stats.norm.isf(alpha / 4.0)
        with np.errstate(divide="ignore"):
            return 4.0 * stats.norm.sf(z / np.sqrt(frac))
    if spending == "power":
        return alpha * frac**rho
    raise ValueError(f"spending must be one of {SPENDING_FUNCTIONS}, got {spending!r}")


def _simpson_weights(m: int, h: float) -> np.ndarray:
    w = np.full(m, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return w * h / 3.0


def _propagate(nodes: np.ndarray, mass: np.ndarray, grid: np.ndarray, shift: float, sd: float) -> np.ndarray:
    """Density on `grid` of B_k = B_{k−1} + N(shift, sd²), B_{k−1} given as point masses (chunked: bounded memory)."""
    out = np.empty_like(grid)
    for start in range(0, grid.size, 1024):
        x = (grid[start : start + 1024, None] - nodes[None, :] - shift) / sd
        out[start : start + 1024] = np.exp(-0.5 * x * x) @ mass
    return out / (sd * math.sqrt(2.0 * math.pi))


def _stages(
    t: np.ndarray, theta: float, *, cumulative_alpha: np.ndarray | None = None, bounds: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boundaries and first-crossing probabilities (upper, lower) per look when E[Z_k] = θ·√t_k.

    Either solve each boundary so that the crossing probability equals the alpha to spend at that look
    (`cumulative_alpha`, under H0), or evaluate given `bounds`.
    """
    k_looks = t.size
    c = np.full(k_looks, np.inf)
    upper = np.zeros(k_looks)
    lower = np.zeros(k_looks)
    nodes, mass, t_prev, spent = np.zeros(1), np.ones(1), 0.0, 0.0
    for k in range(k_looks):
        delta = t[k] - t_prev
        if delta < _MIN_INCREMENT or mass.size == 0:
            continue
        sd, shift, root_t = math.sqrt(delta), theta * delta, math.sqrt(t[k])

        def tails(ck: float) -> tuple[float, float]:
            edge = ck * root_t
            up = float(mass @ special.ndtr((nodes + shift - edge) / sd))
            lo = float(mass @ special.ndtr((-edge - nodes - shift) / sd))
            return up, lo

        if cumulative_alpha is not None:
            to_spend = cumulative_alpha[k] - spent
            if to_spend <= 1e-15:
                ck = math.inf
            elif sum(tails(0.0)) <= to_spend:
                ck = 0.0
            else:
                ck = optimize.brentq(lambda x: sum(tails(x)) - to_spend, 0.0, 60.0, xtol=1e-12, rtol=1e-12)
        else:
            assert bounds is not None
            ck = float(bounds[k])
        c[k] = ck
        if math.isfinite(ck):
            upper[k], lower[k] = tails(ck)
        spent += upper[k] + lower[k]
        if k == k_looks - 1:
            break
        next_delta = max(t[k + 1] - t[k], _MIN_INCREMENT)
        h = min(0.02, math.sqrt(delta) / 10.0, math.sqrt(next_delta) / 10.0)
        centre, half = theta * t[k], _TAIL_SDS * root_t
        a, b = max(-ck * root_t, centre - half), min(ck * root_t, centre + half)
        if b <= a:
            nodes, mass = np.zeros(0), np.zeros(0)
        else:
            m = 2 * math.ceil((b - a) / (2.0 * h)) + 1
            grid = np.linspace(a, b, m)
            mass = _simpson_weights(m, (b - a) / (m - 1)) * _propagate(nodes, mass, grid, shift, sd)
            nodes = grid
        t_prev = t[k]
    return c, upper, lower


@lru_cache(maxsize=256)
def _boundaries_cached(t: tuple[float, ...], alpha: float, spending: str, rho: float, final: bool) -> np.ndarray:
    frac = np.asarray(t, dtype=float)
    cumulative = alpha_spent(frac, alpha, spending, rho)
    if final:
        cumulative[-1] = alpha
    c, _, _ = _stages(frac, 0.0, cumulative_alpha=cumulative)
    c.setflags(write=False)
    return c


def boundaries(
    t: Sequence[float] | np.ndarray,
    alpha: float,
    spending: str = "obrien_fleming",
    rho: float = 3.0,
    *,
    final: bool = False,
) -> np.ndarray:
    """Two-sided |Z| boundaries c_k for looks at information fractions t (any, not only the planned ones).

    P(no earlier crossing, |Z_k| ≥ c_k) = α(t_k) − α(t_{k−1}) under H0; with `final` the last look spends all that
    is left of α. Infinite where a look adds no information.
    """
    frac = tuple(float(x) for x in np.asarray(t, dtype=float).ravel())
    if any(b < a for a, b in zip(frac, frac[1:])) or (frac and frac[0] <= 0):
        raise ValueError(f"information fractions must be positive and non-decreasing, got {frac}")
    return _boundaries_cached(frac, float(alpha), spending, float(rho), bool(final))


def crossing_probabilities(
    t: Sequence[float] | np.ndarray, bounds: Sequence[float] | np.ndarray, drift: float
) -> tuple[np.ndarray, np.ndarray]:
    """P(first crossing at look k, upper) and (…, lower) when E[Z_k] = drift·√t_k."""
    _, upper, lower = _stages(np.asarray(t, dtype=float), drift, bounds=np.asarray(bounds, dtype=float))
    return upper, lower


def inflation_factor(
    t: Sequence[float] | np.ndarray, bounds: Sequence[float] | np.ndarray, alpha: float, power: float
) -> float:
    """R such that n_max = R·n_fixed gives the group-sequential test the fixed design's power."""
    fixed_drift = stats.norm.isf(alpha / 2.0) + stats.norm.ppf(power)

    def shortfall(r: float) -> float:
        upper, _ = crossing_probabilities(t, bounds, fixed_drift * math.sqrt(r))
        return float(upper.sum()) - power

    return float(optimize.brentq(shortfall, 0.5, 4.0, xtol=1e-8))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def plan(
    metric: str,
    base_rate_or_variance: float,
    minimum_detectable_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
    looks: int = 5,
    mode: str = "split",
    *,
    spending: str = "obrien_fleming",
    rho: float = 3.0,
    correlation: float = 0.0,
    threshold: float = 0.5,
    lower_is_better: bool = True,
    n_max: int | None = None,
) -> Plan:
    """Design a two-sided group-sequential A/B test with `looks` equally spaced looks.

    metric: "default_rate" (a 0/1 outcome; pass the champion's rate) or a per-request mean "brier", "log_loss",
    "absolute_error" (pass V, the variance of one pair's contribution: σ_A² + σ_B² in split mode, σ_d² of the
    differences in paired mode). minimum_detectable_effect is the signed change challenger − champion,
    e.g. −0.005 for 5% → 4.5%. In paired mode a proportion metric uses `correlation` between the two models'
    0/1 outcomes on the same request. `n_max` overrides the computed maximum (a fixed budget).
    """
    _check(metric in METRICS, f"metric must be one of {sorted(METRICS)}, got {metric!r}")
    _check(mode in MODES, f"mode must be one of {MODES}, got {mode!r}")
    _check(spending in SPENDING_FUNCTIONS, f"spending must be one of {SPENDING_FUNCTIONS}, got {spending!r}")
    _check(0.0 < alpha < 1.0, f"alpha must be in (0, 1), got {alpha}")
    _check(0.0 < power < 1.0, f"power must be in (0, 1), got {power}")
    _check(isinstance(looks, int) and 1 <= looks <= MAX_LOOKS,
           f"looks must be an integer in 1..{MAX_LOOKS}, got {looks}")
    _check(rho > 0.0, f"rho must be positive, got {rho}")
    _check(-1.0 <= correlation <= 1.0, f"correlation must be in [-1, 1], got {correlation}")
    _check(minimum_detectable_effect != 0.0 and math.isfinite(minimum_detectable_effect),
           f"minimum_detectable_effect must be a non-zero number, got {minimum_detectable_effect}")
    z_alpha, z_beta = stats.norm.isf(alpha / 2.0), stats.norm.ppf(power)
    delta = minimum_detectable_effect
    base_rate: float | None = None
    if metric in PROPORTION_METRICS:
        p1 = base_rate = float(base_rate_or_variance)
        p2 = p1 + delta
        _check(0.0 < p1 < 1.0, f"base rate must be in (0, 1), got {p1}")
        _check(0.0 < p2 < 1.0, f"base rate + effect must be in (0, 1), got {p2}")
        v1, v2 = p1 * (1.0 - p1), p2 * (1.0 - p2)
        if mode == "split":
            variance = v1 + v2
            p_bar = (p1 + p2) / 2.0
            raw_n = (z_alpha * math.sqrt(2.0 * p_bar * (1.0 - p_bar)) + z_beta * math.sqrt(variance)) ** 2 / delta**2
        else:
            variance = v1 + v2 - 2.0 * correlation * math.sqrt(v1 * v2)
            _check(variance > 0.0, "correlation leaves no variance in the paired differences")
            raw_n = (z_alpha + z_beta) ** 2 * variance / delta**2
    else:
        variance = float(base_rate_or_variance)
        _check(variance > 0.0 and math.isfinite(variance), f"variance must be positive, got {variance}")
        raw_n = (z_alpha + z_beta) ** 2 * variance / delta**2

    fractions = tuple(float(k) / looks for k in range(1, looks + 1))
    c = boundaries(fractions, alpha, spending, rho, final=True)
    inflation = inflation_factor(fractions, c, alpha, power)
    n_fixed = math.ceil(raw_n - 1e-9)  # the guard keeps an exact integer (e.g. 28,407.9999…) from rounding up twice
    if n_max is None:
        n_max = math.ceil(raw_n * inflation - 1e-9)
    else:
        _check(isinstance(n_max, int) and n_max >= looks, f"n_max must be an integer ≥ looks, got {n_max}")
        inflation = n_max / raw_n
    return Plan(
        metric=metric,
        mode=mode,
        alpha=float(alpha),
        power=float(power),
        minimum_detectable_effect=float(delta),
        base_rate=base_rate,
        variance=float(variance),
        correlation=float(correlation),
        looks=looks,
        spending=spending,
        rho=float(rho),
        information_fractions=fractions,
        boundaries=tuple(float(x) for x in c),
        cumulative_alpha=tuple(float(x) for x in alpha_spent(fractions, alpha, spending, rho)),
        n_fixed=n_fixed,
        inflation=float(inflation),
        n_max=int(n_max),
        threshold=float(threshold),
        lower_is_better=bool(lower_is_better),
    )
