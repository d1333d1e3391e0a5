"""Dataset config: what a dataset looks like, how its raw values are cleaned and which thresholds its models
must meet.

The config (YAML or JSON) is the contract between data and pipeline; nothing else in sagestep names a column.
Every key is required (no silent defaults); `event_time_column` and `id_column` may be null; `cleaning` may be
left out (raw values are then used as they are) and each of its sections is applied only when present. Every
error names the file, the field and the fix. `config_version` names the format (CONFIG_VERSION); the README's
"Dataset config" section documents every key.

This module only parses and checks the config (no pandas: the Lambda functions read it too); the cleaning itself
is `sagestep.training.cleaning`, the one transform that training, serving, batch scoring and monitoring apply.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
CONFIG_VERSION = 2  # 2: config_version and cleaning added (version 1 had neither)
PROBLEM_TYPES = ("BinaryClassification", "Regression")
# derived numeric features: <column>_<part>; weekday 0 = Monday; us_holiday 1 on a US federal holiday, else 0
DATE_PARTS = ("year", "month", "day", "weekday", "us_holiday")
UNLABELED_ROWS = ("drop", "refuse")
OTHER_CATEGORY = "(other)"  # what a capped categorical's rare and unseen values become
# A model line is named by the config's `name`: its registry group and endpoint are sagestep-<env>-<line>, which
# SageMaker limits to 63 characters of [a-zA-Z0-9-] (with 13 more for model and endpoint-config names).
MAX_LINE_LENGTH = 32
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_YEAR_DIRECTIVES = ("%Y", "%y", "%G")

Label = str | int | float | bool


class ConfigError(ValueError):
    """A dataset config is missing, unreadable or invalid; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class Features:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        """Model input columns in model order: numeric first, then categorical."""
        return self.numeric + self.categorical


@dataclass(frozen=True)
class PrivilegedGroup:
    """Selects the reference group of a protected attribute: a numeric range (min and/or max, inclusive)
    or a list of values."""

    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = None

    @property
    def is_numeric(self) -> bool:
        return self.values is None

    def describe(self, name: str) -> str:
        if self.values is not None:
            return f"{name} in {list(self.values)}"
        parts = []
        if self.min is not None:
            parts.append(f"{name} >= {self.min:g}")
        if self.max is not None:
            parts.append(f"{name} <= {self.max:g}")
        return " and ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        if self.values is not None:
            return {"values": list(self.values)}
        out: dict[str, Any] = {}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out


@dataclass(frozen=True)
class ProtectedAttribute:
    name: str
    privileged: PrivilegedGroup


@dataclass(frozen=True)
class SplitConfig:
    validation_fraction: float
    test_fraction: float
    seed: int


@dataclass(frozen=True)
class Thresholds:
    """A classifier's thresholds (min_auc, decision_threshold, disparate_impact, champion_margin in AUC) or a
    regressor's (naive_lag_days, max_error_ratio_to_naive, champion_margin as a fraction of the champion's RMSE);
    the other problem type's fields are None."""

    champion_margin: float
    min_auc: float | None = None
    decision_threshold: float | None = None
    disparate_impact: tuple[float, float] | None = None
    naive_lag_days: int | None = None  # the naive seasonal forecast: the target this many days earlier
    max_error_ratio_to_naive: float | None = None  # candidate RMSE ÷ naive RMSE must not exceed this

    def to_dict(self) -> dict[str, Any]:
        if self.min_auc is None:
            return {"naive_lag_days": self.naive_lag_days, "max_error_ratio_to_naive": self.max_error_ratio_to_naive,
                    "champion_margin": self.champion_margin}
        return {"min_auc": self.min_auc, "decision_threshold": self.decision_threshold,
                "disparate_impact": list(self.disparate_impact or ()), "champion_margin": self.champion_margin}


@dataclass(frozen=True)
class NumberFormat:
    """Numeric columns held as text such as `"$60,000.00 "`: currency symbols (Unicode category Sc) and surrounding
    spaces are removed, `thousands_separator` dropped, `decimal_separator` read as the decimal point, `(1,234)` is
    -1234."""

    columns: tuple[str, ...]
    thousands_separator: str
    decimal_separator: str

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "thousands_separator": self.thousands_separator,
                "decimal_separator": self.decimal_separator}


