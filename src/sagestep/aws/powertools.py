"""Powertools for AWS Lambda in every handler: JSON logs whose correlation id is the Step Functions execution ARN (or
the EventBridge event id, or the inference id), and an X-Ray trace of each invocation.

Imported by the functions only (the layer ships aws-lambda-powertools; SageMaker jobs never import this module).
Tracing follows the function's `Tracing: Active`. Powertools disables the tracer by itself outside Lambda (no
LAMBDA_TASK_ROOT): the local cloud's workers have no X-Ray daemon and do not set it, so locally nothing is sent and
no POWERTOOLS_TRACE_DISABLED is needed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer

CORRELATION_ID_PATH = "ExecutionArn || Execution || id || InferenceId"

logger = Logger()
tracer = Tracer()


def lambda_handler(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Wrap `handler`: trace it, and log with the Lambda context and the correlation id (a direct call without a Lambda
    context, as tests make, is traced and logged without the context's keys)."""
    traced = tracer.capture_lambda_handler(handler)
    logged = logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)(traced)

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        if not hasattr(context, "function_name"):
            return traced(event, context)
        return logged(event, context)

    return run
