"""Serving (ml/inference.py over sagestep.serving): formats in and out, decisions, reason codes, bad requests."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import re
import sys
import types

import numpy as np
import pandas as pd
import pytest

from sagestep.aws import envvars
from sagestep.serving import inference as serving
from sagestep.serving import smoke
from sagestep.training.config import load_dataset_config
from sagestep.training.model import ScoringModel
from sagestep.training.preprocess import prepare_data, split_data
from sagestep.training.fit import parse_hyperparameters, train_model
from tests.conftest import REPO_ROOT, load_event


def _import_file(name: str, path, modules: dict = sys.modules):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


inference = _import_file("sagestep_inference_entry_point", REPO_ROOT / "ml" / "inference.py")


@pytest.fixture(scope="module")
def config(repo_root):
    return load_dataset_config(repo_root / "ml" / "config" / "credit_data.yaml")


@pytest.fixture(scope="module")
def splits(credit_data, config):
    return split_data(prepare_data(credit_data, config), config)


@pytest.fixture(scope="module", params=["lightgbm", "xgboost"])
def trained(request, splits, config) -> ScoringModel:
    params = parse_hyperparameters({"algorithm": request.param, "num_round": "60", "learning_rate": "0.1"})
    return train_model(splits.train, splits.validation, config, params, log=lambda _: None).model


@pytest.fixture(scope="module")
def model(trained) -> serving.ServingModel:
    return serving.ServingModel.from_model(trained, reason_code_count=3)


@pytest.fixture(scope="module")
def rows(splits, trained) -> pd.DataFrame:
    """Held-out applicants, feature columns only, in model order."""
    return splits.test[trained.features].iloc[:60].reset_index(drop=True)


def csv_body(frame: pd.DataFrame) -> bytes:
    return "".join(smoke.csv_line(list(r)) + "\n" for r in frame.itertuples(index=False)).encode()


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in frame.astype(object).to_dict(orient="records")]


def serve(model, body, content_type, accept="application/json"):
    """One request through the four handler functions, as the container calls them."""
    prediction = inference.predict_fn(inference.input_fn(body, content_type), model)
    return inference.output_fn(prediction, accept)


def predictions_of(response) -> list[dict]:
    body, content_type = response
    assert content_type == "application/json"
    return json.loads(body)["predictions"]


# ------------------------------------------------------------------------------------------------ model_fn


def test_model_fn_loads_the_saved_model_with_k_from_the_environment(tmp_path, trained, rows, monkeypatch):
    # GIVEN a model directory as ml/train.py writes it, and SAGESTEP_REASON_CODES=2
    trained.save(tmp_path)
    monkeypatch.setenv("SAGESTEP_REASON_CODES", "2")
    # WHEN the container loads it
    loaded = inference.model_fn(str(tmp_path))
    # THEN it is a ScoringModel that scores as trained, explaining declines with at most 2 reasons
    assert isinstance(loaded, ScoringModel) and loaded.reason_code_count == 2
    np.testing.assert_array_equal(loaded.predict_proba(rows), trained.predict_proba(rows))
    assert all(len(p["reason_codes"]) <= 2 for p in predictions_of(serve(loaded, csv_body(rows), "text/csv")))


def test_a_bad_reason_code_setting_stops_model_loading_with_its_name(tmp_path, trained, monkeypatch):
    trained.save(tmp_path)
    monkeypatch.setenv("SAGESTEP_REASON_CODES", "three")
    with pytest.raises(envvars.InvalidSetting, match=r"SAGESTEP_REASON_CODES='three' must be an integer >= 1"):
        inference.model_fn(str(tmp_path))


# ------------------------------------------------------------------------------------------------ formats


def test_csv_rows_score_like_the_model_and_decide_at_its_threshold(model, trained, rows):
    # GIVEN held-out rows as CSV lines without header WHEN scored with the default Accept
    predictions = predictions_of(serve(model, csv_body(rows), "text/csv", accept=None))
    # THEN there is one prediction a row with the model's score, its threshold, and decline iff score >= threshold
    expected = trained.predict_proba(rows)
    assert len(predictions) == len(rows)
    np.testing.assert_allclose([p["score"] for p in predictions], expected, rtol=0, atol=1e-12)
    assert {p["threshold"] for p in predictions} == {trained.threshold}
    decisions = ["decline" if s >= trained.threshold else "approve" for s in expected]
    assert [p["decision"] for p in predictions] == decisions
    assert {"approve", "decline"} == {p["decision"] for p in predictions}  # the sample exercises both


def test_json_objects_lists_and_a_single_object_score_like_csv(model, rows):
    # GIVEN the same rows as JSON objects, as JSON lists in feature order, as a bare list, and row 0 alone
    by_csv = predictions_of(serve(model, csv_body(rows), "text/csv"))
    objects = records(rows)
    lists = [[r[f] for f in model.features] for r in objects]
    # WHEN each is scored THEN every form gives the same predictions
    assert predictions_of(serve(model, json.dumps({"instances": objects}), "application/json")) == by_csv
    as_bytes = json.dumps({"instances": lists}).encode()
    assert predictions_of(serve(model, as_bytes, "application/json; charset=utf-8")) == by_csv
    assert predictions_of(serve(model, json.dumps(objects), "application/json")) == by_csv
    assert predictions_of(serve(model, json.dumps(objects[0]), "application/json")) == by_csv[:1]


def test_csv_tolerates_spaces_quotes_crlf_and_missing_value_spellings(model, rows):
    # GIVEN row 0 written untidily: padded values, a quoted category, Windows line end, Income spelled "NA"
    clean = rows.iloc[[0]].copy()
    clean["Income"] = np.nan
    cells = [f" {v} " for v in smoke.csv_line(list(clean.iloc[0])).split(",")]
    cells[model.features.index("Income")] = "NA"
    cells[model.features.index("Home")] = f'"{clean.iloc[0]["Home"]}"'
    untidy = ",".join(cells) + "\r\n\r\n"
    # WHEN scored THEN it scores like the clean row with Income missing
    assert predictions_of(serve(model, untidy, "text/csv")) == predictions_of(serve(model, csv_body(clean), "text/csv"))


def test_csv_out_gives_one_line_a_row(model, rows):
    # GIVEN rows WHEN the client accepts text/csv
    body, content_type = serve(model, csv_body(rows), "text/csv", accept="text/csv")
    as_json = predictions_of(serve(model, csv_body(rows), "text/csv"))
    # THEN each line is score,decision,reason1;reason2;reason3 and agrees with the JSON answer
    lines = body.decode().splitlines()
    assert content_type == "text/csv" and len(lines) == len(rows)
    for line, p in zip(lines, as_json):
        score, decision, reasons = line.split(",")
        assert (float(score), decision) == (p["score"], p["decision"])
        assert (reasons.split(";") if reasons else []) == p["reason_codes"]


@pytest.mark.parametrize("accept, expected", [
    ("*/*", "application/json"), ("application/*", "application/json"), ("", "application/json"),
    ("text/csv; charset=utf-8", "text/csv"), ("application/xml, text/csv;q=0.5", "text/csv"), ("text/*", "text/csv"),
])
def test_accept_header_chooses_the_response_type(model, rows, accept, expected):
    assert serve(model, csv_body(rows.iloc[:1]), "text/csv", accept=accept)[1] == expected


# ------------------------------------------------------------------------------------------------ decisions


def test_a_score_exactly_at_the_threshold_is_a_decline(trained, rows):
    # GIVEN a model whose threshold is exactly the score of row 0
    model = serving.ServingModel.from_model(trained)
    model.threshold = float(trained.predict_proba(rows.iloc[[0]])[0])
    # WHEN rows are scored THEN row 0 is declined and the threshold reported is the model's
    predictions = predictions_of(serve(model, csv_body(rows), "text/csv"))
    assert predictions[0]["decision"] == "decline" and predictions[0]["threshold"] == model.threshold
    assert all((p["decision"] == "decline") == (p["score"] >= model.threshold) for p in predictions)


def test_reason_codes_are_the_largest_positive_shap_contributions_of_declines(model, trained, rows):
    # GIVEN held-out rows WHEN scored
    predictions = predictions_of(serve(model, csv_body(rows), "text/csv"))
    # THEN a decline lists up to 3 real feature names: the features with the largest positive SHAP values
    # (computed independently through the DataFrame path), largest first; an approval lists none
    shap = trained.contributions(rows)[trained.features]
    declines = 0
    for i, p in enumerate(predictions):
        if p["decision"] == "approve":
            assert p["reason_codes"] == []
            continue
        declines += 1
        positive = shap.loc[i][shap.loc[i] > 0].sort_values(ascending=False, kind="stable")
        assert p["reason_codes"] == list(positive.index[:3])
        assert set(p["reason_codes"]) <= set(trained.features) and len(p["reason_codes"]) == min(3, len(positive))
    assert declines >= 3


# ------------------------------------------------------------------------------------------------ bad requests

GOOD = "9,60,30,73,129.0,0.0,0.0,800,846,rent,married,no,freelance"
GOOD_OBJECT = {"Seniority": 9, "Time": 60, "Age": 30, "Expenses": 73, "Income": 129.0, "Assets": 0.0, "Debt": 0.0,
               "Amount": 800, "Price": 846, "Home": "rent", "Marital": "married", "Records": "no", "Job": "freelance"}


def _with(**changes):
    return json.dumps({"instances": [GOOD_OBJECT, {**GOOD_OBJECT, **changes}]})


def _without(name):
    return json.dumps({"instances": [{k: v for k, v in GOOD_OBJECT.items() if k != name}]})


BAD_REQUESTS = [
    # (id, body, content type, status, message pattern)
    ("csv too few values", GOOD + "\n" + GOOD.rsplit(",", 1)[0], "text/csv", 400,
     r"^row 2: 12 values, but the model reads 13 columns; .*Seniority,Time,Age"),
    ("csv too many values", GOOD + ",1", "text/csv", 400, r"^row 1: 14 values, but the model reads 13 columns"),
    ("csv text in a number", GOOD.replace("129.0", "abc"), "text/csv", 400,
     r"^row 1, column 5 \(Income\): 'abc' is not a number"),
    ("csv infinite number", GOOD.replace("129.0", "1e999"), "text/csv", 400,
     r"^row 1, column 5 \(Income\): '1e999' is not a finite number"),
    ("csv header", "Seniority,Time,Age,Expenses,Income,Assets,Debt,Amount,Price,Home,Marital,Records,Job\n" + GOOD,
     "text/csv", 400, r"^row 1 is a header; send rows without a header"),
    ("json unknown feature", _with(Salary=3), "application/json", 400, r"^row 2: unknown feature 'Salary'"),
    ("json missing feature", _without("Income"), "application/json", 400,
     r"^row 1: missing feature 'Income'; send every input column, null for a missing value"),
    ("json text in a number", _with(Income="abc"), "application/json", 400,
     r"^row 2, field Income: 'abc' is not a number"),
    ("json boolean in a number", _with(Age=True), "application/json", 400, r"^row 2, field Age: True is not a number"),
    ("json huge integer", _with(Debt=10**400), "application/json", 400,
     r"^row 2, field Debt: .* is not a finite number"),
    ("json list in a category", _with(Home=["rent"]), "application/json", 400,
     r"^row 2, field Home: \['rent'\] is not a single value"),
    ("json list of wrong length", json.dumps({"instances": [[1, 2, 3]]}), "application/json", 400,
     r"^row 1: 3 values, but the model reads 13 columns"),
    ("json text in a list", json.dumps({"instances": [GOOD.replace("60", "x", 1).split(",")]}), "application/json",
     400, r"^row 1, column 2 \(Time\): 'x' is not a number"),
    ("json scalar instance", json.dumps({"instances": [3]}), "application/json", 400,
     r"^row 1: expected an object keyed by feature name or a list of values"),
    ("json instances not a list", json.dumps({"instances": GOOD_OBJECT}), "application/json", 400,
     r"^'instances' must be a list"),
    ("json no instances", json.dumps({"instances": []}), "application/json", 400, r"^no instances to score"),
    ("json extra top-level key", json.dumps({"instances": [GOOD_OBJECT], "id": 1}), "application/json", 400,
     r"^unknown top-level key 'id'"),
    ("json scalar body", "3", "application/json", 400, r"^request body must be a JSON object or list, got int"),
    ("invalid json", '{"instances": [', "application/json", 400, r"^request body is not valid JSON"),
    ("empty body", b"", "text/csv", 400, r"^request body is empty"),
    ("blank lines only", "\n \r\n", "text/csv", 400, r"^request body is empty"),
    ("not utf-8", b"\xff\xfe9,60", "text/csv", 400, r"^request body is not UTF-8 text \(byte 0\)"),
    ("unsupported content type", GOOD, "application/x-npy", 415,
     r"^Content-Type 'application/x-npy' is not supported; send text/csv .* or application/json"),
    ("no content type", GOOD, None, 415, r"^Content-Type None is not supported"),
]


@pytest.mark.parametrize("body, content_type, status, pattern",
                         [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS])
def test_bad_request_is_a_request_error_naming_the_field(model, body, content_type, status, pattern):
    # GIVEN a malformed request WHEN it goes through input_fn and predict_fn
    with pytest.raises(serving.RequestError) as caught:
        serve(model, body, content_type)
    # THEN the error carries the HTTP status and a message naming the row and field (or what is wrong)
    assert caught.value.status_code == status
    assert caught.value.message == str(caught.value)
    assert re.search(pattern, str(caught.value)), str(caught.value)


def test_unsupported_accept_is_406(model):
    prediction = inference.predict_fn(inference.input_fn(GOOD, "text/csv"), model)
    with pytest.raises(serving.RequestError, match=r"Accept 'application/xml' is not supported") as caught:
        inference.output_fn(prediction, "application/xml")
    assert caught.value.status_code == 406


class _Scratch:
    """sys.modules entries that the monkeypatch removes after the test."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch

    def __setitem__(self, name, module):
        self.monkeypatch.setitem(sys.modules, name, module)


