"""Serving: the pure core of `ml/inference.py` (SageMaker script mode), also run by the local endpoint server.

The SageMaker contract, one function each:

    model_fn(model_dir)              -> load_model(model_dir)            a `ServingModel` (a `ScoringModel`)
    input_fn(body, content_type)     -> parse_request(body, content_type)  a `ParsedRequest` (syntax only:
                                                                          input_fn is not given the model)
    predict_fn(data, model)          -> predict(data, model)             a `Predictions` (values checked against
                                                                          the model's features, then scored)
    output_fn(prediction, accept)    -> format_response(prediction, accept)  (body bytes, content type)

Requests (`Content-Type`, parameters such as `; charset=utf-8` ignored) carry the model's input columns
(`model.input_columns`: the features in model order — numeric first, then categorical, as in the dataset config —
with derived date features replaced by their date column), raw or cleaned: the dataset config's cleaning
(`sagestep.training.cleaning`, recorded in the model) reads `"$60,000.00 "` as 60000, `28-Feb-97` with its format
and pivot year, and maps a capped column's rare values to "(other)", exactly as at training.
- `text/csv`: one applicant a line, no header, values in `model.input_columns` order; an empty value is a missing
  value. Blank lines are skipped.
- `application/json`: `{"instances": [{"Income": 129, "Home": "rent", ...}, ...]}` (every input column named, null
  for a missing value), `{"instances": [[...values in input column order...], ...]}`, a single object, or a bare
  list of either.

Responses (`Accept`; missing, `*/*` or `application/*` mean JSON):
- `application/json`: `{"predictions": [{"score": 0.83, "decision": "decline", "threshold": 0.5,
  "reason_codes": ["Income", "Seniority", "Records"]}]}`
- `text/csv`: one line a row, `score,decision,reason1;reason2;reason3` (the last field empty for approvals).
- A regressor (problem_type Regression) answers `{"predictions": [{"prediction": 16.2}]}`, or one value a line.

`score` is the probability of the model's positive label (the adverse event, e.g. default); the decision is
`decline` when score >= `model.threshold` (the rule of `ScoringModel.predict`), else `approve`. `reason_codes`
lists, for declines only, up to k features (k = `SAGESTEP_REASON_CODES`, default 3) with the largest positive
SHAP contributions (booster TreeSHAP, log-odds), largest first: the principal reasons a lender must give a
declined applicant. Approvals get an empty list: no adverse-action notice is owed, and SHAP is then not computed.

Bad requests raise `RequestError(message, status_code)`: 400 for an empty body, text that is not UTF-8, malformed
CSV or JSON, a wrong number of values, a value that is not a number in a numeric feature, an unknown or missing
feature name; 415 for an unsupported Content-Type; 406 for an unsupported Accept. The message names the row and
the field (`row 1, column 3 (Income): 'abc' is not a number; ...`). The local server answers with `status_code`.
In the AWS framework containers (sagemaker-inference-toolkit, used by the XGBoost, scikit-learn and PyTorch
images in script mode) `RequestError` derives from the toolkit's `BaseInferenceToolkitError`, so the container
answers with the same status and a body of the message followed by the stack trace; any other exception would be
a 500. InvokeEndpoint callers then get a `ModelError` whose `OriginalStatusCode` is that status and whose
`OriginalMessage` starts with the message.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sagestep.aws import envvars
from sagestep.training import cleaning
from sagestep.training.config import category_key
from sagestep.training.model import CATEGORICAL, ScoringModel, top_positive_features

JSON = "application/json"
CSV = "text/csv"
REASON_CODES_ENV = "SAGESTEP_REASON_CODES"
DEFAULT_REASON_CODES = 3
APPROVE = "approve"
DECLINE = "decline"
DECISIONS = (APPROVE, DECLINE)

_MISSING_TEXT = frozenset({"", "nan", "na", "null", "none"})  # as ScoringModel reads raw text
# How each input column becomes feature values (see ServingModel._columns).
_NUMBER, _CATEGORY, _CLEANED_NUMBER, _DATE = range(4)
_INFINITIES = (math.inf, -math.inf)
_MAX_SHOWN = 40  # characters of a bad value quoted in a message

try:  # in the SageMaker framework containers: their error type carries the HTTP status to the client
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ContainerError
except ImportError:  # local runs and tests

    class _ContainerError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code = status_code
            self.message = message
            self.phrase = phrase
            super().__init__(status_code, message, phrase)


class RequestError(_ContainerError):
    """A request the endpoint cannot score; `status_code` is the HTTP status to answer (400, 406 or 415)."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(status_code, message, message)
        self.status_code = status_code
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ParsedRequest:
    """What input_fn extracts: CSV cells (`format` "csv") or JSON instances, objects or lists (`format` "json")."""

    format: str
    rows: list[Any]