@dataclass(frozen=True)
class DateColumn:
    """A date column read with an explicit strptime `format`; with a two-digit year (`%y`), `pivot_year` is the
    first year of the 100-year window the years fall in (1950: 50–99 → 1950–1999, 00–49 → 2000–2049). `derive`
    adds numeric features `<name>_<part>`."""

    name: str
    format: str
    pivot_year: int | None
    derive: tuple[str, ...]

    @property
    def derived_features(self) -> tuple[str, ...]:
        return tuple(f"{self.name}_{part}" for part in self.derive)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format}
        if self.pivot_year is not None:
            out["pivot_year"] = self.pivot_year
        if self.derive:
            out["derive"] = list(self.derive)
        return out


@dataclass(frozen=True)
class CategoryCap:
    """A high-cardinality categorical kept to its `max_categories` most frequent training values; every other value
    becomes OTHER_CATEGORY. `keep` is filled when preprocessing fits the cap on the training split (and then
    recorded in the resolved config and the model)."""

    name: str
    max_categories: int
    keep: tuple[str, ...] | None = None

    def to_dict(self) -> Any:
        if self.keep is None:
            return self.max_categories
        return {"max": self.max_categories, "keep": list(self.keep)}


@dataclass(frozen=True)
class Cleaning:
    """The `cleaning` section: what turns raw rows into the values the model reads. Empty = values used as they are."""

    drop_columns: tuple[str, ...] = ()
    numbers: NumberFormat | None = None
    dates: tuple[DateColumn, ...] = ()
    target_values: tuple[tuple[str, Label], ...] | None = None  # (raw label text, class) pairs
    unlabeled_rows: str | None = None  # "drop" or "refuse"; None = refuse (not written back)
    max_categories: tuple[CategoryCap, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.to_dict()

    @property
    def number_columns(self) -> tuple[str, ...]:
        return self.numbers.columns if self.numbers else ()

    def date(self, name: str) -> DateColumn | None:
        return next((d for d in self.dates if d.name == name), None)

    def cap(self, name: str) -> CategoryCap | None:
        return next((c for c in self.max_categories if c.name == name), None)

    @property
    def derived(self) -> dict[str, tuple[str, str]]:
        """Derived feature → (date column, part)."""
        return {f"{d.name}_{part}": (d.name, part) for d in self.dates for part in d.derive}

    @property
    def is_fitted(self) -> bool:
        return all(c.keep is not None for c in self.max_categories)

    @property
    def drops_unlabeled(self) -> bool:
        return self.unlabeled_rows == "drop"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.drop_columns:
            out["drop_columns"] = list(self.drop_columns)
        if self.numbers is not None:
            out["numbers"] = self.numbers.to_dict()
        if self.dates:
            out["dates"] = {d.name: d.to_dict() for d in self.dates}
        if self.target_values is not None:
            out["target_values"] = {raw: label for raw, label in self.target_values}
        if self.unlabeled_rows is not None:
            out["unlabeled_rows"] = self.unlabeled_rows
        if self.max_categories:
            out["max_categories"] = {c.name: c.to_dict() for c in self.max_categories}
        return out


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    problem_type: str
    target: str
    positive_label: Label
    id_column: str | None
    event_time_column: str | None
    features: Features
    protected_attributes: tuple[ProtectedAttribute, ...]
    split: SplitConfig
    thresholds: Thresholds
    cleaning: Cleaning = Cleaning()
    source: str = "<dict>"  # the file it was read from, for error messages; not part of to_dict()

    @property
    def is_regression(self) -> bool:
        return self.problem_type == "Regression"

    @property
    def model_line(self) -> str:
        """The model line this dataset trains: `name` lowercased, `_` as `-` (its registry group and endpoint are
        sagestep-<environment>-<line>)."""
        return model_line(self.name)

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The raw columns a model of this config reads, in model order: the features, with derived date features
        replaced by their date column (once). What a scoring request sends."""
        derived = self.cleaning.derived
        cols: list[str] = []
        for feature in self.features.all:
            col = derived[feature][0] if feature in derived else feature
            if col not in cols:
                cols.append(col)
        return tuple(cols)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Every column the raw data must have, each once: id, event time, target, the model's input columns and
        the protected attributes."""
        return _unique(self.id_column, self.event_time_column, self.target, *self.input_columns,
                       *(a.name for a in self.protected_attributes))

    @property
    def prepared_columns(self) -> tuple[str, ...]:
        """The columns of the cleaned, prepared data (preprocess output): id, event time, target, the input columns
        (date columns as ISO dates), every feature (derived ones included) and the protected attributes."""
        return _unique(self.id_column, self.event_time_column, self.target, *self.input_columns,
                       *self.features.all, *(a.name for a in self.protected_attributes))

    def with_cleaning(self, cleaning: Cleaning) -> DatasetConfig:
        """The same config with another cleaning section (e.g. its category caps fitted)."""
        import dataclasses

        return dataclasses.replace(self, cleaning=cleaning)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config, in the same schema as the file (so `from_dict(to_dict())` round-trips)."""
        out = {
            "config_version": CONFIG_VERSION,
            "name": self.name,
            "problem_type": self.problem_type,
            "target": self.target,
            "positive_label": self.positive_label,
            "id_column": self.id_column,
            "event_time_column": self.event_time_column,
            "features": {"numeric": list(self.features.numeric), "categorical": list(self.features.categorical)},
            "protected_attributes": [
                {"name": a.name, "privileged": a.privileged.to_dict()} for a in self.protected_attributes
            ],
            "split": {
                "validation_fraction": self.split.validation_fraction,
                "test_fraction": self.split.test_fraction,
                "seed": self.split.seed,
            },
            "thresholds": self.thresholds.to_dict(),
        }
        if not self.cleaning.is_empty:
            out["cleaning"] = self.cleaning.to_dict()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def sha256(self) -> str:
        """Hash of the resolved config (canonical JSON), independent of the file's formatting."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _unique(*columns: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in columns if c is not None))


def model_line(name: str) -> str:
    """The model line of a dataset name: lowercase, runs of other characters than letters and digits as `-`."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def category_key(value: Any) -> str | None:
    """The canonical text of a categorical value, used wherever categories are compared: training, scoring,
    fairness groups. Missing values (None, NaN, NA, blank) give None; integral numbers lose their ".0" so
    the CSV's 4, a JSON 4.0 and the text "4" are the same category."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    return text or None


def label_text(value: Any) -> str | None:
    """Target values are compared by their canonical text too (positive_label 1 matches a CSV's 1 or 1.0)."""
    return category_key(value)


# --------------------------------------------------------------------------------------------- loading


def load_dataset_config(path: str | Path, source: str | None = None) -> DatasetConfig:
    """Read and validate a dataset config file (.yaml, .yml or .json). Errors name `source` (e.g. the S3 URI the
    file was copied from), else the path."""
    path = Path(path)
    shown = source or str(path)
    if path.suffix.lower() not in CONFIG_SUFFIXES:
        raise ConfigError(f"{shown}: unsupported config file type {path.suffix!r}; use one of {list(CONFIG_SUFFIXES)}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{shown}: file not found; pass the path of an existing dataset config") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the file ({exc.strerror}); check its permissions") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the config as UTF-8 "
                          "YAML or JSON") from None
    import yaml  # imported here: Lambda handlers read the resolved JSON config and need no YAML parser

    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{shown}: not valid {path.suffix.lstrip('.').upper()} ({_syntax_error(exc)}); "
                          f"fix the syntax") from None
    return dataset_config_from_dict(data, source=shown)


