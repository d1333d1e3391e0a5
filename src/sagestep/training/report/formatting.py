"""How the report writes numbers: fixed decimals, signed values, percentages and data statistics; "—" for a value
that is missing or not a finite number. Shared by the report's data and its figures."""

from __future__ import annotations

from typing import Any

from sagestep.training.gate import finite_number


def fmt(value: Any, digits: int = 3) -> str:
    """A metric with `digits` decimals; "—" when missing or not a number."""
    number = finite_number(value)
    return "—" if number is None else f"{number:.{digits}f}"


def fmt_signed(value: Any, digits: int = 3) -> str:
    number = finite_number(value)
    return "—" if number is None else f"{number:+.{digits}f}".replace("-", "−")


def pct(value: Any, digits: int = 1) -> str:
    number = finite_number(value)
    return "—" if number is None else f"{100 * number:.{digits}f}%"


def fmt_stat(value: Any) -> str:
    """A data statistic: thousands separators for large values, a few significant digits for small ones."""
    number = finite_number(value)
    if number is None:
        return "—"
    size = abs(number)
    if size >= 1000:
        return f"{number:,.0f}"
    if size >= 100 or number == int(number):
        return f"{number:,.1f}".rstrip("0").rstrip(".")
    return f"{number:.3g}"
