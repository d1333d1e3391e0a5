"""Guardrails of an A/B test: sequential tests that abort a challenger that harms applicants or the business.

Each guardrail is a one-sided question "is the challenger outside what is allowed?", asked at every look:
- error rate: challenger's server-side error rate (5xx and model errors; a 4xx is the client's fault) above the
  champion's by more than `MaxErrorRateIncrease`;
- approval rate: challenger's approval rate minus the champion's outside `ApprovalRateBand`;
- disparate impact, one guardrail per protected attribute of the dataset config: P(approved | unprivileged) /
  P(approved | privileged) of the challenger's decisions outside the dataset's band (the quality gate's);
- latency: challenger's p99 model latency above the champion's by more than `MaxLatencyP99IncreaseMs`.

A guardrail is *breached* only when the whole confidence interval of its statistic lies outside what is allowed,
and only once every group it compares has `MinCount` observations ("waiting" before that): one early error cannot
trip it. The interval at each look has level 1 − Alpha / MaxLooks (Bonferroni over the at most MaxLooks looks the
state machine takes), so over the whole test each guardrail falsely aborts with probability at most Alpha,
whenever the looks happen and however the data grow. The tests are stateless: a look is judged on everything
observed up to it.

Intervals: Wilson / Newcombe (hybrid score) for rates and their difference, Katz (log) for the ratio of two
rates, and the distribution-free order-statistic bounds for a p99 (read from CloudWatch as two more percentiles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

from scipy import stats

WAITING, WITHIN, BREACHED = "waiting", "within", "breached"
VARIANTS = ("champion", "challenger")


@dataclass(frozen=True)
class Guardrails:
    """What the A/B test allows; stored in the plan (`Guardrails`), set per test in the execution input."""

    min_pairs: int = 1000  # labelled requests scored by both models before the loss test may stop
    min_count: int = 200  # observations per arm (per group for disparate impact) before a guardrail may decide
    alpha: float = 0.05  # each guardrail's chance of a false abort over the whole test
    max_error_rate_increase: float = 0.001
    approval_rate_band: tuple[float, float] = (-0.05, 0.05)  # allowed challenger − champion approval rate
    max_latency_p99_increase_ms: float = 25.0
    disparate_impact_band: tuple[float, float] = (0.8, 1.25)  # from the dataset config (the quality gate's band)

    KEYS = {"MinPairs": "min_pairs", "MinCount": "min_count", "Alpha": "alpha",
            "MaxErrorRateIncrease": "max_error_rate_increase", "ApprovalRateBand": "approval_rate_band",
            "MaxLatencyP99IncreaseMs": "max_latency_p99_increase_ms", "DisparateImpactBand": "disparate_impact_band"}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Guardrails:
        unknown = sorted(set(data) - set(cls.KEYS))
        if unknown:
            raise ValueError(f"guardrails: unknown field(s) {unknown}; expected some of {sorted(cls.KEYS)}")
        values: dict[str, Any] = {cls.KEYS[k]: v for k, v in data.items()}
        for f in fields(cls):
            value = values.get(f.name, f.default)
            key = next(k for k, v in cls.KEYS.items() if v == f.name)
            if f.name.endswith("_band"):
                if (not isinstance(value, (list, tuple)) or len(value) != 2
                        or not all(_is_number(v) for v in value) or not value[0] < value[1]):
                    raise ValueError(f"guardrails: {key} must be [low, high] with low < high, got {value!r}")
                values[f.name] = (float(value[0]), float(value[1]))
            elif not _is_number(value) or value < 0:
                raise ValueError(f"guardrails: {key} must be a non-negative number, got {value!r}")
        if not 0.0 < values.get("alpha", cls.alpha) < 1.0:
            raise ValueError(f"guardrails: Alpha must be in (0, 1), got {values['alpha']!r}")
        for key in ("min_pairs", "min_count"):
            if key in values:
                values[key] = int(values[key])
        if values.get("min_count", cls.min_count) < 1:
            raise ValueError("guardrails: MinCount must be at least 1")
        low, high = values.get("disparate_impact_band", cls.disparate_impact_band)
        if low <= 0:
            raise ValueError(f"guardrails: DisparateImpactBand must be positive, got {[low, high]}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(getattr(self, v)) if v.endswith("_band") else getattr(self, v) for k, v in self.KEYS.items()}


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def look_level(rails: Guardrails, max_looks: int) -> float:
    """ε: the error allowed to one guardrail at one look (Alpha spread evenly over MaxLooks looks)."""
    return rails.alpha / max(1, int(max_looks))


# -- intervals -------------------------------------------------------------------------------------------------
def wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_difference(x_a: int, n_a: int, x_b: int, n_b: int, z: float) -> tuple[float, float, float]:
    """p_B − p_A with Newcombe's hybrid score interval (good for rates near 0, unlike the Wald interval)."""
    p_a, p_b = x_a / n_a, x_b / n_b
    lo_a, hi_a = wilson(x_a, n_a, z)
    lo_b, hi_b = wilson(x_b, n_b, z)
    d = p_b - p_a
    return d, d - math.hypot(p_b - lo_b, hi_a - p_a), d + math.hypot(hi_b - p_b, p_a - lo_a)