def test_in_the_aws_containers_request_error_is_the_toolkit_error_that_sets_the_status(monkeypatch):
    # GIVEN the sagemaker-inference-toolkit's error module, as the framework containers have it
    errors = types.ModuleType("sagemaker_inference.errors")

    class BaseInferenceToolkitError(Exception):
        def __init__(self, status_code, message, phrase):
            self.status_code, self.message, self.phrase = status_code, message, phrase
            super().__init__(status_code, message, phrase)

    errors.BaseInferenceToolkitError = BaseInferenceToolkitError
    monkeypatch.setitem(sys.modules, "sagemaker_inference", types.ModuleType("sagemaker_inference"))
    monkeypatch.setitem(sys.modules, "sagemaker_inference.errors", errors)
    # WHEN the serving module is imported there
    in_container = _import_file("sagestep_serving_in_container", REPO_ROOT / "src" / "sagestep" / "serving" / "inference.py",
                                modules=_Scratch(monkeypatch))
    error = in_container.RequestError("row 1, column 5 (Income): 'abc' is not a number", 400)
    # THEN a RequestError is the toolkit's error, carrying what its transformer answers with
    assert isinstance(error, BaseInferenceToolkitError)
    assert (error.status_code, error.message, error.phrase) == (400, str(error), str(error))


# ------------------------------------------------------------------------------------------------ smoke sample


class _RuntimeOverInference:
    """A sagemaker-runtime client whose endpoint is ml/inference.py in-process."""

    def __init__(self, model):
        self.model = model

    def invoke_endpoint(self, *, EndpointName, ContentType, Accept, Body, InferenceId, TargetVariant=None):
        body, content_type = serve(self.model, Body, ContentType, Accept)
        return {"Body": io.BytesIO(body), "ContentType": content_type, "InvokedProductionVariant": "AllTraffic"}


def test_the_smoke_sample_rows_pass_the_smoke_test_against_the_real_serving_code(model):
    # GIVEN the stored smoke test event (real credit_data rows) and an endpoint running ml/inference.py
    request = smoke.SmokeTestEvent.from_event(load_event("smoke_test_credit_data"))
    assert list(request.feature_names) == model.features
    # WHEN the smoke test runs THEN every response meets the contract
    result = smoke.run_smoke_test(_RuntimeOverInference(model), request, max_latency_ms=10_000, run_id="test")
    assert result["Passed"], result["Reasons"]
    assert result["Rows"] == 5
