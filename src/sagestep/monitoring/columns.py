"""Which columns monitoring looks at, and how they are read: from the dataset config, as training did.

A baseline made from a dataset config carries that config (`dataset_config.json` beside statistics.json and
constraints.json, its cleaning fitted). Monitoring then reads current data the way the model does: raw rows go
through the config's cleaning (money text to numbers, dates to their derived features, capped categories), and
only the model's features are profiled and checked. The id, target and event-time columns, and every other
column of a raw extract, are not monitored: they are listed once (`not_monitored`), never reported as
`extra_column_check` violations.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sagestep.monitoring.files import DocumentError
from sagestep.training.cleaning import CleaningReport, clean_frame, fit_category_caps
from sagestep.training.config import ConfigError, DatasetConfig, dataset_config_from_dict, load_dataset_config

BASELINE_CONFIG = "dataset_config.json"


def load_baseline_config(baseline_dir: str | Path) -> DatasetConfig | None:
    """The dataset config a baseline was made with (None for a baseline made without one)."""
    path = Path(baseline_dir) / BASELINE_CONFIG
    if not path.is_file():
        return None
    try:
        return load_dataset_config(path)
    except ConfigError as exc:
        raise DocumentError(str(exc)) from None


def config_from_document(document: dict, source: str) -> DatasetConfig:
    try:
        return dataset_config_from_dict(document, source=source)
    except ConfigError as exc:
        raise DocumentError(str(exc)) from None


@dataclass
class MonitoredColumns:
    """The features of a dataset config, read from raw or cleaned rows; what else was seen is remembered."""

    config: DatasetConfig
    seen: dict[str, None] = field(default_factory=dict)  # every column of the input, in order
    cleaning: CleaningReport = field(default_factory=CleaningReport)

    @property
    def features(self) -> list[str]:
        return list(self.config.features.all)

    @property
    def read_names(self) -> list[str]:
        """Names for headerless CSV (data capture): the model's input columns, in request order."""
        return list(self.config.input_columns)

    def prepare(self, chunks: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Each chunk cleaned as training cleaned it and cut down to the features (those present)."""
        for chunk in chunks:
            self.seen.update(dict.fromkeys(map(str, chunk.columns)))
            cleaned, report = clean_frame(chunk, self.config, labels=False)
            self.cleaning = self.cleaning.merge(report)
            yield cleaned.loc[:, [f for f in self.features if f in cleaned.columns]]

    @property
    def not_monitored(self) -> dict[str, str]:
        """Input columns that are not features → why: id column, target, event time, a feature's date column,
        dropped by cleaning, or not a feature of the model."""
        config = self.config
        roles = {config.id_column: "id column", config.target: "target", config.event_time_column: "event time"}
        dates = {d.name for d in config.cleaning.dates}
        out = {}
        for column in self.seen:
            if column in self.features:
                continue
            if column in roles:
                out[column] = roles[column]
            elif column in dates:
                out[column] = "date column (its derived features are monitored)"
            elif column in config.cleaning.drop_columns:
                out[column] = "dropped by cleaning.drop_columns"
            elif column.startswith("_c"):
                out[column] = "a field beyond the model's input columns"
            else:
                out[column] = "not a feature of the model"
        return out

    def describe_not_monitored(self) -> str:
        groups: dict[str, list[str]] = {}
        for column, why in self.not_monitored.items():
            groups.setdefault(why, []).append(column)
        if not groups:
            return ""
        parts = [f"{why}: {', '.join(columns)}" for why, columns in groups.items()]
        return "not monitored (" + "; ".join(parts) + ")"

    def unreadable(self) -> list[str]:
        problems = [*self.cleaning.bad_numbers.values(), *self.cleaning.bad_dates.values()]
        return [f"{p.column}: {p.count} value(s) unreadable, e.g. {p.examples}" for p in problems]


def fit_for_baseline(config: DatasetConfig, data: pd.DataFrame) -> DatasetConfig:
    """A config whose category caps are not fitted yet (a hand-written one), fitted on the baseline data."""
    if config.cleaning.is_fitted:
        return config
    cleaned = clean_frame(data, config, caps=False, labels=False)[0]
    return fit_category_caps(cleaned, config)


def current_chunks(path: str | Path, statistics: dict, baseline_dir: str | Path,
                   report: object) -> tuple[Iterator[pd.DataFrame], MonitoredColumns | None]:
    """Current data as the monitors read it: through the baseline's dataset config when it has one (cleaned, the
    features only), else every column, headerless CSV named by the baseline's features."""
    from sagestep.monitoring.readers import iter_chunks

    config = load_baseline_config(baseline_dir)
    if config is None:
        names = [str(f.get("name")) for f in statistics.get("features", []) if isinstance(f, dict)]
        return iter_chunks(path, feature_names=names, report=report), None  # type: ignore[arg-type]
    columns = MonitoredColumns(config)
    chunks = iter_chunks(path, feature_names=columns.read_names, report=report)  # type: ignore[arg-type]
    return columns.prepare(chunks), columns
