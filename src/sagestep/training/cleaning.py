"""The cleaning transform of a dataset config: one definition, applied at training, serving, batch scoring and
monitoring, so a model never sees values cleaned differently from the ones it was trained on.

The definition is a handful of scalar functions, one value in, one value out:

    parse_number(value, numbers)   "$60,000.00 " -> 60000.0, "(1,234)" -> -1234.0, "" -> nan, "60k" -> BAD
    parse_date(value, date)        "28-Feb-97" with format %d-%b-%y, pivot_year 1950 -> 1997-02-28; the cleaned
                                   form (ISO 8601, "1997-02-28") is read too, so cleaned rows clean to themselves
    date_part(moment, part)        year, month, day, weekday (Monday = 0), us_holiday (1 on a US federal holiday
                                   as pandas' USFederalHolidayCalendar lists them, else 0), as floats
    capped_category(value, cap)    a value outside a fitted cap's kept categories -> OTHER_CATEGORY
    target_class(value, cleaning)  a raw label -> its class via target_values; missing -> None

Serving calls them per request cell. Tables (`clean_frame`) apply the same functions to each distinct value of a
column (pandas.factorize) and broadcast the results: identical values by construction, and fast on real data,
where a million rows hold far fewer distinct money amounts and dates. A value that cannot be read is BAD: counted
and shown (the data checks refuse it at training, the endpoint answers 400, monitoring counts it).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sagestep.training.config import (
    OTHER_CATEGORY,
    CategoryCap,
    Cleaning,
    DatasetConfig,
    DateColumn,
    NumberFormat,
    category_key,
    label_text,
)

MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "null", "none", "nat"})
MAX_EXAMPLES = 3
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_TWO_DIGIT_YEAR = re.compile(r"(?:^|[^\d])\d{2}$|^\d{2}[-/.]")


class _Bad:
    """A value that cannot be read (not a missing one)."""

    def __repr__(self) -> str:
        return "BAD"


BAD: Any = _Bad()


class CleaningError(ValueError):
    """The transform cannot be applied (e.g. category caps not fitted yet); the message says what to do."""


# --------------------------------------------------------------------------------------------- scalar functions


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_TEXT


def _number_pattern(numbers: NumberFormat) -> re.Pattern[str]:
    thousands = re.escape(numbers.thousands_separator) if numbers.thousands_separator else None
    decimal = re.escape(numbers.decimal_separator)
    integer = rf"(?:\d{{1,3}}(?:{thousands}\d{{3}})+|\d+)" if thousands else r"\d+"
    return re.compile(rf"^([+-]?)({integer})?(?:{decimal}(\d+))?$")


_PATTERNS: dict[NumberFormat, re.Pattern[str]] = {}


def parse_number(value: Any, numbers: NumberFormat) -> float | Any:
    """A number from a cell: currency symbols, surrounding spaces and thousands separators removed, the decimal
    separator read, `(x)` as -x. nan for a missing value, BAD for text that is not a number."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return math.nan if math.isnan(number) else number
    if _is_missing(value):
        return math.nan
    text = str(value).strip()
    if numbers.decimal_separator == ".":
        try:  # the common case: already a plain number
            number = float(text)
            return BAD if math.isinf(number) else number
        except ValueError:
            pass
    negative = text.startswith("(") and text.endswith(")")
    if negative:
        text = text[1:-1]
    text = "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Sc")
    pattern = _PATTERNS.get(numbers)
    if pattern is None:
        pattern = _PATTERNS[numbers] = _number_pattern(numbers)
    match = pattern.match(text)
    if not match or (match.group(2) is None and match.group(3) is None):
        return BAD
    sign, whole, fraction = match.groups()
    digits = (whole or "0").replace(numbers.thousands_separator, "") if numbers.thousands_separator else (whole or "0")
    number = float(f"{digits}.{fraction}" if fraction else digits)
    if sign == "-":
        number = -number
    return -number if negative else number


def parse_date(value: Any, date: DateColumn) -> dt.datetime | None | Any:
    """A date from a cell with the configured format (two-digit years placed by pivot_year), or in ISO 8601 (the
    cleaned form). None for a missing value, BAD for one that matches neither."""
    if isinstance(value, pd.Timestamp):
        return None if value is pd.NaT else value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if _is_missing(value):
        return None
    text = str(value).strip()
    try:
        moment = dt.datetime.strptime(text, date.format)
    except ValueError:
        if _ISO_DATE.match(text):
            try:
                return dt.datetime.fromisoformat(text)
            except ValueError:
                return BAD
        return BAD
    if date.pivot_year is not None:
        year = date.pivot_year + (moment.year % 100 - date.pivot_year % 100) % 100
        try:
            moment = moment.replace(year=year)
        except ValueError:  # 29 February of a year that is not a leap year in the pivot's century
            return BAD
    return moment


