"""Quality gate (Lambda): decide whether the trained candidate may be registered, its lineage metadata and its
model line; the decision is also written to the run (gate/gate.json) for the run's report, and to the audit trail."""

from __future__ import annotations

import json
from typing import Any

import boto3

from sagestep.audit import records as audit
from sagestep.aws import envvars, metrics, s3io
from sagestep.registry import packages as registry
from sagestep.training import gate
from sagestep.aws.powertools import lambda_handler, logger


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = gate.QualityGateEvent.from_event(event)
    prefix = envvars.required("MODEL_LINE_PREFIX")
    audit_bucket = envvars.required(audit.BUCKET_ENV)
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    documents = {name: s3io.read_json(s3, uri) for name, uri in request.input_uris().items()}
    group = prefix + gate.model_line_of(documents)
    exists = registry.model_line_exists(sagemaker, group)
    champion = registry.latest_approved_model_package(sagemaker, group, documents["dataset_config"]["name"]) if exists else None
    answer = gate.quality_gate(request, documents, champion, model_line_prefix=prefix, model_line_exists=exists)
    trials = registry.tuning_trials(sagemaker, request.tuning_job_arn) if request.tuning_job_arn else None
    bucket, key = s3io.parse_s3_uri(request.gate_record_uri)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(gate.gate_record(request, answer, trials), indent=2).encode())
    audit.write(s3, audit_bucket, audit.gate_record(request.execution_arn, answer))
    metrics.emit("GateDecisions", 1, Outcome="passed" if answer["Passed"] else "refused")
    logger.info("quality gate decided", extra={"Passed": answer["Passed"], "Reasons": answer["Reasons"]})
    return answer
