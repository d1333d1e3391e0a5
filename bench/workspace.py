"""Local cloud at scale: command times with a 1 GB workspace against an empty one, and S3 throughput against moto's
plain server mode.

Workload (issue 11): a workspace holding ≥ 1 GB of S3 objects — a large dataset made by resampling the real credit_data
rows (uploaded with `aws s3 cp`, multipart) and 1,000,000 data-capture records in the layout model servers write —
beside an empty workspace with the same registry package and execution. For each, with `sagestep local up` running
and with no cloud up (the command starts its own): `sagestep models list`, `sagestep local endpoints`,
`sagestep local history X`, `aws s3 ls s3://<artifacts bucket>/`, each the median of --rounds runs. A training run's
wall time in each workspace (its overhead must not grow with the workspace). S3 PUT/GET throughput of the local
cloud against moto's ThreadedMotoServer (in-memory objects) on the same objects, in one run.

    .venv/bin/python -m bench.workspace [--size-gb 1.0] [--rounds 5] [--skip-training]

Writes bench/results/workspace.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from bench._proc import _tree_rss_mb

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
FEATURES = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price",
            "Home", "Marital", "Records", "Job"]
ENV = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
GOAL_SECONDS = 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cloud:
    """`sagestep local up` in its own process."""

    def __init__(self, workspace: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workspace.parent / f"{workspace.name}-cloud.log", "w")
        self.process = subprocess.Popen(
            [str(BIN / "sagestep"), "local", "up", "--workspace", str(workspace), "--port", str(self.port),
             "--time-scale", "0.01"], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=ENV)
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_sagestep/info", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"local up exited: {Path(self.log.name).read_text()[-2000:]}")
            time.sleep(0.2)

    def rss_mb(self) -> float:
        return _tree_rss_mb(self.process.pid)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=300)
        self.log.close()


def _run(command: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=1800)
    listed_nothing = command[-3:-1] == ["s3", "ls"] or "--recursive" in command
    if result.returncode != 0 and not (listed_nothing and result.returncode == 1 and not result.stderr.strip()):
        raise RuntimeError(f"{' '.join(command[:4])} failed: {result.stderr[-1500:]}")
    return time.perf_counter() - started


def _median(command: list[str], rounds: int) -> float:
    return statistics.median(_run(command) for _ in range(rounds))


def _messy_dataset(path: Path, target_bytes: int, rng: np.random.Generator) -> int:
    frame = pd.read_csv(ROOT / "data" / "credit_data" / "credit_data.csv")
    lines = frame.to_csv(index=False, header=False).splitlines()
    header = ",".join(frame.columns)
    written, rows = 0, 0
    with open(path, "w") as out:
        out.write(header + "\n")
        while written < target_bytes:
            block = "\n".join(lines[i] for i in rng.integers(0, len(lines), 50_000)) + "\n"
            out.write(block)
            written += len(block)
            rows += 50_000
    return rows


def _capture(root: Path, records: int, rng: np.random.Generator, per_file: int = 1000) -> None:
    frame = pd.read_csv(ROOT / "data" / "credit_data" / "credit_data.csv")
    rows = [",".join("" if pd.isna(v) else str(v) for v in row) for row in frame[FEATURES].itertuples(index=False)]
    start = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
    for f in range(records // per_file):
        when = start + dt.timedelta(seconds=f * 10)
        directory = root / when.strftime("%Y/%m/%d/%H")
        directory.mkdir(parents=True, exist_ok=True)
        picks = rng.integers(0, len(rows), per_file)
        with open(directory / f"{when:%M-%S}-{f:06d}.jsonl", "w") as out:
            for i, pick in enumerate(picks):
                n = f * per_file + i
                out.write('{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"%s",'
                          '"encoding":"CSV"},"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT",'
                          '"data":"{\\"predictions\\":[{\\"score\\":0.31,\\"decision\\":\\"approve\\"}]}","encoding":"JSON"}},'
                          '"eventMetadata":{"eventId":"e-%d","inferenceId":"i-%d","inferenceTime":"%s"},"eventVersion":"0"}\n'
                          % (rows[pick], n, n, when.strftime("%Y-%m-%dT%H:%M:%SZ")))


def _seed(workspace: Path, size_gb: float, scratch: Path) -> dict:
    """Registry package + finished execution in any workspace; the large objects when size_gb > 0."""
    cloud = Cloud(workspace)
    try:
        import boto3

        def client(service: str):
            return boto3.client(service, endpoint_url=cloud.url, region_name="us-east-1", aws_access_key_id="testing",
                                aws_secret_access_key="testing")

        buckets = [b["Name"] for b in client("s3").list_buckets()["Buckets"]]
        data = next(b for b in buckets if "-data-" in b)
        artifacts = next(b for b in buckets if "-artifacts-" in b)
        groups = client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
        group = groups[0]["ModelPackageGroupName"] if groups else "sagestep-dev-credit-data"
        if not groups:  # a model line's group is created by its first training run; the benchmark does not train here
            client("sagemaker").create_model_package_group(ModelPackageGroupName=group)
        client("sagemaker").create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={"Containers": [{"Image": "local", "ModelDataUrl": f"s3://{artifacts}/m/model.tar.gz"}],
                                    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]})
        asl = scratch / "pass.asl.json"
        asl.write_text(json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}))
        (scratch / "in.json").write_text("{}")
        _run([str(BIN / "sagestep"), "local", "run", str(asl), "--input", str(scratch / "in.json"), "--name", "bench-history",
              "--workspace", str(workspace)])
        rows = 0
        if size_gb > 0:
            rng = np.random.default_rng(11)
            dataset = scratch / "large.csv"
            rows = _messy_dataset(dataset, int(size_gb * 0.55 * 2**30), rng)
            _run([str(BIN / "aws"), "--endpoint-url", cloud.url, "s3", "cp", str(dataset), f"s3://{data}/datasets/large/large.csv"])
            dataset.unlink()
            _capture(workspace / "s3" / artifacts / "capture" / "sagestep-dev-credit" / "AllTraffic", 1_000_000, rng)
        return {"data": data, "artifacts": artifacts, "rows": rows}
    finally:
        cloud.stop()


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in (path / "s3").rglob("*") if p.is_file())


def _commands(workspace: Path, names: dict, url: str | None) -> dict[str, list[str]]:
    ws = ["--workspace", str(workspace)]
    commands = {
        "sagestep models list": [str(BIN / "sagestep"), "models", "list", *ws],
        "sagestep local endpoints": [str(BIN / "sagestep"), "local", "endpoints", *ws],
        "sagestep local history": [str(BIN / "sagestep"), "local", "history", "bench-history", *ws],
    }
    if url:
        commands["aws s3 ls s3://<artifacts>/"] = [str(BIN / "aws"), "--endpoint-url", url, "s3", "ls", f"s3://{names['artifacts']}/"]
        commands["aws s3 ls (1M records, recursive)"] = [str(BIN / "aws"), "--endpoint-url", url, "s3", "ls", "--recursive",
                                                         f"s3://{names['artifacts']}/capture/"]
    return commands


def _training_seconds(workspace: Path, names: dict, scratch: Path) -> float:
    execution_input = json.loads((ROOT / "events" / "training_state_machine_credit_data.json").read_text())
    execution_input["DataS3Uri"] = f"s3://{names['data']}/datasets/credit_data/"
    execution_input["DatasetConfigS3Uri"] = f"s3://{names['data']}/configs/credit_data.yaml"
    path = scratch / f"train-{workspace.name}.json"
    path.write_text(json.dumps(execution_input))
    cloud = Cloud(workspace)
    try:
        for local, key in ((ROOT / "data" / "credit_data" / "credit_data.csv", "datasets/credit_data/credit_data.csv"),
                           (ROOT / "ml" / "config" / "credit_data.yaml", "configs/credit_data.yaml")):
            _run([str(BIN / "aws"), "--endpoint-url", cloud.url, "s3", "cp", str(local), f"s3://{names['data']}/{key}"])
        return _run([str(BIN / "sagestep"), "local", "run", "TrainingStateMachine", "--input", str(path),
                     "--workspace", str(workspace)])
    finally:
        cloud.stop()


MOTO_PLAIN = """
import sys
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
server = ThreadedMotoServer("127.0.0.1", int(sys.argv[1]), verbose=False)
server.start()
sys.stdin.read()
"""


def _throughput(url: str, scratch: Path) -> dict[str, float]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = "bench-throughput"
    s3.create_bucket(Bucket=bucket)
    small = os.urandom(1 << 20)
    large = scratch / "large.bin"
    if not large.exists():
        large.write_bytes(os.urandom(64 << 20))
    started = time.perf_counter()
    for i in range(100):
        s3.put_object(Bucket=bucket, Key=f"small/{i}.bin", Body=small)
    for i in range(3):
        s3.upload_file(str(large), bucket, f"large/{i}.bin")
    put = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(100):
        s3.get_object(Bucket=bucket, Key=f"small/{i}.bin")["Body"].read()
    for i in range(3):
        s3.download_file(bucket, f"large/{i}.bin", str(scratch / "down.bin"))
    get = time.perf_counter() - started
    megabytes = 100 + 3 * 64
    return {"put_mb_per_s": round(megabytes / put, 1), "get_mb_per_s": round(megabytes / get, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)
    results: dict = {"benchmark": "workspace", "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                     "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
                     "goal_seconds": GOAL_SECONDS}
    with tempfile.TemporaryDirectory(prefix="bench-workspace-") as tmp:
        scratch = Path(tmp)
        spaces = {"empty": scratch / "empty", "large": scratch / "large"}
        names = {label: _seed(path, 0 if label == "empty" else args.size_gb, scratch) for label, path in spaces.items()}
        results["workspace_gb"] = {label: round(_du(path) / 2**30, 2) for label, path in spaces.items()}
        results["large_dataset_rows"] = names["large"]["rows"]
        for label, path in spaces.items():
            timings: dict = {}
            cloud = Cloud(path)
            try:
                for name, command in _commands(path, names[label], cloud.url).items():
                    timings[f"{name} (cloud up)"] = round(_median(command, args.rounds), 3)
                timings["cloud RSS MB after the commands"] = round(cloud.rss_mb(), 1)
            finally:
                cloud.stop()
            for name, command in _commands(path, names[label], None).items():
                timings[f"{name} (no cloud up: starts its own)"] = round(_median(command, max(2, args.rounds // 2)), 3)
            started = time.perf_counter()
            Cloud(path).stop()
            timings["local up: start + stop"] = round(time.perf_counter() - started, 2)
            if not args.skip_training:
                timings["training run (local run TrainingStateMachine)"] = round(_training_seconds(path, names[label], scratch), 1)
            results[label] = timings
        # S3 throughput: the local cloud (objects on disk, fsync per PUT) against moto's plain server (in memory)
        cloud = Cloud(scratch / "throughput")
        try:
            ours = _throughput(cloud.url, scratch)
        finally:
            cloud.stop()
        port = _free_port()
        plain = subprocess.Popen([sys.executable, "-c", MOTO_PLAIN, str(port)], stdin=subprocess.PIPE, env=ENV)
        time.sleep(3)
        try:
            theirs = _throughput(f"http://127.0.0.1:{port}", scratch)
        finally:
            plain.stdin.close()
            plain.terminate()
            plain.wait()
        results["s3_throughput"] = {"local_cloud": ours, "moto_server": theirs,
                                    "put_ratio_local_over_moto": round(ours["put_mb_per_s"] / theirs["put_mb_per_s"], 2),
                                    "get_ratio_local_over_moto": round(ours["get_mb_per_s"] / theirs["get_mb_per_s"], 2)}
        shutil.rmtree(scratch, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "workspace.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    slow = [k for label in ("empty", "large") for k, v in results[label].items() if "(cloud up)" in k and v > GOAL_SECONDS]
    print(f"commands over {GOAL_SECONDS:.0f} s with the cloud up: {slow or 'none'}")
    return 0 if not slow else 1


if __name__ == "__main__":
    sys.exit(main())
