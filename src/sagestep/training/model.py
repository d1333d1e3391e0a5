"""The model artifact and `ScoringModel`, used by evaluation, batch scoring, monitoring and the endpoint.

A model directory holds the booster file (`model.txt` for LightGBM, `model.json` for XGBoost) and
`model_meta.json`: features in model order, feature types, the category → code mapping of each categorical
feature, the decision threshold, algorithm, positive label, hyperparameters, best iteration, the hashes of
the training data and `dataset_config`, the resolved dataset config with its fitted cleaning (category caps
included), so whatever scores with the model cleans raw rows exactly as training did. Categories are encoded with
the stored mapping everywhere (training, evaluation, serving): a category unseen in training and a missing value
both become NaN, which the boosters route as missing (a capped column's unseen values become its "(other)"
category first).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sagestep.training.config import DatasetConfig, category_key, dataset_config_from_dict

MODEL_META_FILE = "model_meta.json"
MODEL_ARCHIVE = "model.tar.gz"  # what SageMaker makes of /opt/ml/model
BOOSTER_FILES = {"lightgbm": "model.txt", "xgboost": "model.json"}
ALGORITHMS = tuple(BOOSTER_FILES)
META_FORMAT_VERSION = 1
NUMERIC = "numeric"
CATEGORICAL = "categorical"
BIAS_COLUMN = "bias"

# Above this many rows, raw (non-DataFrame) input is encoded column-wise through pandas instead of per value.
_ROW_PATH_MAX_ROWS = 64
_SINGLE_THREAD_MAX_ROWS = 256


class ModelInputError(ValueError):
    """The input to score does not match the model's features; the message names the feature and the fix."""


def normalize_categories(values: pd.Series) -> pd.Series:
    """`category_key` over a column, vectorised for the common dtypes (object dtype, None for missing)."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return _map_category_key(values)
    if pd.api.types.is_integer_dtype(dtype):
        text = values.astype("Int64").astype("string")
    elif pd.api.types.is_float_dtype(dtype):
        finite = values.dropna()
        if not bool(((finite == np.floor(finite)) & (finite.abs() < 2**53)).all()):
            return _map_category_key(values)
        text = values.astype("Int64").astype("string")
    elif pd.api.types.is_string_dtype(dtype):
        text = values.astype("string").str.strip()
        text = text.mask((text == "").fillna(False).astype(bool))
    else:
        return _map_category_key(values)
    return text.astype(object).where(text.notna(), None)


def _map_category_key(values: pd.Series) -> pd.Series:
    """`category_key` once per distinct value, broadcast back (a column of 200k rows holds a few dozen)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    keys = np.array([category_key(u) for u in uniques] + [None], dtype=object)
    return pd.Series(keys[codes], index=values.index, dtype=object)


def category_mapping(values: pd.Series) -> list[str]:
    """The categories of one training column, sorted (their position is the code)."""
    keys = normalize_categories(values).dropna().unique()
    return sorted(str(k) for k in keys)


