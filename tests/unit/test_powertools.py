"""Powertools in the handlers (src/sagestep/aws/powertools.py): JSON logs correlated by execution ARN, no tracing
outside Lambda."""

from __future__ import annotations

import json

from sagestep.aws.powertools import lambda_handler, logger, tracer


class _Context:
    function_name = "sagestep-dev-QualityGateFunction"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sagestep-dev-QualityGateFunction"
    memory_limit_in_mb = 1024
    aws_request_id = "req-1"
    log_group_name = "/aws/lambda/sagestep-dev"
    log_stream_name = "local"


@lambda_handler
def _handler(event, context):
    logger.info("deciding")
    return {"ok": True}


def test_a_handler_logs_json_with_the_execution_arn_as_correlation_id():
    execution = "arn:aws:states:us-east-1:123456789012:execution:sagestep-dev-training:run-1"
    assert _handler({"ExecutionArn": execution}, _Context()) == {"ok": True}
    # the keys every log line of the invocation carries (Powertools' JSON formatter writes them with each message)
    keys = logger.get_current_keys()
    assert logger.get_correlation_id() == execution
    assert keys["function_name"] == _Context.function_name and keys["function_request_id"] == "req-1"
    line = json.loads(logger.registered_formatter.format(logger._logger.makeRecord("t", 20, __file__, 1, "deciding", (), None)))
    assert line["message"] == "deciding" and line["correlation_id"] == execution


def test_a_direct_call_without_a_lambda_context_still_runs_and_tracing_is_off_outside_lambda():
    assert _handler({"id": "event-1"}, None) == {"ok": True}
    assert tracer.disabled  # no LAMBDA_TASK_ROOT: Powertools sends nothing to X-Ray
