"""CloudFormation custom resource: publish ml/ (MlCodeLayer) and sagestep (SagestepLayer) to S3 for SageMaker jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from sagestep.aws.codebundle import handle_custom_resource
from sagestep.aws.powertools import lambda_handler

LAYER_ROOT = Path("/opt")


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> None:
    handle_custom_resource(event, context, boto3.client("s3"), ml_dir=LAYER_ROOT, library_dir=LAYER_ROOT / "python" / "sagestep")
