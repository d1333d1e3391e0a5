"""A/B decision statistics: paired group-sequential test, guardrails, and the Monte-Carlo proof on the machine's
own schedule."""

from sagestep.abtest.decide import decide
from sagestep.abtest.design import Plan, boundaries, plan
from sagestep.abtest.guardrails import Guardrails
from sagestep.abtest.sequential import Comparison, LookResult, Sums, evaluate_look, run_looks
from sagestep.abtest.simulate import Schedule, simulate, simulate_schedule

__all__ = [
    "Comparison",
    "Guardrails",
    "LookResult",
    "Plan",
    "Schedule",
    "Sums",
    "boundaries",
    "decide",
    "evaluate_look",
    "plan",
    "run_looks",
    "simulate",
    "simulate_schedule",
]
