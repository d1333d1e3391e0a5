"""Train a binary LightGBM or XGBoost scorer (or a regressor) with early stopping on the validation set.

Hyperparameters arrive as strings (SageMaker writes `hyperparameters.json` with string values); they are parsed
and checked against a per-algorithm allow-list (type, range, default). Metrics are logged as
`validation:auc=0.831234;` lines (a regressor's `validation:rmse=...;` and `validation:mae=...;`), the format the
training state machine's MetricDefinitions (and a tuning job's objective) read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from sagestep.training.config import DatasetConfig
from sagestep.training.model import CATEGORICAL, NUMERIC, ScoringModel, category_mapping

LOG_EVERY = 10
# Train-set metrics are read from a sample this size (re-scoring a million training rows with every tree costs
# minutes and says no more about overfitting than 20k rows do: AUC within about ±0.005); validation metrics come
# from the boosting history at the best iteration, as the booster computed them while training (no second pass).
TRAIN_METRICS_MAX_ROWS = 20_000
# num_threads / nthread 0 means "auto": one thread below this many training rows (on small data an OpenMP team
# costs more than it saves; on a busy 2-core host it made training 10x slower), every core above.
AUTO_THREADS_MIN_ROWS = 50_000
# Keys SageMaker itself may add (framework containers, automatic model tuning); not ours to validate.
_PLATFORM_PREFIXES = ("sagemaker_", "_")

Log = Callable[[str], None]


class HyperparameterError(ValueError):
    """A hyperparameter is unknown, missing or out of range; the message names it and the allowed values."""


@dataclass(frozen=True)
class HyperParameter:
    name: str
    kind: type  # int, float or str
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] | None = None

    def describe(self) -> str:
        if self.choices:
            return f"one of {list(self.choices)}"
        low = "(" if self.low_open else "["
        high = "inf" if self.high is None or math.isinf(self.high) else f"{self.high:g}"
        return f"{self.kind.__name__} in {low}{self.low:g}, {high}]"

    def parse(self, raw: Any) -> Any:
        text = str(raw).strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':  # the SageMaker SDK JSON-encodes some values
            text = text[1:-1]
        value: Any
        try:
            if self.kind is int:
                number = float(text)
                if not number.is_integer():
                    raise ValueError
                value = int(number)
            elif self.kind is float:
                value = float(text)
                if not math.isfinite(value):
                    raise ValueError
            else:
                value = text
        except ValueError:
            raise HyperparameterError(f"hyperparameter {self.name} must be {self.describe()}, got {raw!r}") from None
        if self.choices is not None and value not in self.choices:
            raise HyperparameterError(f"hyperparameter {self.name} must be {self.describe()}, got {raw!r}")
        if self.low is not None:
            too_low = value <= self.low if self.low_open else value < self.low
            too_high = self.high is not None and value > self.high
            if too_low or too_high:
                raise HyperparameterError(f"hyperparameter {self.name} must be {self.describe()}, got {raw!r}")
        return value


_INF = math.inf
_COMMON = (
    HyperParameter("num_round", int, 1000, 1, 100_000),
    HyperParameter("learning_rate", float, 0.05, 0, 1, low_open=True),
    HyperParameter("early_stopping_rounds", int, 50, 1, 10_000),
    HyperParameter("scale_pos_weight", float, 1.0, 0, 1e6, low_open=True),
    HyperParameter("seed", int, 0, 0, 2**31 - 1),
)
HYPERPARAMETERS: dict[str, tuple[HyperParameter, ...]] = {
    "lightgbm": _COMMON + (
        HyperParameter("num_leaves", int, 7, 2, 131_072),
        HyperParameter("max_depth", int, -1, -1, 64),
        HyperParameter("min_data_in_leaf", int, 20, 1, 1_000_000),
        HyperParameter("min_sum_hessian_in_leaf", float, 1e-3, 0, _INF),
        HyperParameter("feature_fraction", float, 0.8, 0, 1, low_open=True),
        HyperParameter("bagging_fraction", float, 0.8, 0, 1, low_open=True),
        HyperParameter("bagging_freq", int, 1, 0, 1000),
        HyperParameter("lambda_l1", float, 0.0, 0, _INF),
        HyperParameter("lambda_l2", float, 1.0, 0, _INF),
        HyperParameter("min_gain_to_split", float, 0.0, 0, _INF),
        HyperParameter("max_bin", int, 255, 2, 65_535),
        HyperParameter("cat_smooth", float, 5.0, 0, _INF),
        HyperParameter("min_data_per_group", int, 20, 1, 1_000_000),
        HyperParameter("max_cat_to_onehot", int, 4, 1, 1024),
        HyperParameter("num_threads", int, 0, 0, 1024),
    ),
    "xgboost": _COMMON + (
        HyperParameter("max_depth", int, 3, 0, 64),
        HyperParameter("min_child_weight", float, 1.0, 0, _INF),
        HyperParameter("subsample", float, 0.8, 0, 1, low_open=True),
        HyperParameter("colsample_bytree", float, 0.8, 0, 1, low_open=True),
        HyperParameter("gamma", float, 0.0, 0, _INF),
        HyperParameter("reg_lambda", float, 1.0, 0, _INF),
        HyperParameter("reg_alpha", float, 0.0, 0, _INF),
        HyperParameter("max_bin", int, 256, 2, 65_535),
        HyperParameter("max_cat_to_onehot", int, 4, 1, 1024),
        HyperParameter("tree_method", str, "hist", choices=("hist", "approx")),
        HyperParameter("nthread", int, 0, 0, 1024),
    ),
}
ALGORITHM_PARAM = HyperParameter("algorithm", str, None, choices=tuple(HYPERPARAMETERS))


@dataclass(frozen=True)
class TrainingParams:
    algorithm: str
    values: Mapping[str, Any]  # every allowed hyperparameter of the algorithm, typed, defaults filled in
    given: tuple[str, ...] = ()  # the names the caller set

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, **self.values}


def parse_hyperparameters(raw: Mapping[str, Any]) -> TrainingParams:
    """Parse SageMaker's string hyperparameters. `algorithm` is required; the others default (see
    `HYPERPARAMETERS`). Unknown names are errors that list the allowed ones."""
    raw = {k: v for k, v in raw.items() if not k.startswith(_PLATFORM_PREFIXES)}
    if "algorithm" not in raw:
        raise HyperparameterError(
            f"hyperparameter algorithm is required; set it to one of {list(HYPERPARAMETERS)}"
        )
    algorithm = ALGORITHM_PARAM.parse(raw["algorithm"])
    specs = {p.name: p for p in HYPERPARAMETERS[algorithm]}
    unknown = sorted(k for k in raw if k != "algorithm" and k not in specs)
    if unknown:
        raise HyperparameterError(
            f"unknown hyperparameter {unknown[0]!r} for algorithm {algorithm}; allowed: "
            f"{['algorithm', *specs]}"
        )
    values = {name: (spec.parse(raw[name]) if name in raw else spec.default) for name, spec in specs.items()}
    return TrainingParams(algorithm, values, tuple(sorted(k for k in raw if k != "algorithm")))


def hyperparameter_help(algorithm: str) -> dict[str, str]:
    """Name → allowed values and default, for documentation and error messages."""
    return {p.name: f"{p.describe()}, default {p.default!r}" for p in HYPERPARAMETERS[algorithm]}


# --------------------------------------------------------------------------------------------- training


@dataclass
class TrainingResult:
    model: ScoringModel
    best_iteration: int  # number of boosting rounds kept
    metrics: dict[str, float]  # train_auc, train_logloss, validation_auc, validation_logloss
    history: list[dict[str, float]] = field(default_factory=list)  # per round: iteration, validation auc/logloss


def metric_lines(metrics: Mapping[str, float]) -> list[str]:
    """The lines SageMaker's MetricDefinitions parse, e.g. `validation:auc=0.831234;`."""
    out = []
    for key in ("train_auc", "train_logloss", "validation_auc", "validation_logloss",
                "train_rmse", "train_mae", "validation_rmse", "validation_mae"):
        if key in metrics:
            channel, metric = key.split("_", 1)
            out.append(f"{channel}:{metric}={metrics[key]:.6f};")
    return out