def _us_holidays(start: Any, end: Any) -> Any:
    from pandas.tseries.holiday import USFederalHolidayCalendar

    return USFederalHolidayCalendar().holidays(start=start, end=end)


def date_part(moment: dt.datetime | None, part: str) -> float:
    if moment is None:
        return math.nan
    if part == "weekday":
        return float(moment.weekday())
    if part == "us_holiday":
        day = pd.Timestamp(moment.date())
        return float(len(_us_holidays(day, day)) > 0)
    return float(getattr(moment, part))


def capped_category(value: Any, keep: frozenset[str]) -> str | None:
    """A categorical value under a fitted cap: its canonical text if kept, OTHER_CATEGORY if not, None if missing."""
    key = category_key(value)
    if key is None:
        return None
    return key if key in keep else OTHER_CATEGORY


def target_class(value: Any, mapping: dict[str, Any]) -> Any:
    """A raw label's class under target_values; None when missing, BAD when the value is not mapped."""
    key = label_text(value)
    if key is None:
        return None
    return mapping.get(key, BAD)


def looks_like_two_digit_year(text: str) -> bool:
    return bool(_TWO_DIGIT_YEAR.search(text.strip()))


# --------------------------------------------------------------------------------------------- tables


@dataclass
class ColumnProblem:
    """Values of one column that could not be read."""

    column: str
    count: int
    examples: list[str]

    def describe(self, what: str) -> str:
        return f"{self.column} has {self.count} value(s) that are not {what}, e.g. {self.examples}"


@dataclass
class CleaningReport:
    """What the transform did to one table: counted, so the data checks and the report can show it."""

    rows_in: int = 0
    rows_out: int = 0
    unlabeled: int = 0  # rows without a label
    dropped_unlabeled: int = 0  # of those, dropped (cleaning.unlabeled_rows: drop)
    dropped_columns: list[str] = field(default_factory=list)
    parsed_numbers: list[str] = field(default_factory=list)
    parsed_dates: list[str] = field(default_factory=list)
    bad_numbers: dict[str, ColumnProblem] = field(default_factory=dict)
    bad_dates: dict[str, ColumnProblem] = field(default_factory=dict)
    unmapped_labels: ColumnProblem | None = None
    date_ranges: dict[str, tuple[str, str]] = field(default_factory=dict)

    def merge(self, other: CleaningReport) -> CleaningReport:
        """Two tables' reports as one (counts added, first examples kept)."""
        out = CleaningReport(self.rows_in + other.rows_in, self.rows_out + other.rows_out,
                             self.unlabeled + other.unlabeled, self.dropped_unlabeled + other.dropped_unlabeled,
                             sorted({*self.dropped_columns, *other.dropped_columns}),
                             sorted({*self.parsed_numbers, *other.parsed_numbers}),
                             sorted({*self.parsed_dates, *other.parsed_dates}))
        for attr in ("bad_numbers", "bad_dates"):
            merged: dict[str, ColumnProblem] = {}
            for problems in (getattr(self, attr), getattr(other, attr)):
                for col, problem in problems.items():
                    if col in merged:
                        merged[col] = ColumnProblem(col, merged[col].count + problem.count,
                                                    (merged[col].examples + problem.examples)[:MAX_EXAMPLES])
                    else:
                        merged[col] = problem
            setattr(out, attr, merged)
        labels = [p for p in (self.unmapped_labels, other.unmapped_labels) if p is not None]
        if labels:
            out.unmapped_labels = ColumnProblem(labels[0].column, sum(p.count for p in labels),
                                                sorted({e for p in labels for e in p.examples})[:MAX_EXAMPLES])
        for col in {*self.date_ranges, *other.date_ranges}:
            ranges = [r for r in (self.date_ranges.get(col), other.date_ranges.get(col)) if r]
            out.date_ranges[col] = (min(r[0] for r in ranges), max(r[1] for r in ranges))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "unlabeled_rows": self.unlabeled,
            "dropped_unlabeled_rows": self.dropped_unlabeled,
            "dropped_columns": self.dropped_columns,
            "parsed_numbers": self.parsed_numbers,
            "parsed_dates": self.parsed_dates,
            "date_ranges": {c: list(r) for c, r in self.date_ranges.items()},
        }


