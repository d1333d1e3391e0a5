"""The cost of running Lambda handlers in worker processes (local/lambdas.py) against the former in-process call
under a global lock, measured in one run on the same handlers.

- in-process (the former path): the handler module executed and called in the cloud's process, os.environ swapped;
- warm worker: an invocation on a worker that has imported the handler (JSON over a pipe);
- cold worker: a new worker process and its first invocation, forked from the fork server (boto3 and Powertools
  imported once) or started directly (Python start + every import of the handler);
- concurrency: 4 invocations of a handler that sleeps 0.5 s, started together: the lock ran them one after the other.

    .venv/bin/python -m bench.lambda_workers [--repeat 200]

Writes bench/results/lambda_workers.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

from sagestep.local import lambdas
from sagestep.local.lambdas import LambdaPool
from sagestep.stack.template import FunctionSpec

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
_LOCK = threading.RLock()


def in_process(spec: FunctionSpec, event: dict) -> object:
    """The former engine path: exec the handler module and call it with the function's environment, under a lock."""
    with _LOCK:
        saved = dict(os.environ)
        os.environ.update(spec.environment)
        sys.path.insert(0, str(spec.code_dir))
        try:
            loader = importlib.util.spec_from_file_location(f"bench_{spec.logical_id}", spec.code_dir / "app.py")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
            return module.handler(event, _Context(spec))
        finally:
            sys.path.remove(str(spec.code_dir))
            os.environ.clear()
            os.environ.update(saved)


class _Context:
    def __init__(self, spec: FunctionSpec) -> None:
        self.function_name = spec.name
        self.log_stream_name = f"in-process/{os.getpid()}"


def sleeper(directory: Path) -> FunctionSpec:
    (directory / "app.py").write_text("import time\n\ndef handler(event, context):\n    time.sleep(event['Seconds'])\n    return event\n")
    return FunctionSpec("Sleeper", "sleeper", "arn:aws:lambda:us-east-1:123456789012:function:sleeper", directory, "app.handler", {}, 30, 256)


def cold_start(spec: FunctionSpec, event: dict) -> float:
    """Median of 5 new workers' first invocation (the fork server itself, started by the first, is not counted)."""
    LambdaPool().invoke(spec, event, None, None)
    cold = []
    for _ in range(5):
        fresh = LambdaPool()
        started = time.perf_counter()
        fresh.invoke(spec, event, None, None)
        cold.append((time.perf_counter() - started) * 1000)
        fresh.stop(None)
    return statistics.median(cold)


def timed(call, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    echo = FunctionSpec("Echo", "echo", "arn:aws:lambda:us-east-1:123456789012:function:echo",
                        ROOT / "tests" / "functional" / "functions" / "echo", "app.handler", {"GREETING": "hi", "STAGE": "bench"}, 30, 256)
    event = {"Item": "loan-1", "Rows": list(range(100))}
    results: dict[str, float] = {}
    pool = LambdaPool()
    try:
        results["in_process_ms"] = timed(lambda: in_process(echo, event), args.repeat)
        pool.invoke(echo, event, None, None)  # warm it
        results["warm_worker_ms"] = timed(lambda: pool.invoke(echo, event, None, None), args.repeat)
        results["cold_worker_forked_ms"] = cold_start(echo, event)
        with mock.patch.object(lambdas.forkserver, "fork", lambda *args, **kwargs: None):  # no fork server
            results["cold_worker_direct_ms"] = cold_start(echo, event)
        with tempfile.TemporaryDirectory() as tmp:
            spec = sleeper(Path(tmp))
            for name, call in (("four_overlapping_in_process_ms", lambda: in_process(spec, {"Seconds": 0.5})),
                               ("four_overlapping_workers_ms", lambda: pool.invoke(spec, {"Seconds": 0.5}, None, None))):
                threads = [threading.Thread(target=call) for _ in range(4)]
                started = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                results[name] = (time.perf_counter() - started) * 1000
    finally:
        pool.stop(None)
    result = {
        "benchmark": "lambda_workers",
        "workload": f"echo handler, 100-item event, median of {args.repeat} calls; cold: median of 5 new workers, "
                    "forked from the fork server (started once before) or started directly; "
                    "concurrency: 4 calls of a 0.5 s handler started together (the second includes worker starts)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "results": results,
        "ratios": {"warm_worker_over_in_process": results["warm_worker_ms"] / results["in_process_ms"],
                   "cold_direct_over_forked": results["cold_worker_direct_ms"] / results["cold_worker_forked_ms"],
                   "overlapping_in_process_over_workers": results["four_overlapping_in_process_ms"] / results["four_overlapping_workers_ms"]},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lambda_workers.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"results": results, "ratios": result["ratios"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
