"""Serve (SageMaker script mode, SAGEMAKER_PROGRAM=inference.py): score credit applicants from the model that
ml/train.py wrote.

Container contract: the serving container (and `sagestep`'s local endpoint server) calls model_fn once per worker
with the extracted model.tar.gz, then input_fn → predict_fn → output_fn per request. The logic, the request and
response formats and how bad requests map to HTTP statuses are in `sagestep.serving`.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import sagestep  # noqa: F401
except ImportError:  # run from a checkout: the code bundle mirrors the repo (ml/ beside src/)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sagestep.serving import inference as serving


def model_fn(model_dir: str) -> serving.ServingModel:
    return serving.load_model(model_dir)


def input_fn(request_body: bytes | str, request_content_type: str) -> serving.ParsedRequest:
    return serving.parse_request(request_body, request_content_type)


def predict_fn(data: serving.ParsedRequest, model: serving.ServingModel) -> serving.Predictions:
    return serving.predict(data, model)


def output_fn(prediction: serving.Predictions, accept: str) -> tuple[bytes, str]:
    return serving.format_response(prediction, accept)