@dataclass(frozen=True)
class Predictions:
    """What predict_fn returns: per row the score, the decision and the reason codes (empty for approvals)."""

    scores: list[float]
    decisions: list[str]
    reason_codes: list[list[str]]
    threshold: float | None  # None: a regressor's predicted values (no decision, no reason codes)


# --------------------------------------------------------------------------------------------- model


class ServingModel(ScoringModel):
    """A `ScoringModel` with what each request needs precomputed: per input column how it becomes feature values
    (a number, a category code, a cleaned number, or a date's derived features), and k."""

    def __init__(self, *, reason_code_count: int = DEFAULT_REASON_CODES, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if reason_code_count < 1:
            raise ValueError(f"reason_code_count must be at least 1, got {reason_code_count}")
        self.reason_code_count = int(reason_code_count)
        self.request_columns: list[str] = self.input_columns
        self.column_index: dict[str, int] = {c: j for j, c in enumerate(self.request_columns)}
        self._columns = [self._column_plan(c) for c in self.request_columns]

    def _column_plan(self, column: str) -> tuple[Any, ...]:
        """(kind, feature index or [(index, part)], lookup, cleaning spec) for one input column."""
        config = self.dataset_config if self.cleans else None
        spec = config.cleaning if config is not None else None
        if spec is not None and (date := spec.date(column)) is not None:
            derived = [(self.features.index(f), part) for f, (src, part) in spec.derived.items()
                       if src == column and f in self.features]
            return (_DATE, derived, None, date)
        j = self.features.index(column)
        if self.feature_types[column] == CATEGORICAL:
            lookup = {c: float(i) for i, c in enumerate(self.categorical[column])}
            cap = spec.cap(column) if spec is not None else None
            keep = frozenset(cap.keep or ()) if cap is not None else None
            return (_CATEGORY, j, lookup, keep)
        if spec is not None and column in spec.number_columns:
            return (_CLEANED_NUMBER, j, None, spec.numbers)
        return (_NUMBER, j, None, None)

    @classmethod
    def from_model(cls, model: ScoringModel, *, reason_code_count: int = DEFAULT_REASON_CODES) -> ServingModel:
        return cls(
            reason_code_count=reason_code_count, algorithm=model.algorithm, booster=model.booster,
            features=model.features, feature_types=model.feature_types, categorical=model.categorical,
            threshold=model.threshold, positive_label=model.positive_label, target=model.target,
            metadata=model.metadata,
        )

    def warm_up(self) -> None:
        """Score and explain one all-missing row, so the first request pays no first-call set-up."""
        matrix = np.full((1, len(self.features)), np.nan)
        self.predict_proba_encoded(matrix)
        self.contributions_encoded(matrix)

    # ------------------------------------------------------------------------------------ encoding

    def encode_request(self, request: ParsedRequest) -> np.ndarray:
        """Raw request rows → the float matrix the booster reads; RequestError (400) naming row and field."""
        if request.format == "csv":
            return self._encode_csv(request.rows)
        return self._encode_json(request.rows)

    def _encode_csv(self, rows: Sequence[Sequence[str]]) -> np.ndarray:
        width = len(self.request_columns)
        out = np.empty((len(rows), len(self.features)), dtype=np.float64)
        for i, row in enumerate(rows):
            if len(row) != width:
                raise RequestError(
                    f"row {i + 1}: {len(row)} values, but the model reads {width} columns; send one line per "
                    f"applicant, no header, values in this order: {','.join(self.request_columns)}"
                )
            for j, cell in enumerate(row):
                kind, target, lookup, spec = self._columns[j]
                if kind == _NUMBER:
                    try:
                        value = float(cell)
                    except ValueError:
                        value = self._missing_or_error(cell, i, j, row)
                    if value in _INFINITIES:
                        raise RequestError(f"{self._where(i, j, True)}: {_show(cell)} is not a finite number")
                    out[i, target] = value
                elif kind == _CATEGORY:
                    key = cell.strip()
                    if key and spec is not None and key not in spec:
                        key = cleaning.capped_category(key, spec) or ""
                    out[i, target] = lookup.get(key, math.nan) if key else math.nan
                else:
                    self._clean_cell(out, i, j, cell, True, row)
        return out

    def _clean_cell(self, out: np.ndarray, i: int, j: int, value: Any, positional: bool,
                    row: Sequence[Any] | None = None) -> None:
        """A cell of a column the dataset config cleans (a number with its format, or a date)."""
        kind, target, _lookup, spec = self._columns[j]
        if kind == _CLEANED_NUMBER:
            number = cleaning.parse_number(value, spec)
            if number is cleaning.BAD:
                if row is not None and [str(c).strip() for c in row] == self.request_columns:
                    raise RequestError(f"row {i + 1} is a header; send rows without a header, values in this "
                                       f"order: {','.join(self.request_columns)}")
                raise RequestError(f"{self._where(i, j, positional)}: {_show(value)} is not a number (currency "
                                   f"symbols, spaces and thousands separators {spec.thousands_separator!r} are "
                                   f"removed); send a number, or an empty value for a missing one")
            out[i, target] = number
            return
        moment = cleaning.parse_date(value, spec)
        if moment is cleaning.BAD:
            raise RequestError(f"{self._where(i, j, positional)}: {_show(value)} is not a date in the format "
                               f"{spec.format!r} (or ISO 8601 YYYY-MM-DD); send a date, or an empty value")
        for index, part in target:
            out[i, index] = cleaning.date_part(moment, part)

    def _missing_or_error(self, cell: str, i: int, j: int, row: Sequence[str]) -> float:
        if cell.strip().lower() in _MISSING_TEXT:
            return math.nan
        if [c.strip() for c in row] == self.request_columns:
            raise RequestError(f"row {i + 1} is a header; send rows without a header, values in this order: "
                               f"{','.join(self.request_columns)}")
        raise RequestError(f"{self._where(i, j, True)}: {_show(cell)} is not a number; send a number, or an empty "
                           f"value for a missing one")

    def _encode_json(self, instances: Sequence[Any]) -> np.ndarray:
        width = len(self.request_columns)
        out = np.empty((len(instances), len(self.features)), dtype=np.float64)
        for i, instance in enumerate(instances):
            if isinstance(instance, dict):
                unknown = [k for k in instance if k not in self.column_index]
                if unknown:
                    raise RequestError(f"row {i + 1}: unknown feature {', '.join(map(repr, unknown))}; the model's "
                                       f"input columns are {self.request_columns}")
                if len(instance) != width:
                    missing = [f for f in self.request_columns if f not in instance]
                    raise RequestError(f"row {i + 1}: missing feature {', '.join(map(repr, missing))}; send every "
                                       f"input column, null for a missing value")
                values = [instance[f] for f in self.request_columns]
                positional = False
            else:
                if len(instance) != width:
                    raise RequestError(
                        f"row {i + 1}: {len(instance)} values, but the model reads {width} columns; send them in "
                        f"this order: {self.request_columns}, or send objects keyed by column name"
                    )
                values, positional = instance, True
            for j, value in enumerate(values):
                kind, target, lookup, spec = self._columns[j]
                if kind in (_CLEANED_NUMBER, _DATE):
                    if isinstance(value, (dict, list, bool)):
                        raise RequestError(f"{self._where(i, j, positional)}: {_show(value)} is not a single value")
                    self._clean_cell(out, i, j, value, positional)
                else:
                    out[i, target] = self._json_value(value, i, j, positional)
        return out

    def _json_value(self, value: Any, i: int, j: int, positional: bool) -> float:
        if value is None:
            return math.nan
        kind, _target, lookup, keep = self._columns[j]
        if kind == _CATEGORY:
            if isinstance(value, (dict, list)):
                column = self.request_columns[j]
                raise RequestError(f"{self._where(i, j, positional)}: {_show(value)} is not a single value; send "
                                   f"one of {self.categorical[column]} or null")
            key = category_key(value) if keep is None else cleaning.capped_category(value, keep)
            return math.nan if key is None else lookup.get(key, math.nan)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise RequestError(f"{self._where(i, j, positional)}: {_show(value)} is not a number; send a number, "
                               f"or null for a missing value")
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                if value.strip().lower() in _MISSING_TEXT:
                    return math.nan
                raise RequestError(f"{self._where(i, j, positional)}: {_show(value)} is not a number; send a "
                                   f"number, or null for a missing value") from None
        else:
            try:
                number = float(value)
            except OverflowError:  # a JSON integer beyond the float range
                number = math.inf
        if number in _INFINITIES:
            raise RequestError(f"{self._where(i, j, positional)}: {_show(value)} is not a finite number")
        return number

    def _where(self, i: int, j: int, positional: bool) -> str:
        if positional:
            return f"row {i + 1}, column {j + 1} ({self.request_columns[j]})"
        return f"row {i + 1}, field {self.request_columns[j]}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN - 3] + "..."


def load_model(model_dir: str | Path, reason_code_count: int | None = None) -> ServingModel:
    """model_fn: the model in `model_dir` (model.tar.gz extracted), warmed up. k comes from
    `SAGESTEP_REASON_CODES` (default 3) unless given; a bad value stops the container with a clear message."""
    if reason_code_count is None:
        reason_code_count = envvars.optional_int(REASON_CODES_ENV, DEFAULT_REASON_CODES, minimum=1)
    model = ServingModel.from_model(ScoringModel.load(model_dir), reason_code_count=reason_code_count)
    model.warm_up()
    return model


# --------------------------------------------------------------------------------------------- request


def media_type(header: str | None) -> str:
    """`text/csv; charset=utf-8` → `text/csv`."""
    return (header or "").split(";", 1)[0].strip().lower()


def parse_request(body: bytes | bytearray | str | None, content_type: str | None) -> ParsedRequest:
    """input_fn: the request body → CSV cells or JSON instances. Checks syntax only (the model is not known)."""
    kind = media_type(content_type)
    if kind not in (CSV, JSON):
        raise RequestError(f"Content-Type {content_type!r} is not supported; send {CSV} (rows without a header) "
                           f"or {JSON} ({{\"instances\": [...]}})", 415)
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RequestError(f"request body is not UTF-8 text (byte {exc.start}); send UTF-8") from None
    elif isinstance(body, str):
        text = body[1:] if body.startswith("\ufeff") else body
    else:
        text = ""
    if not text.strip():
        raise RequestError(f"request body is empty; send at least one row ({kind})")
    if kind == CSV:
        return ParsedRequest("csv", _parse_csv(text))
    return ParsedRequest("json", _parse_json(text))


def _parse_csv(text: str) -> list[list[str]]:
    if '"' not in text:  # the common case: no quoting, split directly (several times faster than csv.reader)
        return [line.split(",") for line in text.splitlines() if line.strip()]
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise RequestError(f"request body is not valid CSV: {exc}") from None
    return [row for row in rows if row and not (len(row) == 1 and not row[0].strip())]


def _parse_json(text: str) -> list[Any]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    if isinstance(document, dict) and "instances" in document:
        extra = [k for k in document if k != "instances"]
        if extra:
            raise RequestError(f"unknown top-level key {', '.join(map(repr, extra))}; send "
                               f"{{\"instances\": [...]}} only")
        instances = document["instances"]
        if not isinstance(instances, list):
            raise RequestError("'instances' must be a list of objects keyed by feature name or of lists of values "
                               "in feature order")
    elif isinstance(document, dict):
        instances = [document]
    elif isinstance(document, list):
        instances = document
    else:
        raise RequestError(f"request body must be a JSON object or list, got {type(document).__name__}")
    if not instances:
        raise RequestError("no instances to score; send at least one")
    for i, instance in enumerate(instances):
        if not isinstance(instance, (dict, list)):
            raise RequestError(f"row {i + 1}: expected an object keyed by feature name or a list of values in "
                               f"feature order, got {type(instance).__name__}")
    return instances


# --------------------------------------------------------------------------------------------- scoring


def predict(request: ParsedRequest, model: ServingModel) -> Predictions:
    """predict_fn: score every row, decide at the model's threshold, explain the declines."""
    if not request.rows:
        raise RequestError("no rows to score; send at least one")
    matrix = model.encode_request(request)
    scores = model.predict_proba_encoded(matrix)
    if model.threshold is None:  # a regressor: the predicted values
        return Predictions(scores=scores.tolist(), decisions=[], reason_codes=[], threshold=None)
    declined = scores >= model.threshold
    reasons: list[list[str]] = [[] for _ in range(len(scores))]
    rows = np.flatnonzero(declined)
    if len(rows):
        contributions = model.contributions_encoded(matrix[rows])[:, : len(model.features)]
        for row, names in zip(rows, top_positive_features(contributions, model.features, model.reason_code_count)):
            reasons[row] = names
    return Predictions(
        scores=scores.tolist(),
        decisions=[DECLINE if d else APPROVE for d in declined.tolist()],
        reason_codes=reasons,
        threshold=model.threshold,
    )


# --------------------------------------------------------------------------------------------- response


def response_type(accept: str | None) -> str:
    """The first supported media type of an Accept header; JSON when there is none or anything is accepted."""
    if not accept or not accept.strip():
        return JSON
    for part in accept.split(","):
        kind = media_type(part)
        if kind in (JSON, CSV):
            return kind
        if kind in ("*/*", "application/*"):
            return JSON
        if kind == "text/*":
            return CSV
    raise RequestError(f"Accept {accept!r} is not supported; ask for {JSON} or {CSV}", 406)


def format_response(predictions: Predictions, accept: str | None) -> tuple[bytes, str]:
    """output_fn: (body bytes, content type)."""
    kind = response_type(accept)
    if predictions.threshold is None:  # a regressor: `{"predictions": [{"prediction": 16.2}]}`, or a value a line
        if kind == CSV:
            return "".join(f"{value!r}\n" for value in predictions.scores).encode("utf-8"), CSV
        body = {"predictions": [{"prediction": value} for value in predictions.scores]}
        return json.dumps(body, separators=(",", ":")).encode("utf-8"), JSON
    if kind == CSV:
        lines = [
            f"{score!r},{decision},{';'.join(reasons)}\n"
            for score, decision, reasons in zip(predictions.scores, predictions.decisions, predictions.reason_codes)
        ]
        return "".join(lines).encode("utf-8"), CSV
    threshold = predictions.threshold
    body = {
        "predictions": [
            {"score": score, "decision": decision, "threshold": threshold, "reason_codes": reasons}
            for score, decision, reasons in zip(predictions.scores, predictions.decisions, predictions.reason_codes)
        ]
    }
    return json.dumps(body, separators=(",", ":")).encode("utf-8"), JSON