def _per_distinct(values: pd.Series, fn: Callable[[Any], Any]) -> tuple[np.ndarray, list[Any]]:
    """(codes, results): `fn` applied once per distinct non-missing value; codes -1 mark missing values."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, [fn(u) for u in uniques]


def _examples(values: pd.Series, mask: np.ndarray) -> list[str]:
    return [str(v) for v in pd.unique(values[mask])[:MAX_EXAMPLES]]


def clean_numbers(values: pd.Series, numbers: NumberFormat) -> tuple[pd.Series, ColumnProblem | None]:
    """A text column of numbers as floats (BAD values become NaN and are reported)."""
    if values.dtype.kind in "fiub":
        return values.astype(np.float64), None
    codes, results = _per_distinct(values, lambda v: parse_number(v, numbers))
    bad_u = np.array([r is BAD for r in results], dtype=bool)
    numbers_u = np.array([math.nan if r is BAD else r for r in results], dtype=np.float64)
    present = codes >= 0
    out = np.full(len(values), math.nan)
    out[present] = numbers_u[codes[present]]
    bad = np.zeros(len(values), dtype=bool)
    bad[present] = bad_u[codes[present]]
    problem = ColumnProblem(str(values.name), int(bad.sum()), _examples(values, bad)) if bad.any() else None
    return pd.Series(out, index=values.index, name=values.name), problem


def clean_dates(values: pd.Series, date: DateColumn) -> tuple[pd.Series, ColumnProblem | None]:
    """A text column of dates as datetime64 (BAD values become NaT and are reported)."""
    codes, results = _per_distinct(values, lambda v: parse_date(v, date))
    bad_u = np.array([r is BAD for r in results], dtype=bool)
    moments_u = pd.DatetimeIndex([None if (r is BAD or r is None) else r for r in results], dtype="datetime64[ns]") \
        if results else pd.DatetimeIndex([], dtype="datetime64[ns]")
    present = codes >= 0
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[ns]")
    out[present] = moments_u.to_numpy()[codes[present]]
    bad = np.zeros(len(values), dtype=bool)
    bad[present] = bad_u[codes[present]]
    problem = ColumnProblem(str(values.name), int(bad.sum()), _examples(values, bad)) if bad.any() else None
    return pd.Series(out, index=values.index, name=values.name), problem


def derive_date_features(moments: pd.Series, date: DateColumn) -> dict[str, pd.Series]:
    """`<column>_<part>` float columns from a cleaned date column (the same numbers as `date_part`)."""
    parts = {"year": moments.dt.year, "month": moments.dt.month, "day": moments.dt.day, "weekday": moments.dt.weekday}
    if "us_holiday" in date.derive:
        days = moments.dt.normalize()
        present = days.dropna()
        holidays = _us_holidays(present.min(), present.max()) if len(present) else pd.DatetimeIndex([])
        parts["us_holiday"] = days.isin(holidays).where(days.notna())
    return {f"{date.name}_{part}": parts[part].astype(np.float64) for part in date.derive}


def cap_column(values: pd.Series, cap: CategoryCap) -> pd.Series:
    if cap.keep is None:
        raise CleaningError(f"the category cap of {cap.name} is not fitted: preprocess fits it on the training split "
                            f"(use the resolved config it writes, config/dataset_config.json)")
    keep = frozenset(cap.keep)
    codes, results = _per_distinct(values, lambda v: capped_category(v, keep))
    mapped = np.array(results + [None], dtype=object)  # index -1 (missing) -> None
    return pd.Series(mapped[codes], index=values.index, name=values.name, dtype=object)


def clean_frame(frame: pd.DataFrame, config: DatasetConfig, *, caps: bool = True,
                labels: bool = True) -> tuple[pd.DataFrame, CleaningReport]:
    """The config's cleaning applied to a table (columns absent from it are skipped; the data checks name them):
    drop columns, read numbers and dates, derive date features, map labels (rows without one dropped when the
    config says so, and counted), cap categories (when `caps` and the caps are fitted)."""
    cleaning = config.cleaning
    report = CleaningReport(rows_in=len(frame))
    if cleaning.is_empty:
        report.rows_out = len(frame)
        return frame, report
    out = frame.drop(columns=[c for c in cleaning.drop_columns if c in frame.columns])
    report.dropped_columns = [c for c in cleaning.drop_columns if c in frame.columns]
    changed: dict[str, pd.Series] = {}
    if cleaning.numbers is not None:
        for col in cleaning.numbers.columns:
            if col in out.columns:
                changed[col], problem = clean_numbers(out[col], cleaning.numbers)
                report.parsed_numbers.append(col)
                if problem:
                    report.bad_numbers[col] = problem
    for date in cleaning.dates:
        if date.name in out.columns:
            moments, problem = clean_dates(out[date.name], date)
            changed[date.name] = moments
            changed.update(derive_date_features(moments, date))
            report.parsed_dates.append(date.name)
            if problem:
                report.bad_dates[date.name] = problem
            if moments.notna().any():
                report.date_ranges[date.name] = (str(moments.min().date()), str(moments.max().date()))
    if changed:
        out = out.assign(**changed)
    if labels and config.target in out.columns:
        out = _clean_target(out, config, report)
    if caps:
        for cap in cleaning.max_categories:
            if cap.name in out.columns:
                out = out.assign(**{cap.name: cap_column(out[cap.name], cap)})
    report.rows_out = len(out)
    return out, report


def _clean_target(frame: pd.DataFrame, config: DatasetConfig, report: CleaningReport) -> pd.DataFrame:
    cleaning, target = config.cleaning, config.target
    values = frame[target]
    if cleaning.target_values is not None:
        mapping = dict(cleaning.target_values)
        codes, results = _per_distinct(values, lambda v: target_class(v, mapping))
        bad_u = np.array([r is BAD for r in results], dtype=bool)
        missing_u = np.array([r is None for r in results], dtype=bool)
        mapped = np.array([None if (r is BAD or r is None) else r for r in results] + [None], dtype=object)
        present = codes >= 0
        bad = np.zeros(len(values), dtype=bool)
        bad[present] = bad_u[codes[present]]
        missing = ~present
        missing[present] |= missing_u[codes[present]]
        if bad.any():
            report.unmapped_labels = ColumnProblem(target, int(bad.sum()), _examples(values, bad))
        frame = frame.assign(**{target: pd.Series(mapped[codes], index=frame.index, dtype=object)})
        frame.loc[bad, target] = values[bad]  # unmapped values stay as they were, for the data checks to show
    else:
        codes, results = _per_distinct(values, label_text)
        missing_u = np.array([r is None for r in results] + [True], dtype=bool)
        missing = missing_u[codes]
    report.unlabeled = int(missing.sum())
    if cleaning.drops_unlabeled and report.unlabeled:
        frame = frame.loc[~missing]
        report.dropped_unlabeled = report.unlabeled
    return frame


def fit_category_caps(train: pd.DataFrame, config: DatasetConfig) -> DatasetConfig:
    """The config with each category cap's kept values fitted on the training rows: the `max` most frequent
    (ties by value), the rest become OTHER_CATEGORY."""
    caps = []
    for cap in config.cleaning.max_categories:
        counts = _key_counts(train[cap.name])
        ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        caps.append(CategoryCap(cap.name, cap.max_categories, tuple(str(k) for k, _ in ranked[: cap.max_categories])))
    import dataclasses

    return config.with_cleaning(dataclasses.replace(config.cleaning, max_categories=tuple(caps)))


def cap_summary(train_raw: pd.DataFrame, config: DatasetConfig) -> list[dict[str, Any]]:
    """Per capped column: distinct values seen, values kept, share of rows that became OTHER_CATEGORY."""
    out = []
    for cap in config.cleaning.max_categories:
        counts = _key_counts(train_raw[cap.name])
        kept = set(cap.keep or ())
        total = sum(counts.values())
        other = sum(n for key, n in counts.items() if key not in kept)
        out.append({"column": cap.name, "max": cap.max_categories, "distinct": len(counts),
                    "kept": len(kept), "other_rows": other,
                    "other_share": round(other / total, 6) if total else 0.0})
    return out


def _key_counts(values: pd.Series) -> dict[str, int]:
    """Rows per canonical category text (missing values left out), computed once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    per_code = np.bincount(codes[codes >= 0], minlength=len(uniques))
    counts: dict[str, int] = {}
    for value, n in zip(uniques, per_code):
        key = category_key(value)
        if key is not None and n:
            counts[key] = counts.get(key, 0) + int(n)
    return counts


def apply_caps(frame: pd.DataFrame, config: DatasetConfig) -> pd.DataFrame:
    changed = {cap.name: cap_column(frame[cap.name], cap) for cap in config.cleaning.max_categories
               if cap.name in frame.columns}
    return frame.assign(**changed) if changed else frame


def unique_in_order(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
