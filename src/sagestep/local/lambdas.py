"""Lambda functions, locally: warm worker processes per function, as Lambda's execution environments.

Each function gets worker processes (`local/lambda_worker.py`) that import its handler once and serve one
invocation at a time with the function's template environment; a second concurrent invocation starts a second
worker, so calls run in parallel (none waits for another function's call) and no handler sees another's
`os.environ`. The template's `Timeout` and `MemorySize` are enforced per invocation: past the timeout, or above the
memory size (resident memory of the worker, sampled every 20 ms), the worker is killed and the invocation fails as
Lambda reports it — an error payload without `errorType`, which Step Functions names `Lambda.Unknown`. The timeout
starts once the handler is imported (Lambda's init phase is not timed here: a busy machine would fail it). Payloads
follow Lambda's synchronous limits: 6 MB request (RequestTooLargeException) and 6 MB response
(`Function.ResponseSizeTooLarge`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagestep.stack.template import FunctionSpec

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # Lambda quotas: invocation payload, synchronous, request and response
INIT_TIMEOUT_SECONDS = 120.0  # only a guard against a hung import; Lambda's 10 s init limit is not applied locally
_MEMORY_POLL_SECONDS = 0.02


class LambdaServiceError(Exception):
    """Lambda itself refused the call (not the function's error): a ClientError code for Step Functions."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class _Worker:
    process: subprocess.Popen
    results: Any  # the read end of the result pipe
    busy: bool = False
    used: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()
        self.results.close()


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class LambdaPool:
    def __init__(self) -> None:
        self._workers: dict[tuple[str, str], list[_Worker]] = {}
        self._lock = threading.Lock()

    def invoke(self, spec: FunctionSpec, payload: Any, endpoint_url: str | None, log_dir: Path | None) -> tuple[Any, str | None]:
        """(response payload, FunctionError or None), as Lambda's synchronous Invoke returns them."""
        body = json.dumps(payload)
        if len(body.encode()) > SYNC_PAYLOAD_LIMIT:
            raise LambdaServiceError("RequestTooLargeException", f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes "
                                     f"for the InvokeFunction operation ({len(body.encode())} bytes)", 413)
        worker = self._acquire(spec, endpoint_url, log_dir)
        try:
            answer = self._call(worker, spec, body)
        finally:
            self._release(spec, endpoint_url, worker)
        if "result" in answer:
            size = len(json.dumps(answer["result"]).encode())
            if size > SYNC_PAYLOAD_LIMIT:
                return {"errorMessage": f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
                                        f"({SYNC_PAYLOAD_LIMIT} bytes).", "errorType": "Function.ResponseSizeTooLarge"}, "Unhandled"
            return answer["result"], None
        return answer["error"], "Unhandled"

    def _call(self, worker: _Worker, spec: FunctionSpec, body: str) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        deadline = time.monotonic() + spec.timeout_seconds
        request = json.dumps({"event": json.loads(body), "request_id": request_id,
                              "deadline_ms": time.time() * 1000 + spec.timeout_seconds * 1000})
        assert worker.process.stdin is not None
        worker.process.stdin.write(request + "\n")
        worker.process.stdin.flush()
        return self._read(worker, spec, deadline, check_memory=True)

    def _read(self, worker: _Worker, spec: FunctionSpec, deadline: float, check_memory: bool) -> Any:
        """The worker's next answer line as a dict; on timeout, memory or a crash: the error payload Lambda returns."""
        import select

        started = time.monotonic()
        peak = 0.0
        while True:
            ready, _, _ = select.select([worker.results], [], [], _MEMORY_POLL_SECONDS)
            if ready:
                line = worker.results.readline()
                if line:
                    return json.loads(line)
            if check_memory:
                peak = max(peak, _rss_mb(worker.process.pid))
                if peak > spec.memory_mb:
                    worker.kill()
                    return {"error": {"errorMessage": f"RequestId: local Error: Runtime exited with error: signal: killed "
                                                      f"(max memory used {peak:.0f} MB of {spec.memory_mb} MB)"}}
            if not worker.alive() and not ready:
                code = worker.process.returncode
                worker.kill()
                return {"error": {"errorMessage": f"RequestId: local Error: Runtime exited with error: exit status {code}",
                                  "errorType": "Runtime.ExitError"}}
            if time.monotonic() > deadline:
                worker.kill()
                return {"error": {"errorMessage": f"Task timed out after {time.monotonic() - started:.2f} seconds"}}

    def _acquire(self, spec: FunctionSpec, endpoint_url: str | None, log_dir: Path | None) -> _Worker:
        key = (spec.logical_id, endpoint_url or "")
        with self._lock:
            for stale_key in [k for k in self._workers if k[1] != key[1]]:
                for stale in self._workers.pop(stale_key):  # of a local cloud that has stopped: its URL is gone
                    if not stale.busy:
                        stale.kill()
            pool = self._workers.setdefault(key, [])
            pool[:] = [w for w in pool if w.alive()]
            for worker in pool:
                if not worker.busy:
                    worker.busy = True
                    return worker
        worker = self._start(spec, endpoint_url, log_dir)  # outside the lock: a cold start does not hold up others
        worker.busy = True
        with self._lock:
            self._workers.setdefault(key, []).append(worker)
        return worker

    def _release(self, spec: FunctionSpec, endpoint_url: str | None, worker: _Worker) -> None:
        with self._lock:
            worker.busy = False
            worker.used = time.monotonic()
            if not worker.alive():
                pool = self._workers.get((spec.logical_id, endpoint_url or ""), [])
                if worker in pool:
                    pool.remove(worker)

    def _start(self, spec: FunctionSpec, endpoint_url: str | None, log_dir: Path | None) -> _Worker:
        from sagestep.local.jobs import die_with_parent

        read_fd, write_fd = os.pipe()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGESTEP_", "_HANDLER"))}
        library = str(Path(__file__).resolve().parents[2])  # the directory holding the sagestep package (the layer)
        env.update(spec.environment)
        env.update({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_LAMBDA_FUNCTION_NAME": spec.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "_HANDLER": spec.handler,
            "SAGESTEP_LAMBDA_FUNCTION_ARN": spec.arn, "SAGESTEP_LAMBDA_CODE_DIR": str(spec.code_dir),
            "SAGESTEP_LAMBDA_RESULT_FD": str(write_fd), "PYTHONPATH": library, "PYTHONUNBUFFERED": "1",
        })
        if endpoint_url:
            env["AWS_ENDPOINT_URL"] = endpoint_url
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            log: Any = open(log_dir / f"{spec.logical_id}.log", "ab")
        else:
            log = subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("lambda_worker.py"))],
                stdin=subprocess.PIPE, stdout=log, stderr=log, env=env, cwd=str(spec.code_dir), text=True,
                pass_fds=(write_fd,), preexec_fn=die_with_parent,
            )
        finally:
            os.close(write_fd)
            if log is not subprocess.DEVNULL:
                log.close()
        worker = _Worker(process, os.fdopen(read_fd, "r"))
        first = self._read(worker, spec, time.monotonic() + INIT_TIMEOUT_SECONDS, check_memory=False)
        if not first.get("ready"):
            worker.kill()
            raise _InitFailed(first.get("init_error") or first.get("error") or {"errorMessage": "the runtime failed to start"})
        return worker

    def stop_all(self) -> None:
        with self._lock:
            workers = [w for pool in self._workers.values() for w in pool]
            self._workers.clear()
        for worker in workers:
            worker.kill()


class _InitFailed(Exception):
    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", "init failed"))
        self.payload = payload


POOL = LambdaPool()


def invoke(spec: FunctionSpec, payload: Any, endpoint_url: str | None, log_dir: Path | None) -> tuple[Any, str | None]:
    try:
        return POOL.invoke(spec, payload, endpoint_url, log_dir)
    except _InitFailed as exc:
        return exc.payload, "Unhandled"
