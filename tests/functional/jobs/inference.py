"""A script-mode inference program for runtime tests: score = Income / 1000."""

import json
import os


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as handle:
        return json.load(handle)


def input_fn(body, content_type):
    assert content_type == "text/csv", content_type
    return [[float(v) for v in line.split(",")] for line in body.splitlines()]


def predict_fn(rows, model):
    return [row[0] / model["scale"] for row in rows]


def output_fn(predictions, accept):
    return "\n".join(f"{p:.3f}" for p in predictions)
