"""A script-mode inference program for runtime tests: score = Income / scale."""

import json
import os


class BadRequest(ValueError):
    status_code = 400


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as handle:
        return json.load(handle)


def input_fn(body, content_type):
    body = body.decode("utf-8") if isinstance(body, bytes) else body
    if content_type != "text/csv":
        raise BadRequest(f"content type {content_type} is not supported; send text/csv")
    try:
        return [[float(v) for v in line.split(",")] for line in body.splitlines()]
    except ValueError as exc:
        raise BadRequest(f"row is not numeric: {exc}") from exc


def predict_fn(rows, model):
    return [row[0] / model["scale"] for row in rows]


def output_fn(predictions, accept):
    return "\n".join(f"{p:.3f}" for p in predictions)