def rate_ratio(x_u: int, n_u: int, x_p: int, n_p: int, z: float) -> tuple[float | None, float, float]:
    """p_u / p_p with the Katz log interval (0.5 added to the counts when one is 0 or n)."""
    if x_p == 0 and x_u == 0:
        return None, 0.0, math.inf
    ratio = (x_u / n_u) / (x_p / n_p) if x_p else math.inf
    if min(x_u, x_p) == 0 or x_u == n_u or x_p == n_p:
        x_u, n_u, x_p, n_p = x_u + 0.5, n_u + 1.0, x_p + 0.5, n_p + 1.0
    log_ratio = math.log((x_u / n_u) / (x_p / n_p))
    se = math.sqrt(1 / x_u - 1 / n_u + 1 / x_p - 1 / n_p)
    return ratio, math.exp(log_ratio - z * se), math.exp(log_ratio + z * se)


def quantile_ranks(n: int, q: float, error: float) -> tuple[float | None, float | None]:
    """Percentile levels (in %) whose values bound the q-quantile from below and from above, each wrong with
    probability at most `error`; None where n values are too few for such a bound.

    Distribution-free: P(X_(l) > ξ_q) = P(Bin(n, q) ≤ l − 1) and P(X_(u) < ξ_q) = P(Bin(n, q) ≥ u). The nearest-rank
    percentile p of n values is X_(⌈p·n/100⌉); levels are rounded to 2 decimals towards the safe side.
    """
    if n <= 0:
        return None, None
    k = int(stats.binom.ppf(error, n, q))
    while k >= 0 and stats.binom.cdf(k, n, q) > error:
        k -= 1
    low_rank = k + 1  # the largest l with P(Bin ≤ l − 1) ≤ error
    up_rank = int(stats.binom.isf(error, n, q))
    while up_rank <= n and stats.binom.sf(up_rank - 1, n, q) > error:
        up_rank += 1  # the smallest u with P(Bin ≥ u) ≤ error
    lower = math.floor(10000.0 * low_rank / n) / 100.0 if low_rank >= 1 else None
    upper = math.floor(10000.0 * (up_rank - 1) / n) / 100.0 + 0.01 if up_rank <= n else None
    if lower is not None and lower <= 0.0:
        lower = None
    if upper is not None and upper > 100.0:
        upper = 100.0
    return lower, upper


# -- evaluation ------------------------------------------------------------------------------------------------
def _state(name: str, state: str, estimate: float | None, interval: tuple[float | None, float | None],
           allowed: Sequence[float | None], counts: Mapping[str, int], reason: str) -> dict[str, Any]:
    return {"Name": name, "State": state, "Estimate": estimate, "Interval": list(interval), "Allowed": list(allowed),
            "Counts": dict(counts), "Reason": reason}


