"""Baseline statistics and suggested constraints for the feature columns the endpoint will see."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from sagestep.monitoring.constraints import suggest_constraints
from sagestep.monitoring.statistics import compute_statistics, feature_types_from_config


class BaselineInputError(ValueError):
    """The baseline data lacks feature columns named by the dataset config."""


def select_features(chunks: Iterable[pd.DataFrame], columns: Sequence[str], source: str) -> Iterator[pd.DataFrame]:
    """Each chunk cut down to `columns`, in that order; a missing column is an error naming it and `source`."""
    for chunk in chunks:
        missing = [c for c in columns if c not in chunk.columns]
        if missing:
            raise BaselineInputError(
                f"{source}: feature columns {missing} of the dataset config are not in the data "
                f"(columns: {list(map(str, chunk.columns))}); fix the config's features or the data"
            )
        yield chunk[list(columns)]


def build_baseline(
    data: pd.DataFrame | Iterable[pd.DataFrame],
    *,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    source: str = "baseline data",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics.json, constraints.json). With feature lists, only those columns (numeric, then categorical)."""
    chunks: Iterable[pd.DataFrame] = [data] if isinstance(data, pd.DataFrame) else data
    feature_types: Mapping[str, str] | None = None
    if numeric is not None or categorical is not None:
        numeric, categorical = list(numeric or []), list(categorical or [])
        chunks = select_features(chunks, numeric + categorical, source)
        feature_types = feature_types_from_config(numeric, categorical)
    statistics = compute_statistics(chunks, feature_types)
    return statistics, suggest_constraints(statistics)