def train_model(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    config: DatasetConfig,
    params: TrainingParams,
    *,
    log: Log = print,
    metadata: Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Fit on `train` (target 0/1 as written by preprocess), early-stop on `validation`; return the model cut at
    its best iteration. `metadata` (e.g. training data hashes) is stored in model_meta.json."""
    features = list(config.features.all)
    feature_types = {f: NUMERIC for f in config.features.numeric} | {f: CATEGORICAL for f in config.features.categorical}
    categorical = {f: category_mapping(train[f]) for f in config.features.categorical}
    regression = config.is_regression
    threshold = None if regression else config.thresholds.decision_threshold
    for name, frame in (("train", train), ("validation", validation)):
        if not regression and frame[config.target].nunique() < 2:
            raise ValueError(f"the {name} data holds one class only; training needs both classes")

    # An encoder-only model (no booster yet) gives the exact encoding serving will use.
    encoder = ScoringModel(
        algorithm=params.algorithm, booster=None, features=features, feature_types=feature_types,
        categorical=categorical, threshold=threshold,
        positive_label=config.positive_label, target=config.target,
    )
    x_train, x_valid = encoder.encode(train), encoder.encode(validation)
    label_type = np.float64 if regression else np.int64
    y_train = train[config.target].to_numpy(dtype=label_type)
    y_valid = validation[config.target].to_numpy(dtype=label_type)

    fit = _fit_lightgbm if params.algorithm == "lightgbm" else _fit_xgboost
    booster, best_iteration, history = fit(x_train, y_train, x_valid, y_valid, encoder, params, log, regression)

    model = ScoringModel(
        algorithm=params.algorithm, booster=booster, features=features, feature_types=feature_types,
        categorical=categorical, threshold=threshold,
        positive_label=config.positive_label, target=config.target,
    )
    sample = _sample_rows(len(y_train), TRAIN_METRICS_MAX_ROWS, params["seed"])
    p_train = model.predict_proba_encoded(x_train[sample])
    best = next((row for row in history if row["iteration"] == best_iteration), None)
    if regression:
        p_valid = model.predict_proba_encoded(x_valid)
        metrics = {**_regression_metrics("train", y_train[sample], p_train),
                   **_regression_metrics("validation", y_valid, p_valid)}
    elif best is None:  # no history row for the kept round (cannot happen with early stopping): score validation
        p_valid = model.predict_proba_encoded(x_valid)
        best = {"validation_auc": float(roc_auc_score(y_valid, p_valid)),
                "validation_logloss": float(log_loss(y_valid, p_valid, labels=[0, 1]))}
    if not regression:
        metrics = {
            "train_auc": float(roc_auc_score(y_train[sample], p_train)),
            "train_logloss": float(log_loss(y_train[sample], p_train, labels=[0, 1])),
            "validation_auc": float(best["validation_auc"]),
            "validation_logloss": float(best["validation_logloss"]),
        }
    model.metadata = {
        "dataset": config.name,
        "model_line": config.model_line,
        "dataset_config": config.to_dict(),  # with its fitted cleaning: serving and monitoring clean raw rows alike
        "hyperparameters": params.to_dict(),
        "best_iteration": best_iteration,
        "metrics": metrics,
        "n_train": len(train),
        "n_validation": len(validation),
        "n_train_metrics": int(len(sample)),
        **dict(metadata or {}),
    }
    for line in metric_lines(metrics):
        log(line)
    return TrainingResult(model=model, best_iteration=best_iteration, metrics=metrics, history=history)


def _regression_metrics(channel: str, y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    error = y - predicted
    return {f"{channel}_rmse": float(np.sqrt(np.mean(error * error))), f"{channel}_mae": float(np.mean(np.abs(error)))}


# Per problem type: the objective, the metrics the booster tracks (the first drives early stopping for LightGBM,
# the last for XGBoost) and their names in the history and log lines.
_LGB_OBJECTIVES = {False: ("binary", ["auc", "binary_logloss"], {"auc": "auc", "binary_logloss": "logloss"}),
                   True: ("regression", ["rmse", "l1"], {"rmse": "rmse", "l1": "mae"})}
_XGB_OBJECTIVES = {False: ("binary:logistic", ["logloss", "auc"], {"auc": "auc", "logloss": "logloss"}),
                   True: ("reg:squarederror", ["mae", "rmse"], {"rmse": "rmse", "mae": "mae"})}


def _log_row(row: Mapping[str, float], log: Log) -> None:
    if row["iteration"] % LOG_EVERY == 0:
        log(f"[{row['iteration']}] " + " ".join(f"validation:{k[len('validation_'):]}={v:.6f};"
                                              for k, v in row.items() if k.startswith("validation_")))


def _sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """Indices of every row, or of `limit` rows drawn without replacement (sorted, reproducible from the seed)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _threads(requested: int, n_rows: int) -> int:
    if requested:
        return requested
    return 1 if n_rows < AUTO_THREADS_MIN_ROWS else (os.cpu_count() or 1)


def _fit_lightgbm(x_train, y_train, x_valid, y_valid, encoder: ScoringModel, params: TrainingParams, log: Log,
                  regression: bool = False):
    import lightgbm as lgb

    v = params.values
    objective, tracked, names = _LGB_OBJECTIVES[regression]
    booster_params = {
        "objective": objective,
        "metric": tracked,
        "learning_rate": v["learning_rate"],
        "num_leaves": v["num_leaves"],
        "max_depth": v["max_depth"],
        "min_data_in_leaf": v["min_data_in_leaf"],
        "min_sum_hessian_in_leaf": v["min_sum_hessian_in_leaf"],
        "feature_fraction": v["feature_fraction"],
        "bagging_fraction": v["bagging_fraction"],
        "bagging_freq": v["bagging_freq"],
        "lambda_l1": v["lambda_l1"],
        "lambda_l2": v["lambda_l2"],
        "min_gain_to_split": v["min_gain_to_split"],
        "max_bin": v["max_bin"],
        "cat_smooth": v["cat_smooth"],
        "min_data_per_group": v["min_data_per_group"],
        "max_cat_to_onehot": v["max_cat_to_onehot"],
        **({} if regression else {"scale_pos_weight": v["scale_pos_weight"]}),
        "num_threads": _threads(v["num_threads"], len(y_train)),
        "seed": v["seed"],
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }
    cat_idx = [i for i, f in enumerate(encoder.features) if encoder.feature_types[f] == CATEGORICAL]
    dtrain = lgb.Dataset(x_train, label=y_train, feature_name=encoder.features, categorical_feature=cat_idx,
                         free_raw_data=False)
    dvalid = lgb.Dataset(x_valid, label=y_valid, reference=dtrain, categorical_feature=cat_idx, free_raw_data=False)
    history: list[dict[str, float]] = []

    def record(env: Any) -> None:
        scores = {m: val for name, m, val, _ in env.evaluation_result_list if name == "validation"}
        row = {"iteration": env.iteration + 1, **{f"validation_{names[m]}": float(scores[m]) for m in tracked}}
        history.append(row)
        _log_row(row, log)

    record.order = 15  # type: ignore[attr-defined]  # before early stopping (order 30) so every round is seen
    booster = lgb.train(
        booster_params, dtrain, num_boost_round=v["num_round"], valid_sets=[dvalid], valid_names=["validation"],
        callbacks=[record, lgb.early_stopping(v["early_stopping_rounds"], first_metric_only=True, verbose=False)],
    )
    best = int(booster.best_iteration) or booster.current_iteration()
    # Keep only the rounds up to the best one: the saved model is the model that serves.
    kept = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return kept, best, history


def _fit_xgboost(x_train, y_train, x_valid, y_valid, encoder: ScoringModel, params: TrainingParams, log: Log,
                 regression: bool = False):
    import xgboost as xgb

    v = params.values
    objective, tracked, names = _XGB_OBJECTIVES[regression]
    types = ["c" if encoder.feature_types[f] == CATEGORICAL else "q" for f in encoder.features]
    dtrain = xgb.DMatrix(x_train, label=y_train, feature_names=encoder.features, feature_types=types,
                         enable_categorical=True)
    dvalid = xgb.DMatrix(x_valid, label=y_valid, feature_names=encoder.features, feature_types=types,
                         enable_categorical=True)
    booster_params = {
        "objective": objective,
        "eval_metric": tracked,  # the last one drives early stopping
        "eta": v["learning_rate"],
        "max_depth": v["max_depth"],
        "min_child_weight": v["min_child_weight"],
        "subsample": v["subsample"],
        "colsample_bytree": v["colsample_bytree"],
        "gamma": v["gamma"],
        "lambda": v["reg_lambda"],
        "alpha": v["reg_alpha"],
        "max_bin": v["max_bin"],
        "max_cat_to_onehot": v["max_cat_to_onehot"],
        "tree_method": v["tree_method"],
        **({} if regression else {"scale_pos_weight": v["scale_pos_weight"]}),
        "nthread": _threads(v["nthread"], len(y_train)),
        "seed": v["seed"],
        "verbosity": 0,
    }
    history: list[dict[str, float]] = []

    class Record(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            scores = evals_log["validation"]
            row = {"iteration": epoch + 1, **{f"validation_{names[m]}": float(scores[m][-1]) for m in tracked}}
            history.append(row)
            _log_row(row, log)
            return False

    booster = xgb.train(
        booster_params, dtrain, num_boost_round=v["num_round"], evals=[(dvalid, "validation")],
        early_stopping_rounds=v["early_stopping_rounds"], callbacks=[Record()], verbose_eval=False,
    )
    best = int(booster.best_iteration) + 1
    kept = booster[:best]
    return kept, best, history


def training_summary(result: TrainingResult) -> dict[str, Any]:
    """A small JSON-able summary of a training run (written next to the job's output)."""
    return {
        "algorithm": result.model.algorithm,
        "best_iteration": result.best_iteration,
        "metrics": result.metrics,
        "hyperparameters": result.model.metadata.get("hyperparameters"),
        "history": result.history,
    }

