"""One Lambda execution environment, locally: a process that imports a function's handler once and serves
invocations one at a time (run as a file by `local/lambdas.py`, never imported by the local cloud).

Requests arrive as JSON lines on stdin; each answer is one JSON line on the file descriptor named by
SAGESTEP_LAMBDA_RESULT_FD, so what the handler prints (stdout, stderr) goes to the function's log, as in Lambda.
The first line written is `{"ready": true}` once the handler module is imported (the init phase), or the init error.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any


class Context:
    def __init__(self, request_id: str, deadline_ms: float) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.invoked_function_arn = os.environ["SAGESTEP_LAMBDA_FUNCTION_ARN"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.function_version = "$LATEST"
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {"errorMessage": str(exc), "errorType": type(exc).__name__,
            "stackTrace": traceback.format_tb(exc.__traceback__)[-5:]}


def main() -> int:
    out = os.fdopen(int(os.environ["SAGESTEP_LAMBDA_RESULT_FD"]), "w", buffering=1)
    code_dir, handler_spec = os.environ["SAGESTEP_LAMBDA_CODE_DIR"], os.environ["_HANDLER"]
    module_file, _, function_name = handler_spec.rpartition(".")
    sys.path.insert(0, code_dir)
    try:
        path = Path(code_dir) / f"{module_file.replace('.', '/')}.py"
        spec = importlib.util.spec_from_file_location(module_file, path)
        if spec is None or spec.loader is None:
            raise FileNotFoundError(f"{path}: handler module not found (Handler: {handler_spec})")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        handler = getattr(module, function_name)
    except Exception as exc:  # Lambda reports an init failure as the invocation's error (Runtime.ImportModuleError)
        out.write(json.dumps({"init_error": {**_error(exc), "errorType": "Runtime.ImportModuleError"}}) + "\n")
        return 1
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = Context(request.get("request_id") or str(uuid.uuid4()), request["deadline_ms"])
        try:
            result = handler(request["event"], context)
            answer = {"result": json.loads(json.dumps(result))}
        except Exception as exc:  # a handler exception is the function's error, as in AWS
            answer = {"error": _error(exc)}
        sys.stdout.flush()
        sys.stderr.flush()
        out.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
