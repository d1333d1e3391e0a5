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

Workers stay warm across executions, as Lambda's environments do, until the function's code or configuration
changes (a new worker then serves, as after a deployment) or the local cloud stops. A worker is forked from a fork
server (local/forkserver.py) that imported what every handler imports (LAMBDA_PRELOAD), so a cold start pays only
the function's own imports; it dies with the fork server, which dies with this process. Where no fork server can
start, a worker is started directly from one thread that lives as long as the process: it dies with the local cloud
(PR_SET_PDEATHSIG), and that signal fires when the *thread* that started the child ends — calls arrive on execution
threads that end with their run.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagestep.aws.codebundle import RUNTIME_PACKAGES
from sagestep.local import forkserver
from sagestep.stack.template import FunctionSpec

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # Lambda quotas: invocation payload, synchronous, request and response
INIT_TIMEOUT_SECONDS = 120.0  # only a guard against a hung import; Lambda's 10 s init limit is not applied locally
_MEMORY_POLL_SECONDS = 0.02
# What every handler imports (the layer's Powertools, boto3), imported once by the workers' fork server
# (local/forkserver.py). Not pandas or SciPy, which some handlers import: a forked worker's resident memory includes
# what the fork server imported, and MemorySize is checked against it.
LAMBDA_PRELOAD = ("boto3", "aws_lambda_powertools")


class LambdaServiceError(Exception):
    """Lambda itself refused the call (not the function's error): a ClientError code for Step Functions."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class _Worker:
    process: subprocess.Popen | forkserver.ForkedProcess
    requests: Any  # the write end of the worker's stdin
    results: Any  # the read end of the result pipe
    busy: bool = False
    used: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()
        for stream in (self.requests, self.results):
            try:
                stream.close()
            except OSError:  # the worker is gone: what was buffered for it cannot be flushed
                pass


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _Spawner:
    """subprocess.Popen run on one long-lived thread of this process (started again in a forked child)."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[dict[str, Any], queue.SimpleQueue[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, **kwargs: Any) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._requests = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._serve, args=(self._requests,), name="lambda-spawner",
                                                daemon=True)
                self._thread.start()
            requests = self._requests
        answer: queue.SimpleQueue[Any] = queue.SimpleQueue()
        requests.put((kwargs, answer))
        result = answer.get()
        if isinstance(result, BaseException):
            raise result
        return result

    @staticmethod
    def _serve(requests: queue.SimpleQueue[tuple[dict[str, Any], queue.SimpleQueue[Any]]]) -> None:
        while True:
            kwargs, answer = requests.get()
            try:
                answer.put(subprocess.Popen(**kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                answer.put(exc)


_LIBRARY = str(Path(__file__).resolve().parents[1])  # the sagestep package, which the layer ships


def _newest_py(root: str) -> int:
    """The newest modification time (ns) of the .py files under `root` (os.scandir: a quarter of pathlib's cost)."""
    newest, pending = 0, [root]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append(entry.path)
                elif entry.name.endswith(".py"):
                    newest = max(newest, entry.stat().st_mtime_ns)
    return newest


def _code_stamp(spec: FunctionSpec) -> tuple[Any, ...]:
    """What a warm worker depends on: the function's configuration and the .py files of its code and of the layer's
    runtime packages (what handlers import; the tooling packages never are), checked at every call (about 0.5 ms)."""
    roots = [str(spec.code_dir), *(os.path.join(_LIBRARY, package) for package in RUNTIME_PACKAGES)]
    newest = max([*(_newest_py(root) for root in roots), os.stat(os.path.join(_LIBRARY, "__init__.py")).st_mtime_ns])
    return (spec.handler, str(spec.code_dir), spec.timeout_seconds, spec.memory_mb,
            tuple(sorted(spec.environment.items())), newest)


class LambdaPool:
    def __init__(self) -> None:
        self._workers: dict[tuple[Any, ...], list[_Worker]] = {}
        self._lock = threading.Lock()
        self._spawner = _Spawner()

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
            self._release(worker)
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
        worker.requests.write(request + "\n")
        worker.requests.flush()
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
        key = (spec.logical_id, endpoint_url or "", _code_stamp(spec))
        with self._lock:
            # of a local cloud that has stopped (its URL is gone), or of the function's previous code or configuration
            for stale_key in [k for k in self._workers if k[1] != key[1] or (k[0] == key[0] and k != key)]:
                for stale in self._workers.pop(stale_key):
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

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            worker.busy = False
            worker.used = time.monotonic()
            pool = next((pool for pool in self._workers.values() if worker in pool), None)
            if pool is not None and not worker.alive():
                pool.remove(worker)
        if pool is None:  # dropped while it served (its cloud stopped, or its code changed)
            worker.kill()

    def _start(self, spec: FunctionSpec, endpoint_url: str | None, log_dir: Path | None) -> _Worker:
        from sagestep.local.jobs import die_with_parent

        read_fd, write_fd = os.pipe()
        stdin_read, stdin_write = os.pipe()
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
            log = os.open(log_dir / f"{spec.logical_id}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        else:
            log = os.open(os.devnull, os.O_WRONLY)
        script = str(Path(__file__).with_name("lambda_worker.py"))
        try:
            process: subprocess.Popen | forkserver.ForkedProcess | None = forkserver.fork(
                sys.executable, LAMBDA_PRELOAD, [script], env=env, cwd=spec.code_dir, stdout=log, stderr=log,
                stdin=stdin_read, pass_fds=(write_fd,))
            if process is None:
                process = self._spawner.popen(
                    args=[sys.executable, script], stdin=stdin_read, stdout=log, stderr=log, env=env,
                    cwd=str(spec.code_dir), pass_fds=(write_fd,), preexec_fn=die_with_parent)
        except BaseException:
            for fd in (read_fd, stdin_write):
                os.close(fd)
            raise
        finally:
            for fd in (write_fd, stdin_read, log):
                os.close(fd)
        worker = _Worker(process, os.fdopen(stdin_write, "w"), os.fdopen(read_fd, "r"))
        first = self._read(worker, spec, time.monotonic() + INIT_TIMEOUT_SECONDS, check_memory=False)
        if not first.get("ready"):
            worker.kill()
            raise _InitFailed(first.get("init_error") or first.get("error") or {"errorMessage": "the runtime failed to start"})
        return worker

    def stop(self, endpoint_url: str | None) -> None:
        """Kill the idle workers of the local cloud at `endpoint_url` (busy ones end with their call)."""
        with self._lock:
            keys = [k for k in self._workers if k[1] == (endpoint_url or "")]
            workers = [w for k in keys for w in self._workers.pop(k)]
        for worker in workers:
            if not worker.busy:
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
