"""Quality gate (Lambda): decide whether the trained candidate may be registered, and its lineage metadata."""

from __future__ import annotations

from typing import Any

import boto3

from sagestep.aws import envvars
from sagestep.training import gate
from sagestep.registry import packages as registry
from sagestep.aws import s3io


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = gate.QualityGateEvent.from_event(event)
    group_name = envvars.required("MODEL_PACKAGE_GROUP_NAME")
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    documents = {name: s3io.read_json(s3, uri) for name, uri in request.input_uris().items()}
    champion = registry.latest_approved_model_package(sagemaker, group_name, documents["dataset_config"]["name"])
    return gate.quality_gate(request, documents, champion)
