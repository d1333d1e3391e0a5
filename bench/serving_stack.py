"""Serving latency of the same handlers (ml/inference.py) under the serving image's own model-server stack and under
sagestep's local model server, which AWS does not run.

The image's stack: the SageMaker containers toolkit (sagemaker-containers 2.8.6.post2, as in sagemaker-xgboost
3.0-5) starts gunicorn with gevent workers (one per CPU, the image's default) behind nginx when nginx is installed,
serving a Flask app of the toolkit that calls the handlers; at start it installs the source dir's requirements.txt
offline from its wheels, as the container does. Both run the serving image's library versions (.venv-serve,
.venv-bench-serving) and get the same one-row CSV requests (a declined application: score, decision and SHAP reason
codes) from wrk, in alternating rounds. sagestep's server writes data capture (100%); SageMaker captures outside the
container.

    .venv/bin/python -m bench.serving_stack [--seconds 8] [--rounds 2]

Writes bench/results/serving_stack.json. Needs wrk, and .venv-bench-serving (make bench).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd

from bench.serving_latency import ROOT, RESULTS, train, wrk
from sagestep.aws import codebundle
from sagestep.local import interpreters

STACK_VENV = ROOT / ".venv-bench-serving"


def start_sagestep(workdir: Path, model_dir: Path, code_dir: Path) -> tuple[subprocess.Popen, int]:
    port_file = workdir / "port.json"
    spec = {"endpoint": "bench", "variant": "Primary", "program": "inference.py", "model_dir": str(model_dir),
            "code_dir": str(code_dir), "port_file": str(port_file),
            "capture": {"enabled": True, "sampling_percentage": 100, "destination_dir": str(workdir / "capture"),
                        "tmp_dir": str(workdir / "tmp"), "capture_input": True, "capture_output": True}}
    (workdir / "spec.json").write_text(json.dumps(spec))
    process = subprocess.Popen([interpreters.serve_python(), str(ROOT / "src" / "sagestep" / "local" / "model_server.py"),
                                str(workdir / "spec.json")])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not port_file.exists():
        time.sleep(0.1)
    answer = json.loads(port_file.read_text())
    if "error" in answer:
        raise SystemExit(f"sagestep model server failed: {answer['error']}")
    return process, int(answer["port"])


def start_toolkit(base: Path, port: int) -> subprocess.Popen:
    python = STACK_VENV / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} not found: run `make bench` (it builds .venv-bench-serving)")
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_PROGRAM": "inference.py",
           "SAGEMAKER_SUBMIT_DIRECTORY": str(base / "code"), "SAGEMAKER_BIND_TO_PORT": str(port),
           "SAGEMAKER_USE_NGINX": "true" if shutil.which("nginx") else "false",
           "PATH": f"{python.parent}:{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(Path(__file__).parent)}
    env.pop("PYTHONHOME", None)
    # its own process group: nginx and gunicorn end with it (stop())
    process = subprocess.Popen([str(python), "-c", "from sagemaker_containers import _server; _server.start('_toolkit_app:app')"],
                               env=env, cwd=str(base), stdout=subprocess.DEVNULL, stderr=open(base / "server.log", "wb"),
                               start_new_session=True)
    deadline = time.monotonic() + 300  # the offline pip install of requirements.txt comes first
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            if process.poll() is not None:
                stop(process)
                raise SystemExit(f"the toolkit's server exited: {(base / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    stop(process)
    raise SystemExit(f"the toolkit's server did not answer /ping: {(base / 'server.log').read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    """The toolkit's server and everything it started (nginx, gunicorn and its workers)."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
            time.sleep(1)  # the group's other members end after the leader
        except subprocess.TimeoutExpired:
            continue


def _invoke(port: int, body: str) -> object:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body.encode(), method="POST",
                                     headers={"Content-Type": "text/csv", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: `apt-get install -y wrk` (make bench does it where it can)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model, model_dir, test = train(workdir)
        scores = model.predict_proba(test[list(model.features)])
        row = test.iloc[[int((scores >= model.threshold).argmax())]]
        body = ",".join("" if pd.isna(v) else str(v) for v in row[list(model.features)].iloc[0])
        tarball = codebundle.sourcedir_tarball(codebundle.collect(ROOT / "ml", ROOT / "src" / "sagestep"))
        base = workdir / "opt_ml"
        for code_dir in (workdir / "code", base / "code"):
            with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
                archive.extractall(code_dir, filter="data")
        shutil.copytree(model_dir, base / "model")
        ours, port = start_sagestep(workdir, model_dir, workdir / "code")
        stack_port = port + 1 if port < 65000 else port - 1
        stack = start_toolkit(base, stack_port)
        runs: dict[str, list[dict[str, float]]] = {"sagestep_local_server": [], "image_stack": []}
        try:
            answers = [_invoke(p, body) for p in (port, stack_port)]
            if answers[0] != answers[1]:  # same handlers, same libraries: the same answer, or the comparison is void
                raise SystemExit(f"the two stacks answer differently: {answers}")
            for _ in range(args.rounds):
                runs["sagestep_local_server"].append(wrk(port, body, args.seconds, workdir))
                runs["image_stack"].append(wrk(stack_port, body, args.seconds, workdir))
        finally:
            ours.terminate()
            ours.wait(timeout=30)
            stop(stack)
    summary = {name: {k: statistics.median(r[k] for r in rounds) for k in rounds[0]} for name, rounds in runs.items()}
    result = {
        "benchmark": "serving_stack",
        "workload": "one-row CSV POST /invocations (a declined application), wrk -t2 -c50, alternating rounds, p50/p99 "
                    "end to end on loopback; same handlers and serving-image libraries in both",
        "stacks": {"sagestep_local_server": "local/model_server.py, asyncio, 1 process, data capture 100%",
                   "image_stack": f"sagemaker-containers 2.8.6.post2: gunicorn gevent x{os.cpu_count()} workers, "
                                  f"{'nginx' if shutil.which('nginx') else 'no nginx (not installed)'}, Flask worker"},
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "tools": summary,
        "runs": runs,
        "ratios": {
            "p50_image_stack_over_local": summary["image_stack"]["p50_ms"] / summary["sagestep_local_server"]["p50_ms"],
            "p99_image_stack_over_local": summary["image_stack"]["p99_ms"] / summary["sagestep_local_server"]["p99_ms"],
            "throughput_local_over_image_stack": summary["sagestep_local_server"]["requests_per_s"] / summary["image_stack"]["requests_per_s"],
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serving_stack.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"tools": summary, "ratios": result["ratios"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
