"""A/B decision statistics: plan, group-sequential looks with mSPRT, guardrails, and the Monte-Carlo proof."""

from sagestep.abtest.decide import Guardrails, decide
from sagestep.abtest.design import Plan, boundaries, plan
from sagestep.abtest.sequential import Comparison, LookResult, Sums, evaluate_look, run_looks
from sagestep.abtest.simulate import simulate

__all__ = [
    "Comparison",
    "Guardrails",
    "LookResult",
    "Plan",
    "Sums",
    "boundaries",
    "decide",
    "evaluate_look",
    "plan",
    "run_looks",
    "simulate",
]
