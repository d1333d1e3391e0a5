"""Serving latency: sagestep's local model server vs MLflow's model server, same LightGBM model, same load.
This measures the local model server, which AWS does not run: bench/serving_stack.py measures the same handlers under
the serving image's own stack (gunicorn + Flask of the SageMaker containers toolkit).

Both servers run one process on 127.0.0.1 and get one-row CSV requests from wrk (50 connections, 2 threads),
alternating rounds in one run so machine noise hits both. sagestep serves raw applications (category strings)
and returns score, decision and, for declines, SHAP reason codes, with data capture on (100%); MLflow serves the
same booster through its lightgbm flavour on the already-encoded row and returns the score only.

    .venv/bin/python -m bench.serving_latency [--seconds 10] [--rounds 2]

Writes bench/results/serving_latency.json. Needs wrk (Debian package) and .venv-bench with mlflow (make bench).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
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

from sagestep.aws import codebundle
from sagestep.training.config import load_dataset_config
from sagestep.training.preprocess import prepare_data, split_data
from sagestep.training.fit import parse_hyperparameters, train_model

ROOT = Path(__file__).resolve().parents[1]
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
RESULTS = ROOT / "bench" / "results"


def train(workdir: Path):
    config = load_dataset_config(ROOT / "ml" / "config" / "credit_data.yaml")
    frame = pd.read_csv(ROOT / "data" / "credit_data" / "credit_data.csv")
    splits = split_data(prepare_data(frame, config), config)
    params = parse_hyperparameters({"algorithm": "lightgbm", "learning_rate": "0.05", "num_leaves": "15", "seed": "7"})
    model = train_model(splits.train, splits.validation, config, params, log=lambda _: None).model
    model_dir = workdir / "model"
    model.save(model_dir)
    return model, model_dir, splits.test


def start_sagestep(workdir: Path, model_dir: Path) -> tuple[subprocess.Popen, int]:
    code_dir = workdir / "code"
    tarball = codebundle.sourcedir_tarball(codebundle.collect(ROOT / "ml", ROOT / "src" / "sagestep"))
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        archive.extractall(code_dir, filter="data")
    port_file = workdir / "port.json"
    spec = {"endpoint": "bench", "variant": "Primary", "program": "inference.py", "model_dir": str(model_dir),
            "code_dir": str(code_dir), "port_file": str(port_file),
            "capture": {"enabled": True, "sampling_percentage": 100, "destination_dir": str(workdir / "capture"),
                        "capture_input": True, "capture_output": True}}
    (workdir / "spec.json").write_text(json.dumps(spec))
    from sagestep.local import interpreters

    # the serving image's libraries (.venv-serve), as the local cloud serves models
    process = subprocess.Popen([interpreters.serve_python(), str(ROOT / "src" / "sagestep" / "local" / "model_server.py"),
                                str(workdir / "spec.json")])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not port_file.exists():
        time.sleep(0.1)
    answer = json.loads(port_file.read_text())
    if "error" in answer:
        raise SystemExit(f"sagestep model server failed: {answer['error']}")
    return process, int(answer["port"])


def start_mlflow(workdir: Path, model_dir: Path, port: int) -> subprocess.Popen:
    if not BENCH_PYTHON.exists():
        raise SystemExit(f"{BENCH_PYTHON} not found: run `make bench` (it creates .venv-bench with mlflow)")
    mlflow_model = workdir / "mlflow-model"
    script = (
        "import lightgbm as lgb, mlflow.lightgbm, sys; "
        "mlflow.lightgbm.save_model(lgb.Booster(model_file=sys.argv[1]), sys.argv[2])"
    )
    subprocess.run([str(BENCH_PYTHON), "-c", script, str(model_dir / "model.txt"), str(mlflow_model)], check=True)
    # mlflow starts `uvicorn` by name: the bench venv's bin/ must come first on PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"file://{workdir / 'mlruns'}",
           "PATH": f"{BENCH_PYTHON.parent}:{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        [str(BENCH_PYTHON), "-m", "mlflow", "models", "serve", "-m", str(mlflow_model), "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("MLflow model server did not answer /ping within 120 s")


def wrk(port: int, body: str, seconds: int, workdir: Path) -> dict[str, float]:
    script = workdir / f"post-{port}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "text/csv"\n'
        'wrk.headers["Accept"] = "application/json"\n'
    )
    output = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{seconds}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}/invocations"],
        capture_output=True, text=True, check=True,
    ).stdout
    return {
        "p50_ms": _latency(output, "50%"),
        "p99_ms": _latency(output, "99%"),
        "requests_per_s": float(re.search(r"Requests/sec:\s+([0-9.]+)", output).group(1)),
        "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0,
    }


def _server_latency(port: int) -> dict[str, float]:
    """sagestep's own measure: request read to response written, excluding time queued for a thread."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sagestep/latency", timeout=10) as response:
        return json.loads(response.read())


def _latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{re.escape(percentile)}\s+([0-9.]+)(us|ms|s)", output).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: `apt-get install -y wrk` (make bench does it where it can)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model, model_dir, test = train(workdir)
        # a declined application: the response carries SHAP reason codes, the costlier path
        scores = model.predict_proba(test[list(model.features)])
        row = test.iloc[[int((scores >= model.threshold).argmax())]]
        raw = ",".join("" if pd.isna(v) else str(v) for v in row[list(model.features)].iloc[0])
        encoded = model.encode(row[list(model.features)])
        mlflow_body = ",".join(model.features) + "\n" + ",".join("" if pd.isna(v) else repr(float(v)) for v in encoded[0])
        ours, port = start_sagestep(workdir, model_dir)
        peer = start_mlflow(workdir, model_dir, port + 1 if port < 65000 else port - 1)
        peer_port = int(peer.args[peer.args.index("--port") + 1])
        runs: dict[str, list[dict[str, float]]] = {"sagestep": [], "mlflow": []}
        server_side: list[dict[str, float]] = []
        try:
            for _ in range(args.rounds):
                _server_latency(port)  # reset
                runs["sagestep"].append(wrk(port, raw, args.seconds, workdir))
                server_side.append(_server_latency(port))
                runs["mlflow"].append(wrk(peer_port, mlflow_body, args.seconds, workdir))
        finally:
            for process in (ours, peer):
                process.terminate()
                process.wait(timeout=30)
    summary = {tool: {k: statistics.median(r[k] for r in rounds) for k in rounds[0]} for tool, rounds in runs.items()}
    summary["sagestep"]["server_side_p50_ms"] = statistics.median(r["p50_ms"] for r in server_side)
    summary["sagestep"]["server_side_p99_ms"] = statistics.median(r["p99_ms"] for r in server_side)
    result = {
        "benchmark": "serving_latency",
        "workload": "one-row CSV POST /invocations, wrk -t2 -c50, alternating rounds; p50/p99 are wrk's "
                    "(end to end on loopback, queueing included); server_side_* are measured inside the sagestep server",
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "tools": summary,
        "runs": runs,
        "ratios": {
            "p99_mlflow_over_sagestep": summary["mlflow"]["p99_ms"] / summary["sagestep"]["p99_ms"],
            "p50_mlflow_over_sagestep": summary["mlflow"]["p50_ms"] / summary["sagestep"]["p50_ms"],
            "throughput_sagestep_over_mlflow": summary["sagestep"]["requests_per_s"] / summary["mlflow"]["requests_per_s"],
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serving_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"tools": summary, "ratios": result["ratios"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