def error_rate(operational: Mapping[str, Mapping[str, Any]], rails: Guardrails, z: float) -> dict[str, Any]:
    a, b = operational["champion"], operational["challenger"]
    n_a, n_b, x_a, x_b = int(a["Invocations"]), int(b["Invocations"]), int(a["Errors"]), int(b["Errors"])
    counts = {"ChampionInvocations": n_a, "ChampionErrors": x_a, "ChallengerInvocations": n_b, "ChallengerErrors": x_b}
    allowed = (None, rails.max_error_rate_increase)
    if min(n_a, n_b) < rails.min_count:
        return _state("ErrorRate", WAITING, None, (None, None), allowed, counts,
                      f"error rate: waiting for {rails.min_count} invocations per variant "
                      f"(champion {n_a}, challenger {n_b})")
    d, low, high = rate_difference(x_a, n_a, x_b, n_b, z)
    text = (f"challenger error rate (5xx and model errors) {x_b / n_b:.2%} ({x_b}/{n_b}) vs champion {x_a / n_a:.2%} "
            f"({x_a}/{n_a}): increase {d:+.3%}, interval [{low:+.3%}, {high:+.3%}]")
    if low > rails.max_error_rate_increase:
        return _state("ErrorRate", BREACHED, d, (low, high), allowed, counts,
                      f"{text} lies above the allowed +{rails.max_error_rate_increase:.3%}")
    return _state("ErrorRate", WITHIN, d, (low, high), allowed, counts, text)


def approval_rate(decisions: Mapping[str, Mapping[str, Any]], rails: Guardrails, z: float) -> dict[str, Any]:
    a, b = decisions["champion"], decisions["challenger"]
    n_a, n_b, x_a, x_b = int(a["N"]), int(b["N"]), int(a["Approved"]), int(b["Approved"])
    counts = {"ChampionDecisions": n_a, "ChampionApproved": x_a, "ChallengerDecisions": n_b, "ChallengerApproved": x_b}
    low_band, high_band = rails.approval_rate_band
    if min(n_a, n_b) < rails.min_count:
        return _state("ApprovalRate", WAITING, None, (None, None), (low_band, high_band), counts,
                      f"approval rate: waiting for {rails.min_count} decisions per variant "
                      f"(champion {n_a}, challenger {n_b})")
    d, low, high = rate_difference(x_a, n_a, x_b, n_b, z)
    text = (f"challenger approves {x_b / n_b:.1%} ({x_b}/{n_b}) vs champion {x_a / n_a:.1%} ({x_a}/{n_a}): "
            f"change {d:+.1%}, interval [{low:+.1%}, {high:+.1%}]")
    if low > high_band or high < low_band:
        return _state("ApprovalRate", BREACHED, d, (low, high), (low_band, high_band), counts,
                      f"{text} lies outside the allowed band [{low_band:+.1%}, {high_band:+.1%}]")
    return _state("ApprovalRate", WITHIN, d, (low, high), (low_band, high_band), counts, text)


