"""Lambda's synchronous payload limit in the local Lambda (local/lambdas.py): refused before any worker starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sagestep.local.lambdas import SYNC_PAYLOAD_LIMIT, LambdaPool, LambdaServiceError
from sagestep.stack.template import FunctionSpec


def test_request_over_6_mb_is_refused_as_lambda_refuses_it(tmp_path: Path):
    # rule lambda-payload-and-limits
    spec = FunctionSpec("Echo", "echo", "arn:aws:lambda:us-east-1:123456789012:function:echo", tmp_path, "app.handler", {})
    with pytest.raises(LambdaServiceError) as raised:
        LambdaPool().invoke(spec, {"Blob": "x" * SYNC_PAYLOAD_LIMIT}, None, None)
    assert raised.value.code == "RequestTooLargeException" and raised.value.status == 413


def test_template_defaults_are_lambdas_defaults():
    spec = FunctionSpec("F", "f", "arn", Path("."), "app.handler", {})
    assert (spec.timeout_seconds, spec.memory_mb) == (3, 128)
