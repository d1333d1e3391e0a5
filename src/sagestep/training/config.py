"""Dataset config: what a dataset looks like and which thresholds its models must meet.

The config (YAML or JSON) is the contract between data and pipeline; nothing else in sagestep names a column.
Every key is required (no silent defaults); `event_time_column` and `id_column` may be null. Every error names
the file, the field and the fix.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
PROBLEM_TYPES = ("BinaryClassification",)

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
    min_auc: float
    decision_threshold: float
    disparate_impact: tuple[float, float]
    champion_margin: float


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
    source: str = "<dict>"  # the file it was read from, for error messages; not part of to_dict()

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Every column the raw data must have, each once, in output order."""
        cols: list[str] = []
        for col in (self.id_column, self.event_time_column, self.target, *self.features.all):
            if col is not None and col not in cols:
                cols.append(col)
        for attr in self.protected_attributes:
            if attr.name not in cols:
                cols.append(attr.name)
        return tuple(cols)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config, in the same schema as the file (so `from_dict(to_dict())` round-trips)."""
        return {
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
            "thresholds": {
                "min_auc": self.thresholds.min_auc,
                "decision_threshold": self.thresholds.decision_threshold,
                "disparate_impact": list(self.thresholds.disparate_impact),
                "champion_margin": self.thresholds.champion_margin,
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def sha256(self) -> str:
        """Hash of the resolved config (canonical JSON), independent of the file's formatting."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


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


def load_dataset_config(path: str | Path) -> DatasetConfig:
    """Read and validate a dataset config file (.yaml, .yml or .json)."""
    path = Path(path)
    if path.suffix.lower() not in CONFIG_SUFFIXES:
        raise ConfigError(f"{path}: unsupported config file type {path.suffix!r}; use one of {list(CONFIG_SUFFIXES)}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; pass the path of an existing dataset config") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror}); check its permissions") from None
    import yaml  # imported here: Lambda handlers read the resolved JSON config and need no YAML parser

    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper()} ({_syntax_error(exc)}); "
                          f"fix the syntax") from None
    return dataset_config_from_dict(data, source=str(path))


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
        raise ConfigError(
            f"{config_dir}: expected exactly one dataset config file ({', '.join(CONFIG_SUFFIXES)}), found {names}; "
            f"leave exactly one config in this directory"
        )
    return found[0]


def load_dataset_config_dir(config_dir: str | Path) -> DatasetConfig:
    return load_dataset_config(find_config_file(config_dir))


# --------------------------------------------------------------------------------------------- validation

_TOP_LEVEL = (
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
            close = difflib.get_close_matches(str(key), [*keys, *optional], n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {[*keys, *optional]}"
            where = f"{field}.{key}" if field else str(key)
            raise self.fail(where, f"is not a known key; {hint}")
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
    top = r.mapping(data, "", _TOP_LEVEL)

    name = r.string(top["name"], "name")
    problem_type = r.string(top["problem_type"], "problem_type")
    if problem_type not in PROBLEM_TYPES:
        raise r.fail("problem_type", f"must be one of {list(PROBLEM_TYPES)}, got {problem_type!r}")
    target = r.string(top["target"], "target")
    positive_label = top["positive_label"]
    if isinstance(positive_label, bool):
        raise r.fail("positive_label", f"is the YAML boolean {positive_label} (from true/false/yes/no/on/off); quote "
                                       f"it to mean the text, e.g. positive_label: \"yes\"")
    if positive_label is None or isinstance(positive_label, list | dict) or positive_label == "":
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

    th = r.mapping(top["thresholds"], "thresholds", ("min_auc", "decision_threshold", "disparate_impact", "champion_margin"))
    di = th["disparate_impact"]
    if not (isinstance(di, list) and len(di) == 2):
        raise r.fail("thresholds.disparate_impact", f"must be a list [low, high] such as [0.8, 1.25], got {di!r}")
    di_low = r.number(di[0], "thresholds.disparate_impact[0]", low=0, high=1)
    di_high = r.number(di[1], "thresholds.disparate_impact[1]", low=1, high=math.inf, high_open=True)
    thresholds = Thresholds(
        min_auc=r.number(th["min_auc"], "thresholds.min_auc", low=0, high=1),
        decision_threshold=r.number(
            th["decision_threshold"], "thresholds.decision_threshold", low=0, high=1, low_open=True, high_open=True
        ),
        disparate_impact=(di_low, di_high),
        champion_margin=r.number(th["champion_margin"], "thresholds.champion_margin", low=0, high=1),
    )

    return DatasetConfig(
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
