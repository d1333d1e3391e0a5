"""Quality gate (Lambda): decide whether the trained candidate may be registered, its lineage metadata and its
model line; the decision is also written to the run (gate/gate.json) for the run's report."""

from __future__ import annotations

import json
from typing import Any

import boto3

from sagestep.aws import envvars, s3io
from sagestep.registry import packages as registry
from sagestep.training import gate


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = gate.QualityGateEvent.from_event(event)
    prefix = envvars.required("MODEL_LINE_PREFIX")
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    documents = {name: s3io.read_json(s3, uri) for name, uri in request.input_uris().items()}
    group = prefix + gate.model_line_of(documents)
    exists = registry.model_line_exists(sagemaker, group)
    champion = registry.latest_approved_model_package(sagemaker, group, documents["dataset_config"]["name"]) if exists else None
    answer = gate.quality_gate(request, documents, champion, model_line_prefix=prefix, model_line_exists=exists)
    trials = registry.tuning_trials(sagemaker, request.tuning_job_arn) if request.tuning_job_arn else None
    bucket, key = s3io.parse_s3_uri(request.gate_record_uri)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(gate.gate_record(request, answer, trials), indent=2).encode())
    return answer