class ScoringModel:
    """A trained binary scorer: probability of the positive label (e.g. default) from raw feature values."""

    def __init__(
        self,
        *,
        algorithm: str,
        booster: Any,
        features: Sequence[str],
        feature_types: Mapping[str, str],
        categorical: Mapping[str, Sequence[str]],
        threshold: float | None,
        positive_label: Any,
        target: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}, got {algorithm!r}")
        self.algorithm = algorithm
        self.booster = booster
        self.features: list[str] = list(features)
        self.feature_types: dict[str, str] = {f: feature_types[f] for f in self.features}
        self.categorical: dict[str, list[str]] = {f: list(v) for f, v in categorical.items()}
        self.threshold = float(threshold) if threshold is not None else None  # None: a regressor
        self.positive_label = positive_label
        self.target = target
        self.metadata: dict[str, Any] = dict(metadata or {})
        # Per feature: None for numeric, else category → code (a float, as the boosters read codes as floats).
        self._lookups: list[dict[str, float] | None] = [
            {c: float(i) for i, c in enumerate(self.categorical[f])} if self.feature_types[f] == CATEGORICAL else None
            for f in self.features
        ]
        self._xgb_threads: int | None = None
        self._xgb_feature_types = ["c" if self.feature_types[f] == CATEGORICAL else "q" for f in self.features]
        self._config: DatasetConfig | None = None

    # ------------------------------------------------------------------------------------ dataset config

    @property
    def dataset_config(self) -> DatasetConfig | None:
        """The resolved dataset config the model was trained with (None for models saved before it was recorded)."""
        if self._config is None and isinstance(self.metadata.get("dataset_config"), Mapping):
            self._config = dataset_config_from_dict(self.metadata["dataset_config"],
                                                    source=f"{MODEL_META_FILE} dataset_config")
        return self._config

    @property
    def is_regression(self) -> bool:
        """A regressor predicts a number (its "score" is the prediction); a classifier has a decision threshold."""
        return self.threshold is None

    @property
    def cleans(self) -> bool:
        config = self.dataset_config
        return config is not None and not config.cleaning.is_empty

    @property
    def input_columns(self) -> list[str]:
        """What a scoring request sends, in order: the features, with derived date features replaced by their date
        column. The same as `features` for a model without a cleaning section."""
        config = self.dataset_config
        return list(config.input_columns) if config is not None and self.cleans else list(self.features)

    @property
    def plain_numeric_inputs(self) -> list[str]:
        """Input columns read as plain numbers (numeric features the cleaning does not parse from text)."""
        config = self.dataset_config
        cleaned = set(config.cleaning.number_columns) if config is not None else set()
        return [c for c in self.input_columns if self.feature_types.get(c) == NUMERIC and c not in cleaned]

    def clean(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Raw (or already cleaned) rows through the config's cleaning, as training saw them; idempotent."""
        if not self.cleans:
            return frame
        from sagestep.training.cleaning import clean_frame

        return clean_frame(frame, self.dataset_config, labels=False)[0]  # type: ignore[arg-type]

    # ------------------------------------------------------------------------------------ persistence

    def to_meta(self) -> dict[str, Any]:
        return {
            **self.metadata,
            "format_version": META_FORMAT_VERSION,
            "algorithm": self.algorithm,
            "booster_file": BOOSTER_FILES[self.algorithm],
            "target": self.target,
            "positive_label": self.positive_label,
            "features": self.features,
            "feature_types": self.feature_types,
            "categorical": self.categorical,
            "threshold": self.threshold,
        }

    def save(self, model_dir: str | Path) -> None:
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        booster_path = model_dir / BOOSTER_FILES[self.algorithm]
        self.booster.save_model(str(booster_path))
        (model_dir / MODEL_META_FILE).write_text(json.dumps(self.to_meta(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_artifact(cls, model_dir: Path, workdir: Path) -> ScoringModel:
        """The model in a job's model channel: `model.tar.gz` (extracted into `workdir`) or an extracted directory."""
        import tarfile

        archive = model_dir / MODEL_ARCHIVE
        if archive.is_file():
            with tarfile.open(archive) as tar:
                tar.extractall(workdir, filter="data")
            return cls.load(workdir)
        if (model_dir / MODEL_META_FILE).is_file():
            return cls.load(model_dir)
        raise ModelInputError(f"{model_dir}: no {MODEL_ARCHIVE} (nor an extracted {MODEL_META_FILE}); point the model "
                              f"input at the training job's model artifact")

    @classmethod
    def load(cls, model_dir: str | Path) -> ScoringModel:
        model_dir = Path(model_dir)
        meta_path = model_dir / MODEL_META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{meta_path}: not found; a model directory holds {MODEL_META_FILE} and the booster file "
                f"(extract model.tar.gz into it)"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        algorithm = meta.get("algorithm")
        if algorithm not in ALGORITHMS:
            raise ValueError(f"{meta_path}: algorithm must be one of {list(ALGORITHMS)}, got {algorithm!r}")
        booster_path = model_dir / BOOSTER_FILES[algorithm]
        if not booster_path.is_file():
            raise FileNotFoundError(f"{booster_path}: booster file missing; the model directory is incomplete")
        booster = _load_booster(algorithm, booster_path)
        known = {"format_version", "algorithm", "booster_file", "target", "positive_label", "features",
                 "feature_types", "categorical", "threshold"}
        return cls(
            algorithm=algorithm,
            booster=booster,
            features=meta["features"],
            feature_types=meta["feature_types"],
            categorical=meta["categorical"],
            threshold=meta["threshold"],
            positive_label=meta["positive_label"],
            target=meta["target"],
            metadata={k: v for k, v in meta.items() if k not in known},
        )

    # ------------------------------------------------------------------------------------ encoding

    def encode(self, data: pd.DataFrame | np.ndarray | Sequence[Sequence[Any]] | Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Raw feature values → the float matrix the booster reads (features in model order).

        Accepts a DataFrame (columns by name, extra columns ignored), a 2D array or a list of rows holding raw
        values in `features` order (e.g. a parsed CSV line), or a list of dicts keyed by feature name. A model with a
        cleaning section reads raw values: a DataFrame's are cleaned first, and rows are in `input_columns` order.
        """
        if self.cleans:
            if not isinstance(data, pd.DataFrame):
                data = self._frame_of_inputs(data)
            return self._encode_frame(self.clean(data))
        if isinstance(data, pd.DataFrame):
            if len(data) <= _ROW_PATH_MAX_ROWS:  # pandas' per-column overhead dominates for a few rows
                missing = [f for f in self.features if f not in data.columns]
                if missing:
                    raise ModelInputError(f"input has no column {missing}; the model needs the features {self.features}")
                columns = [data[f].tolist() for f in self.features]
                return self._encode_rows(list(zip(*columns)) if len(data) else [])
            return self._encode_frame(data)
        if isinstance(data, np.ndarray):
            if data.ndim == 1:
                data = data.reshape(1, -1)
            if data.ndim != 2:
                raise ModelInputError(f"expected a 2D array of rows, got an array with {data.ndim} dimensions")
            if data.shape[1] != len(self.features):
                raise self._width_error(data.shape[1])
            if data.dtype.kind in "fiub" and not self.categorical:
                return data.astype(np.float64, copy=False)
            rows: Sequence[Sequence[Any]] = data  # type: ignore[assignment]
        else:
            rows = data  # type: ignore[assignment]
        if len(rows) and isinstance(rows[0], Mapping):
            rows = [self._row_from_mapping(r, i) for i, r in enumerate(rows)]  # type: ignore[arg-type]
        if len(rows) > _ROW_PATH_MAX_ROWS:
            return self._encode_frame(pd.DataFrame(list(rows), columns=self.features))
        return self._encode_rows(rows)

    def _frame_of_inputs(self, data: Any) -> pd.DataFrame:
        columns = self.input_columns
        if isinstance(data, np.ndarray) and data.ndim == 1:
            data = data.reshape(1, -1)
        rows = list(data)
        if rows and isinstance(rows[0], Mapping):
            missing = sorted({c for r in rows for c in columns if c not in r})
            if missing:
                raise ModelInputError(f"a record has no {missing}; send every input column (null for a missing "
                                      f"value): {columns}")
            return pd.DataFrame([[r[c] for c in columns] for r in rows], columns=columns)
        for row in rows:
            if len(row) != len(columns):
                raise ModelInputError(f"a row has {len(row)} values but the model reads {len(columns)} columns; send "
                                      f"them in this order: {columns}")
        return pd.DataFrame(rows, columns=columns)

    def _row_from_mapping(self, record: Mapping[str, Any], i: int) -> list[Any]:
        missing = [f for f in self.features if f not in record]
        if missing:
            raise ModelInputError(
                f"record {i} has no {missing}; send every model feature (null for a missing value): {self.features}"
            )
        return [record[f] for f in self.features]

    def _width_error(self, width: int) -> ModelInputError:
        return ModelInputError(
            f"a row has {width} values but the model has {len(self.features)} features; send them in this "
            f"order: {self.features}"
        )

    def _encode_rows(self, rows: Sequence[Sequence[Any]]) -> np.ndarray:
        width = len(self.features)
        out = np.empty((len(rows), width), dtype=np.float64)
        for i, row in enumerate(rows):
            if len(row) != width:
                raise self._width_error(len(row))
            for j, value in enumerate(row):
                lookup = self._lookups[j]
                if lookup is None:
                    out[i, j] = _to_float(value, self.features[j])
                else:
                    key = category_key(value)
                    out[i, j] = math.nan if key is None else lookup.get(key, math.nan)
        return out

    def _encode_frame(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise ModelInputError(f"input has no column {missing}; the model needs the features {self.features}")
        out = np.empty((len(frame), len(self.features)), dtype=np.float64)
        for j, feature in enumerate(self.features):
            column = frame[feature]
            lookup = self._lookups[j]
            if lookup is None:
                if column.dtype.kind in "fiub":
                    out[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
                    continue
                numbers = pd.to_numeric(column, errors="coerce")
                bad = numbers.isna() & column.notna()
                if bool(bad.any()):
                    bad &= column.astype(str).str.strip().ne("")
                if bool(bad.any()):
                    example = column[bad].iloc[0]
                    raise ModelInputError(
                        f"feature {feature!r} must be numeric, got {example!r} in {int(bad.sum())} row(s); "
                        f"send numbers (or empty for missing)"
                    )
                out[:, j] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                codes = normalize_categories(column).map(lookup)
                out[:, j] = pd.to_numeric(codes, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    # ------------------------------------------------------------------------------------ scoring

    def predict_proba(self, data: Any) -> np.ndarray:
        """Probability of the positive label, one per row."""
        return self.predict_proba_encoded(self.encode(data))

    def predict_proba_encoded(self, matrix: np.ndarray) -> np.ndarray:
        # A few rows are scored on one thread: waking an OpenMP team costs more than the trees, and on a busy
        # host it makes the latency tail (p95 of one-row calls went from 0.5 ms to 24 ms with all threads).
        threads = 1 if len(matrix) <= _SINGLE_THREAD_MAX_ROWS else 0
        if self.algorithm == "lightgbm":
            return np.asarray(self.booster.predict(matrix, num_threads=threads), dtype=np.float64)
        if threads != self._xgb_threads:
            self.booster.set_param({"nthread": threads})
            self._xgb_threads = threads
        return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)

    def predict(self, data: Any) -> np.ndarray:
        """1 where the score reaches the decision threshold (positive label, e.g. decline), else 0; a regressor's
        predicted values."""
        if self.threshold is None:
            return self.predict_proba(data)
        return (self.predict_proba(data) >= self.threshold).astype(np.int64)

    def contributions(self, data: Any) -> pd.DataFrame:
        """Per-row SHAP values in log-odds from the booster's own TreeSHAP (one column per feature plus `bias`);
        a row's values sum to the log-odds of its score."""
        values = self.contributions_encoded(self.encode(data))
        index = data.index if isinstance(data, pd.DataFrame) else None
        return pd.DataFrame(values, columns=[*self.features, BIAS_COLUMN], index=index)

    def contributions_encoded(self, matrix: np.ndarray) -> np.ndarray:
        """`contributions` of an already encoded matrix, as an array: one column per feature, then bias."""
        few = len(matrix) <= _SINGLE_THREAD_MAX_ROWS  # one thread for a few rows, as in predict_proba_encoded
        if self.algorithm == "lightgbm":
            values = self.booster.predict(matrix, pred_contrib=True, num_threads=1 if few else 0)
            return np.asarray(values, dtype=np.float64)
        import xgboost as xgb

        # DMatrix builds with every thread unless told (p99 of a one-row call: 17 ms with all, 0.9 ms with one)
        dmatrix = xgb.DMatrix(
            matrix, feature_names=self.features, feature_types=self._xgb_feature_types, enable_categorical=True,
            nthread=1 if few else None,
        )
        return np.asarray(self.booster.predict(dmatrix, pred_contribs=True), dtype=np.float64)

    def reason_codes(self, data: Any, k: int = 4) -> list[list[str]]:
        """Per row, the names of up to k features pushing the score most toward the positive label (decline);
        only features with a positive contribution count."""
        values = self.contributions(data)[self.features].to_numpy()
        return top_positive_features(values, self.features, k)


def top_positive_features(values: np.ndarray, features: Sequence[str], k: int) -> list[list[str]]:
    """Per row of SHAP values (one column per feature), the names of up to k features with the largest positive
    values, largest first (ties keep feature order)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    return [[str(features[j]) for j in row_order if values[i, j] > 0] for i, row_order in enumerate(order)]


def _to_float(value: Any, feature: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    text = str(value).strip()
    if text == "" or text.lower() in ("nan", "na", "null", "none"):
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ModelInputError(f"feature {feature!r} must be numeric, got {value!r}; send a number or empty") from None


def _load_booster(algorithm: str, path: Path) -> Any:
    if algorithm == "lightgbm":
        import lightgbm as lgb

        return lgb.Booster(model_file=str(path))
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(str(path))
    return booster