def disparate_impact(decisions: Mapping[str, Mapping[str, Any]], attributes: Sequence[Mapping[str, Any]],
                     rails: Guardrails, z: float) -> list[dict[str, Any]]:
    """One guardrail per protected attribute, on the challenger's decisions."""
    out = []
    groups = decisions["challenger"].get("Groups", {})
    low_band, high_band = rails.disparate_impact_band
    for attribute in attributes:
        name = attribute["Name"]
        cell = groups.get(name, {})
        n_p, x_p = (int(v) for v in cell.get("Privileged", (0, 0)))
        n_u, x_u = (int(v) for v in cell.get("Unprivileged", (0, 0)))
        counts = {"Privileged": n_p, "PrivilegedApproved": x_p, "Unprivileged": n_u, "UnprivilegedApproved": x_u,
                  "Missing": int(cell.get("Missing", 0))}
        label = f"DisparateImpact:{name}"
        if min(n_p, n_u) < rails.min_count:
            out.append(_state(label, WAITING, None, (None, None), (low_band, high_band), counts,
                              f"disparate impact of {name}: waiting for {rails.min_count} challenger decisions per "
                              f"group ({attribute['Privileged']}: {n_p}, others: {n_u})"))
            continue
        ratio, low, high = rate_ratio(x_u, n_u, x_p, n_p, z)
        shown = "undefined" if ratio is None else f"{ratio:.2f}"
        text = (f"disparate impact of {name} on the challenger's decisions {shown} (approved {x_u}/{n_u} of others vs "
                f"{x_p}/{n_p} with {attribute['Privileged']}), interval [{low:.2f}, {_fmt_upper(high)}]")
        if high < low_band or low > high_band:
            out.append(_state(label, BREACHED, ratio, (low, high), (low_band, high_band), counts,
                              f"{text} lies outside the band [{low_band:g}, {high_band:g}]"))
        else:
            out.append(_state(label, WITHIN, ratio, (low, high), (low_band, high_band), counts, text))
    return out


def _fmt_upper(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.2f}"


def latency_p99(operational: Mapping[str, Mapping[str, Any]], rails: Guardrails) -> dict[str, Any]:
    """Breached when the challenger's p99 lower bound exceeds the champion's p99 upper bound plus the margin (each
    bound from the percentiles given by `quantile_ranks` at error ε/2, so the look's error is at most ε)."""
    a, b = operational["champion"], operational["challenger"]
    n_a, n_b = int(a.get("LatencySamples") or 0), int(b.get("LatencySamples") or 0)
    counts = {"ChampionSamples": n_a, "ChallengerSamples": n_b}
    margin = rails.max_latency_p99_increase_ms
    allowed = (None, margin)
    upper_a, lower_b = a.get("LatencyP99UpperMs"), b.get("LatencyP99LowerMs")
    p99_a, p99_b = a.get("LatencyP99Ms"), b.get("LatencyP99Ms")
    if min(n_a, n_b) < rails.min_count or upper_a is None or lower_b is None or p99_a is None or p99_b is None:
        return _state("LatencyP99", WAITING, None, (None, None), allowed, counts,
                      f"latency p99: waiting for {rails.min_count} timed invocations per variant and enough for a "
                      f"bound on each p99 (champion {n_a}, challenger {n_b})")
    estimate, low, high = p99_b - p99_a, lower_b - upper_a, None
    text = (f"challenger p99 model latency {p99_b:.1f} ms (at least {lower_b:.1f}) vs champion {p99_a:.1f} ms "
            f"(at most {upper_a:.1f}); CloudWatch {a.get('LatencyStatistic', 'p99')}")
    if low > margin:
        return _state("LatencyP99", BREACHED, estimate, (low, high), allowed, counts,
                      f"{text}: worse by more than the allowed {margin:g} ms")
    return _state("LatencyP99", WITHIN, estimate, (low, high), allowed, counts, text)


def evaluate(
    rails: Guardrails,
    max_looks: int,
    decisions: Mapping[str, Mapping[str, Any]],
    attributes: Sequence[Mapping[str, Any]],
    operational: Mapping[str, Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    """Every guardrail's state at one look. `operational` None: not observed at this look (history only)."""
    z_one = stats.norm.isf(look_level(rails, max_looks))  # one-sided: error rate
    z_two = stats.norm.isf(look_level(rails, max_looks) / 2.0)  # either side of a band
    states = []
    if operational is not None:
        states.append(error_rate(operational, rails, z_one))
    states.append(approval_rate(decisions, rails, z_two))
    states.extend(disparate_impact(decisions, attributes, rails, z_two))
    if operational is not None:
        states.append(latency_p99(operational, rails))
    return states