def _syntax_error(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {getattr(exc, 'problem', None) or exc}"
    return " ".join(str(exc).split())


def find_config_file(config_dir: str | Path) -> Path:
    """The one dataset config file in a directory (a SageMaker input channel holds exactly one)."""
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise ConfigError(f"{config_dir}: config directory not found; pass the directory holding the dataset config")
    found = sorted(p for p in config_dir.iterdir() if p.is_file() and p.suffix.lower() in CONFIG_SUFFIXES)
    if len(found) != 1:
        names = [p.name for p in found] or "none"
        others = sorted(p.name for p in config_dir.iterdir() if p.is_file() and p not in found and not p.name.startswith("."))
        hint = f" ({', '.join(others)}: not a config file name; rename it to .yaml)" if others and not found else ""
        raise ConfigError(
            f"{config_dir}: expected exactly one dataset config file ({', '.join(CONFIG_SUFFIXES)}), found {names}{hint}; "
            f"leave exactly one config in this directory"
        )
    return found[0]


def load_dataset_config_dir(config_dir: str | Path) -> DatasetConfig:
    return load_dataset_config(find_config_file(config_dir))


# --------------------------------------------------------------------------------------------- validation

_TOP_LEVEL = (
    "config_version",
    "name",
    "problem_type",
    "target",
    "positive_label",
    "id_column",
    "event_time_column",
    "features",
    "protected_attributes",
    "split",
    "thresholds",
)
_OPTIONAL_TOP_LEVEL = ("cleaning",)
_CLEANING_KEYS = ("drop_columns", "numbers", "dates", "target_values", "unlabeled_rows", "max_categories")


class _Reader:
    """Typed access to a parsed config mapping; every failure names source and dotted field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {field} {message}")

    def mapping(self, value: Any, field: str, keys: Sequence[str], optional: Sequence[str] = ()) -> Mapping:
        if not isinstance(value, Mapping):
            return_type = type(value).__name__
            raise self.fail(field or "the file", f"must be a mapping with keys {list(keys)}, got {return_type}")
        unknown = [k for k in value if k not in keys and k not in optional]
        if unknown:
            key = unknown[0]
            where = f"{field}.{key}" if field else str(key)
            known = ", ".join(map(str, [*keys, *optional]))
            raise self.fail(where, f"is not a known key; the known keys{' of ' + field if field else ''} are: "
                                   f"{known} (README: Dataset config)")
        missing = [k for k in keys if k not in value]
        if missing:
            where = f"{field}.{missing[0]}" if field else missing[0]
            raise self.fail(where, "is required; add it to the config")
        return value

    def string(self, value: Any, field: str, *, nullable: bool = False) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value.strip():
            null_hint = " or null" if nullable else ""
            raise self.fail(field, f"must be a non-empty string{null_hint}, got {value!r}")
        return value

    def number(
        self, value: Any, field: str, *, low: float, high: float, low_open: bool = False, high_open: bool = False
    ) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if ok:
            ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not ok:
            lo = "(" if low_open else "["
            hi = ")" if high_open else "]"
            raise self.fail(field, f"must be a number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
        return float(value)

    def integer(self, value: Any, field: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(field, f"must be a non-negative integer, got {value!r}")
        return value

    def string_list(self, value: Any, field: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(field, f"must be a list of column names (strings), got {value!r}")
        duplicates = sorted({v for v in value if value.count(v) > 1})
        if duplicates:
            raise self.fail(field, f"lists {duplicates} more than once; list each column once")
        return tuple(value)


def dataset_config_from_dict(data: Any, source: str = "<dict>") -> DatasetConfig:
    """Validate a parsed config (from YAML/JSON or `DatasetConfig.to_dict()`)."""
    r = _Reader(source)
    if data is None:
        raise ConfigError(f"{source}: the file is empty; write a dataset config (see ml/config/credit_data.yaml)")
    top = r.mapping(data, "", _TOP_LEVEL, optional=_OPTIONAL_TOP_LEVEL) if not _is_version_1(data) else None
    if top is None:
        raise r.fail("config_version", f"is required; this is a version 1 config: add `config_version: "
                                       f"{CONFIG_VERSION}` (optionally with a cleaning section; README: Dataset config)")
    version = top["config_version"]
    if version != CONFIG_VERSION or isinstance(version, bool):
        raise r.fail("config_version", f"must be {CONFIG_VERSION} (the format this sagestep reads), got {version!r}")

    name = r.string(top["name"], "name")
    if not _NAME.match(name) or len(model_line(name)) > MAX_LINE_LENGTH:  # type: ignore[arg-type]
        raise r.fail("name", f"must be letters, digits, _ and - (starting with a letter or digit), at most "
                             f"{MAX_LINE_LENGTH} characters: it names the model line, its registry group and "
                             f"endpoint; got {name!r}")
    problem_type = r.string(top["problem_type"], "problem_type")
    if problem_type not in PROBLEM_TYPES:
        raise r.fail("problem_type", f"must be one of {list(PROBLEM_TYPES)}, got {problem_type!r}")
    target = r.string(top["target"], "target")
    positive_label = top["positive_label"]
    if problem_type == "Regression":
        if positive_label is not None:
            raise r.fail("positive_label", f"must be null for a Regression (the target is a number, not a class), "
                                           f"got {positive_label!r}")
    elif isinstance(positive_label, bool):
        raise r.fail("positive_label", f"is the YAML boolean {positive_label} (from true/false/yes/no/on/off); quote "
                                       f"it to mean the text, e.g. positive_label: \"yes\"")
    elif positive_label is None or isinstance(positive_label, list | dict) or positive_label == "":
        raise r.fail(
            "positive_label", f"must be the target value of the event the model scores (e.g. bad), got {positive_label!r}"
        )
    id_column = r.string(top["id_column"], "id_column", nullable=True)
    event_time_column = r.string(top["event_time_column"], "event_time_column", nullable=True)

    feats = r.mapping(top["features"], "features", ("numeric", "categorical"))
    numeric = r.string_list(feats["numeric"], "features.numeric")
    categorical = r.string_list(feats["categorical"], "features.categorical")
    both = sorted(set(numeric) & set(categorical))
    if both:
        raise r.fail("features", f"lists {both} as both numeric and categorical; keep each column in one list")
    if not numeric and not categorical:
        raise r.fail("features", "lists no feature; add columns to features.numeric or features.categorical")
    for special, field in ((target, "target"), (id_column, "id_column"), (event_time_column, "event_time_column")):
        if special is not None and special in numeric + categorical:
            raise r.fail("features", f"must not include the {field} column {special!r}; remove it from the features")

    raw_attrs = top["protected_attributes"]
    if raw_attrs is None:
        raw_attrs = []
    if not isinstance(raw_attrs, list):
        raise r.fail("protected_attributes", f"must be a list (possibly empty) of {{name, privileged}}, got {raw_attrs!r}")
    attrs = tuple(_protected_attribute(r, item, f"protected_attributes[{i}]") for i, item in enumerate(raw_attrs))
    names = [a.name for a in attrs]
    if len(set(names)) != len(names):
        raise r.fail("protected_attributes", f"names {names} repeat; list each attribute once")
    if target in names:
        raise r.fail("protected_attributes", f"must not include the target column {target!r}")

    sp = r.mapping(top["split"], "split", ("validation_fraction", "test_fraction", "seed"))
    split = SplitConfig(
        validation_fraction=r.number(
            sp["validation_fraction"], "split.validation_fraction", low=0, high=1, low_open=True, high_open=True
        ),
        test_fraction=r.number(sp["test_fraction"], "split.test_fraction", low=0, high=1, low_open=True, high_open=True),
        seed=r.integer(sp["seed"], "split.seed"),
    )
    if split.validation_fraction + split.test_fraction >= 0.9:
        raise r.fail(
            "split",
            f"validation_fraction + test_fraction = {split.validation_fraction + split.test_fraction:g} leaves "
            f"under 10% for training; lower them (e.g. 0.15 and 0.20)",
        )

    thresholds = _regression_thresholds(r, top["thresholds"]) if problem_type == "Regression" \
        else _classification_thresholds(r, top["thresholds"])
    if problem_type == "Regression" and attrs:
        raise r.fail("protected_attributes", "must be empty for a Regression: the fairness measures (disparate "
                                             "impact of approvals) apply to classifiers; set protected_attributes: []")

    config = DatasetConfig(
        name=name,  # type: ignore[arg-type]
        problem_type=problem_type,  # type: ignore[arg-type]
        target=target,  # type: ignore[arg-type]
        positive_label=positive_label,
        id_column=id_column,
        event_time_column=event_time_column,
        features=Features(numeric=numeric, categorical=categorical),
        protected_attributes=attrs,
        split=split,
        thresholds=thresholds,
        source=source,
    )
    if "cleaning" in top and top["cleaning"] is not None:
        config = config.with_cleaning(_cleaning(r, top["cleaning"], config))
    return config


def _classification_thresholds(r: _Reader, value: Any) -> Thresholds:
    th = r.mapping(value, "thresholds", ("min_auc", "decision_threshold", "disparate_impact", "champion_margin"))
    di = th["disparate_impact"]
    if not (isinstance(di, list) and len(di) == 2):
        raise r.fail("thresholds.disparate_impact", f"must be a list [low, high] such as [0.8, 1.25], got {di!r}")
    di_low = r.number(di[0], "thresholds.disparate_impact[0]", low=0, high=1)
    di_high = r.number(di[1], "thresholds.disparate_impact[1]", low=1, high=math.inf, high_open=True)
    return Thresholds(
        min_auc=r.number(th["min_auc"], "thresholds.min_auc", low=0, high=1),
        decision_threshold=r.number(
            th["decision_threshold"], "thresholds.decision_threshold", low=0, high=1, low_open=True, high_open=True
        ),
        disparate_impact=(di_low, di_high),
        champion_margin=r.number(th["champion_margin"], "thresholds.champion_margin", low=0, high=1),
    )



def _regression_thresholds(r: _Reader, value: Any) -> Thresholds:
    th = r.mapping(value, "thresholds", ("naive_lag_days", "max_error_ratio_to_naive", "champion_margin"))
    lag = th["naive_lag_days"]
    if not isinstance(lag, int) or isinstance(lag, bool) or lag < 1:
        raise r.fail("thresholds.naive_lag_days", f"must be a whole number of days >= 1 (364: the same weekday a "
                                                  f"year earlier), got {lag!r}")
    return Thresholds(
        naive_lag_days=lag,
        max_error_ratio_to_naive=r.number(th["max_error_ratio_to_naive"], "thresholds.max_error_ratio_to_naive",
                                          low=0, high=math.inf, low_open=True, high_open=True),
        champion_margin=r.number(th["champion_margin"], "thresholds.champion_margin", low=0, high=1),
    )


def _is_version_1(data: Any) -> bool:
    """A mapping with the version-1 keys and no config_version: say what to add rather than 'key is required'."""
    return isinstance(data, Mapping) and "config_version" not in data and "features" in data and "target" in data


def _cleaning(r: _Reader, value: Any, config: DatasetConfig) -> Cleaning:
    """Parse and cross-check the cleaning section against the rest of the config."""
    section = r.mapping(value, "cleaning", (), optional=_CLEANING_KEYS)
    features = config.features
    special = {config.target: "target", config.id_column: "id_column", config.event_time_column: "event_time_column"}
    protected = {a.name: a for a in config.protected_attributes}

    drop = r.string_list(section.get("drop_columns"), "cleaning.drop_columns")
    for col in drop:
        if col in features.all or col in special or col in protected:
            role = special.get(col) or ("a protected attribute" if col in protected else "a feature")
            raise r.fail("cleaning.drop_columns", f"drops {col!r}, which the config uses as {role}; remove it "
                                                  f"from drop_columns or from where it is used")

    numbers = None
    if section.get("numbers") is not None:
        raw = r.mapping(section["numbers"], "cleaning.numbers", ("columns", "thousands_separator", "decimal_separator"))
        columns = r.string_list(raw["columns"], "cleaning.numbers.columns")
        numeric_ok = set(features.numeric) | {a.name for a in config.protected_attributes if a.privileged.is_numeric}
        for col in columns:
            if col not in numeric_ok:
                raise r.fail("cleaning.numbers.columns", f"lists {col!r}, which is not a numeric feature (or a "
                                                         f"protected attribute with a min/max group); add it to "
                                                         f"features.numeric or remove it here")
        seps = {}
        for key in ("thousands_separator", "decimal_separator"):
            sep = raw[key]
            if not isinstance(sep, str) or len(sep) > 1 or sep.isdigit() or sep in "+-()":
                raise r.fail(f"cleaning.numbers.{key}", f"must be one character such as \",\" or \".\" (\"\" for "
                                                        f"none), got {sep!r}")
            seps[key] = sep
        if not seps["decimal_separator"]:
            raise r.fail("cleaning.numbers.decimal_separator", "must be one character (\".\" or \",\")")
        if seps["thousands_separator"] == seps["decimal_separator"]:
            raise r.fail("cleaning.numbers", "uses the same character as thousands and decimal separator")
        numbers = NumberFormat(columns, seps["thousands_separator"], seps["decimal_separator"])

    dates: list[DateColumn] = []
    raw_dates = section.get("dates")
    if raw_dates is not None:
        if not isinstance(raw_dates, Mapping) or not raw_dates:
            raise r.fail("cleaning.dates", f"must map each date column to {{format, pivot_year, derive}}, got {raw_dates!r}")
        for col, spec in raw_dates.items():
            dates.append(_date_column(r, str(col), spec, config))

    derived = {f"{d.name}_{part}" for d in dates for part in d.derive}
    date_names = {d.name for d in dates}
    for feature in features.all:
        if feature in date_names:
            raise r.fail("features", f"lists the date column {feature!r}; a model reads numbers and categories: "
                                     f"derive features from it (cleaning.dates.{feature}.derive: [year, month]) "
                                     f"and list those")
        for d in dates:
            if feature.startswith(d.name + "_") and feature not in derived:
                raise r.fail("features", f"lists {feature!r}, but cleaning.dates.{d.name}.derive does not derive "
                                         f"it; derive one of {list(DATE_PARTS)}")
    for feature in derived:
        if feature in features.categorical:
            raise r.fail("features.categorical", f"lists the derived date feature {feature!r}; derived features "
                                                 f"are numbers: list it in features.numeric")
        if feature not in features.numeric:
            raise r.fail("cleaning.dates", f"derives {feature!r} but features.numeric does not list it; list it "
                                           f"or remove the part from derive")
    for col in date_names:
        if col in drop:
            raise r.fail("cleaning.drop_columns", f"drops the date column {col!r} that cleaning.dates reads")
        if col != config.event_time_column and not any(f in derived for f in features.numeric if f.startswith(col)):
            raise r.fail(f"cleaning.dates.{col}", "is neither the event_time_column nor derives a feature; remove "
                                                  "it or add derive: [year, month]")

    target_values = None
    if section.get("target_values") is not None:
        if config.is_regression:
            raise r.fail("cleaning.target_values", "maps labels to classes, which a Regression has none of; remove it")
        raw_map = section["target_values"]
        if not isinstance(raw_map, Mapping) or not raw_map:
            raise r.fail("cleaning.target_values", f"must map each raw {config.target} value to its class (e.g. "
                                                   f"{{CHGOFF: bad, \"P I F\": good}}), got {raw_map!r}")
        pairs = []
        for raw_label, cls in raw_map.items():
            key = category_key(raw_label)
            if key is None or isinstance(raw_label, bool) or cls is None or isinstance(cls, bool | list | dict):
                raise r.fail("cleaning.target_values", f"maps {raw_label!r} to {cls!r}; keys and classes must be "
                                                       f"text or numbers (quote yes/no/true/false)")
            pairs.append((key, cls))
        classes = sorted({label_text(c) for _, c in pairs})  # type: ignore[misc]
        if len(classes) != 2 or label_text(config.positive_label) not in classes:
            raise r.fail("cleaning.target_values", f"maps to the classes {classes}; it must map to exactly two, one "
                                                   f"of them positive_label {config.positive_label!r}")
        target_values = tuple(pairs)

    unlabeled = section.get("unlabeled_rows")
    if unlabeled is not None and unlabeled not in UNLABELED_ROWS:
        raise r.fail("cleaning.unlabeled_rows", f"must be one of {list(UNLABELED_ROWS)}, got {unlabeled!r}")

    caps: list[CategoryCap] = []
    raw_caps = section.get("max_categories")
    if raw_caps is not None:
        if not isinstance(raw_caps, Mapping) or not raw_caps:
            raise r.fail("cleaning.max_categories", f"must map categorical features to a number of categories, "
                                                    f"got {raw_caps!r}")
        for col, spec in raw_caps.items():
            field = f"cleaning.max_categories.{col}"
            if col not in features.categorical:
                raise r.fail(field, "is not a categorical feature; list it in features.categorical or remove it")
            keep = None
            if isinstance(spec, Mapping):  # fitted: written by preprocess into the resolved config
                spec = r.mapping(spec, field, ("max", "keep"))
                keep = r.string_list(spec["keep"], f"{field}.keep")
                spec = spec["max"]
            if not isinstance(spec, int) or isinstance(spec, bool) or spec < 1:
                raise r.fail(field, f"must be a positive whole number of categories to keep, got {spec!r}")
            if keep is not None and len(keep) > spec:
                raise r.fail(f"{field}.keep", f"holds {len(keep)} values, more than max {spec}")
            caps.append(CategoryCap(str(col), spec, keep))

    return Cleaning(drop_columns=drop, numbers=numbers, dates=tuple(dates), target_values=target_values,
                    unlabeled_rows=unlabeled, max_categories=tuple(caps))


def _date_column(r: _Reader, col: str, spec: Any, config: DatasetConfig) -> DateColumn:
    field = f"cleaning.dates.{col}"
    spec = r.mapping(spec, field, ("format",), optional=("pivot_year", "derive"))
    fmt = r.string(spec["format"], f"{field}.format")
    if not any(d in fmt for d in _YEAR_DIRECTIVES):  # type: ignore[operator]
        raise r.fail(f"{field}.format", f"{fmt!r} has no year (%Y or %y); give the whole date format, e.g. '%d-%b-%Y'")
    pivot = spec.get("pivot_year")
    if "%y" in fmt:  # type: ignore[operator]
        if pivot is None:
            raise r.fail(field, f"reads two-digit years ({fmt!r} has %y) without pivot_year; add pivot_year, the "
                                f"first year of the 100-year window they fall in (e.g. pivot_year: 1950 reads "
                                f"50–99 as 1950–1999 and 00–49 as 2000–2049)")
        if not isinstance(pivot, int) or isinstance(pivot, bool) or not 1000 <= pivot <= 9899:
            raise r.fail(f"{field}.pivot_year", f"must be a year such as 1950, got {pivot!r}")
    elif pivot is not None:
        raise r.fail(f"{field}.pivot_year", f"only applies to two-digit years (%y); {fmt!r} has none: remove it")
    derive = r.string_list(spec.get("derive"), f"{field}.derive")
    bad = [p for p in derive if p not in DATE_PARTS]
    if bad:
        raise r.fail(f"{field}.derive", f"has {bad}; derivable parts are {list(DATE_PARTS)}")
    if col in (config.target, config.id_column):
        raise r.fail(field, f"{col!r} is the target or id column, not a date to clean")
    return DateColumn(col, fmt, pivot, derive)  # type: ignore[arg-type]


def _protected_attribute(r: _Reader, item: Any, field: str) -> ProtectedAttribute:
    item = r.mapping(item, field, ("name", "privileged"))
    name = r.string(item["name"], f"{field}.name")
    priv = item["privileged"]
    pfield = f"{field}.privileged"
    if not isinstance(priv, Mapping) or not priv:
        raise r.fail(pfield, f"must be one of {{min: N}}, {{max: N}}, {{min: N, max: M}} or {{values: [...]}}, got {priv!r}")
    r.mapping(priv, pfield, (), optional=("min", "max", "values"))
    if "values" in priv:
        if "min" in priv or "max" in priv:
            raise r.fail(pfield, "mixes values with min/max; use either a numeric range or a list of values")
        values = priv["values"]
        if not isinstance(values, list) or not values or any(v is None or isinstance(v, list | dict) for v in values):
            raise r.fail(f"{pfield}.values", f"must be a non-empty list of attribute values, got {values!r}")
        if any(isinstance(v, bool) for v in values):
            raise r.fail(f"{pfield}.values", f"holds a YAML boolean ({values!r}); quote values such as \"yes\" or "
                                             f"\"no\" to mean the text")
        # Compared with the data by their text, so YAML's `[1, 2]` and the CSV's "1","2" agree.
        return ProtectedAttribute(name, PrivilegedGroup(values=tuple(category_key(v) for v in values)))  # type: ignore[misc]
    low = r.number(priv["min"], f"{pfield}.min", low=-math.inf, high=math.inf, low_open=True, high_open=True) if "min" in priv else None
    high = r.number(priv["max"], f"{pfield}.max", low=-math.inf, high=math.inf, low_open=True, high_open=True) if "max" in priv else None
    if low is not None and high is not None and low > high:
        raise r.fail(pfield, f"min ({low:g}) is greater than max ({high:g}); swap them")
    return ProtectedAttribute(name, PrivilegedGroup(min=low, max=high))  # type: ignore[arg-type]
