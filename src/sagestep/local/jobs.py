"""SageMaker jobs that really run: the job's entry point under the SageMaker container contract.

A job's `/opt/ml` tree lives under `<workspace>/jobs/<job name>/opt/ml`: S3 inputs are downloaded there, the entry
point (ContainerEntrypoint + ContainerArguments, with every `/opt/ml` path mapped into that tree) runs in a
subprocess, and outputs are uploaded back to S3 when it succeeds. Status goes InProgress → Completed, or Failed
with a FailureReason carrying `/opt/ml/output/failure` and the tail of stderr, or Stopped when
`StoppingCondition.MaxRuntimeInSeconds` passes or StopXJob is called.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.client import BaseClient

OPT_ML = "/opt/ml"
FAILURE_REASON_MAX = 1024  # SageMaker's limit on FailureReason
_PYTHONS = {"python", "python3", "python3.11", "/usr/bin/python3", "/usr/local/bin/python3", "/usr/bin/env"}


class JobSpecError(ValueError):
    """The job request cannot run locally (as opposed to the script failing)."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if not match:
        raise JobSpecError(f"{uri!r} is not an s3://bucket/key URI")
    return match.group(1), match.group(2)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _parse_time(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


@dataclasses.dataclass
class LocalJob:
    kind: str  # processing | training | transform
    name: str
    arn: str
    request: dict[str, Any]
    root: Path
    status: str = "InProgress"
    secondary_status: str = "Starting"
    failure_reason: str | None = None
    exit_message: str | None = None
    creation_time: dt.datetime = dataclasses.field(default_factory=now)
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    metrics: dict[str, tuple[float, dt.datetime]] = dataclasses.field(default_factory=dict)
    model_artifacts: str | None = None
    transitions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    stop_requested: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)
    done: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)

    @property
    def opt_ml(self) -> Path:
        return self.root / "opt" / "ml"

    @property
    def log_path(self) -> Path:
        return self.root / "logs" / "stdout_stderr.log"

    def set_secondary(self, status: str, message: str) -> None:
        stamp = now()
        if self.transitions:
            self.transitions[-1]["EndTime"] = stamp
        self.transitions.append({"Status": status, "StartTime": stamp, "StatusMessage": message})
        self.secondary_status = status

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {k: v for k, v in self.request.items() if k != "Tags"}
        last_modified = self.end_time or self.start_time or self.creation_time
        common = {"CreationTime": self.creation_time, "LastModifiedTime": last_modified}
        if self.failure_reason:
            common["FailureReason"] = self.failure_reason
        if self.kind == "training":
            body.update(common)
            body.update(
                TrainingJobArn=self.arn,
                TrainingJobStatus=self.status,
                SecondaryStatus=self.secondary_status,
                SecondaryStatusTransitions=self.transitions,
                FinalMetricDataList=[
                    {"MetricName": k, "Value": v, "Timestamp": t} for k, (v, t) in sorted(self.metrics.items())
                ],
            )
            if self.model_artifacts:
                body["ModelArtifacts"] = {"S3ModelArtifacts": self.model_artifacts}
            if self.start_time:
                body["TrainingStartTime"] = self.start_time
            if self.end_time:
                body["TrainingEndTime"] = self.end_time
                body["TrainingTimeInSeconds"] = max(1, int((self.end_time - (self.start_time or self.end_time)).total_seconds()))
                body["BillableTimeInSeconds"] = body["TrainingTimeInSeconds"]
        elif self.kind == "processing":
            body.update(common)
            body.update(ProcessingJobArn=self.arn, ProcessingJobStatus=self.status)
            if self.exit_message:
                body["ExitMessage"] = self.exit_message
            if self.start_time:
                body["ProcessingStartTime"] = self.start_time
            if self.end_time:
                body["ProcessingEndTime"] = self.end_time
        else:
            body.update(common)
            body.update(TransformJobArn=self.arn, TransformJobStatus=self.status)
            if self.start_time:
                body["TransformStartTime"] = self.start_time
            if self.end_time:
                body["TransformEndTime"] = self.end_time
        return body


class S3Store:
    """Download and upload under the SageMaker rules for S3Prefix data sources, through one boto3 client.

    Objects up to SINGLE_REQUEST_BYTES move in one GET or PUT; larger ones through boto3's managed transfer (ranged,
    multipart). The managed transfer starts a thread pool per call, most of the cost of a small object here. The
    local cloud says where an object's bytes lie in its workspace (`object_file`): a job's inputs are listed through
    S3 and copied from there (a GET per small capture file cost more than the job's own work)."""

    SINGLE_REQUEST_BYTES = 64 * 2**20

    def __init__(self, client_factory: Callable[[], BaseClient],
                 object_file: Callable[[str, str], Path | None] | None = None) -> None:
        self._client_factory = client_factory
        self._object_file = object_file  # where the cloud keeps an object's bytes, if it tells: copied, not fetched
        self._client: BaseClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> BaseClient:
        with self._lock:  # boto3 clients are thread-safe once made; making one is not
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def _get(self, bucket: str, key: str, destination: Path, size: int | None = None) -> None:
        source = self._object_file(bucket, key) if self._object_file is not None else None
        if source is not None:
            try:
                shutil.copyfile(source, destination)
                return
            except FileNotFoundError:  # replaced or deleted since it was listed: ask S3
                pass
        client = self.client
        if size is None:
            size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        if size > self.SINGLE_REQUEST_BYTES:
            client.download_file(bucket, key, str(destination))
            return
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        with open(destination, "wb") as out:
            shutil.copyfileobj(body, out, 2**20)

    def _put(self, path: Path, bucket: str, key: str) -> None:
        if path.stat().st_size > self.SINGLE_REQUEST_BYTES:
            self.client.upload_file(str(path), bucket, key)
            return
        with open(path, "rb") as body:
            self.client.put_object(Bucket=bucket, Key=key, Body=body)

    def download_prefix(self, uri: str, target: Path) -> int:
        bucket, prefix = parse_s3_uri(uri)
        client = self.client
        # SageMaker keeps the key path below the prefix's last '/', so s3://b/a/train matches a/train.csv → train.csv.
        if not prefix or prefix.endswith("/"):
            base = prefix
        else:
            base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        count = 0
        paginator = client.get_paginator("list_objects_v2")
        try:
            client.head_bucket(Bucket=bucket)
        except client.exceptions.ClientError:
            raise JobSpecError(f"{uri}: bucket {bucket} does not exist (check the S3Uri of the input channel)") from None
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue
                destination = target / key[len(base):]
                destination.parent.mkdir(parents=True, exist_ok=True)
                self._get(bucket, key, destination, item.get("Size"))
                count += 1
        if count == 0:
            raise JobSpecError(f"no objects under {uri}: the input channel is empty (check the S3Uri and that the data was uploaded)")
        return count

    def download_manifest(self, uri: str, target: Path) -> int:
        """S3DataType ManifestFile: a JSON list `[{"prefix": "s3://b/p/"}, "relative/key", ...]`; files keep their
        relative keys under the channel directory, as SageMaker does."""
        bucket, key = parse_s3_uri(uri)
        manifest = json.loads(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        if not manifest or not isinstance(manifest[0], dict) or "prefix" not in manifest[0]:
            raise JobSpecError(f"{uri}: a manifest starts with {{\"prefix\": \"s3://bucket/prefix/\"}}")
        prefix_bucket, prefix = parse_s3_uri(manifest[0]["prefix"])
        for relative in manifest[1:]:
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            self._get(prefix_bucket, prefix + relative, destination)
        return len(manifest) - 1

    def download_extracted(self, uri: str, target: Path) -> None:
        """A model or code location as SageMaker hosting reads it: a .tar.gz is extracted, a prefix downloaded."""
        if uri.endswith(".tar.gz"):
            archive = target.parent / f".{target.name}.tar.gz"
            self.download_object(uri, archive)
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
            archive.unlink()
        else:
            self.download_prefix(uri, target)

    def download_object(self, uri: str, destination: Path) -> None:
        bucket, key = parse_s3_uri(uri)
        destination.parent.mkdir(parents=True, exist_ok=True)
        self._get(bucket, key, destination)

    def upload_dir(self, source: Path, uri: str) -> int:
        bucket, prefix = parse_s3_uri(uri)
        prefix = prefix.rstrip("/")
        count = 0
        for path in sorted(source.rglob("*")):
            if path.is_file():
                key = f"{prefix}/{path.relative_to(source).as_posix()}" if prefix else path.relative_to(source).as_posix()
                self._put(path, bucket, key)
                count += 1
        return count

    def upload_bytes(self, data: bytes, uri: str) -> None:
        bucket, key = parse_s3_uri(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)


def _tar_gz(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(str(path), arcname=path.relative_to(directory).as_posix(), recursive=False)
    return buffer.getvalue()


class JobRunner:
    """Runs SageMaker jobs in threads + subprocesses; one instance per local runtime."""

    def __init__(self, workspace: Path, store: S3Store, python: str | None = None,
                 on_change: Callable[[LocalJob], None] | None = None) -> None:
        from sagestep.local import interpreters

        self.jobs_dir = workspace / "jobs"
        self.store = store
        self.python = python or interpreters.job_python()  # the job image's libraries (local/interpreters.py)
        self.on_change = on_change  # told when a job starts and when it ends (the cloud persists and reports it)
        self.jobs: dict[tuple[str, str], LocalJob] = {}
        self._lock = threading.Lock()

    def restore(self, record: dict[str, Any]) -> LocalJob:
        """A job of an earlier session of the workspace, from its job.json; one that was still running is Stopped."""
        describe = record["describe"]
        kind = record["kind"]
        status_key = {"processing": "ProcessingJobStatus", "training": "TrainingJobStatus", "transform": "TransformJobStatus"}[kind]
        arn_key = {"processing": "ProcessingJobArn", "training": "TrainingJobArn", "transform": "TransformJobArn"}[kind]
        job = LocalJob(kind=kind, name=record["name"], arn=describe[arn_key], request=record["request"], root=Path(record["root"]))
        job.status = describe[status_key]
        job.failure_reason = describe.get("FailureReason")
        job.exit_message = describe.get("ExitMessage")
        job.model_artifacts = (describe.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        job.creation_time = _parse_time(describe.get("CreationTime")) or job.creation_time
        job.start_time = _parse_time(describe.get(f"{kind.capitalize()}StartTime") or describe.get("TrainingStartTime"))
        job.end_time = _parse_time(describe.get(f"{kind.capitalize()}EndTime") or describe.get("TrainingEndTime"))
        job.transitions = [{k: (_parse_time(v) if k.endswith("Time") else v) for k, v in t.items()}
                           for t in describe.get("SecondaryStatusTransitions", [])]
        job.secondary_status = describe.get("SecondaryStatus", job.status)
        job.metrics = {m["MetricName"]: (m["Value"], _parse_time(m["Timestamp"])) for m in describe.get("FinalMetricDataList", [])}
        if job.status in ("InProgress", "Stopping"):
            self._finish(job, "Stopped", "the local cloud stopped while this job ran")
        job.done.set()
        self.jobs[(kind, job.name)] = job
        return job

    def record(self, job: LocalJob) -> dict[str, Any]:
        return {"kind": job.kind, "name": job.name, "root": str(job.root), "request": job.request, "describe": job.describe()}

    def get(self, kind: str, name: str) -> LocalJob | None:
        return self.jobs.get((kind, name))

    def running(self) -> list[LocalJob]:
        return [job for job in self.jobs.values() if job.status in ("InProgress", "Stopping")]

    def start(self, kind: str, request: dict[str, Any], arn: str) -> LocalJob:
        name = request[{"processing": "ProcessingJobName", "training": "TrainingJobName", "transform": "TransformJobName"}[kind]]
        root = self.jobs_dir / name
        with self._lock:
            if (kind, name) in self.jobs:
                raise JobSpecError(f"a {kind} job named {name} already exists; job names must be unique")
            if root.exists():
                shutil.rmtree(root)  # a job of that name from an earlier session of this workspace
            job = LocalJob(kind=kind, name=name, arn=arn, request=request, root=root)
            self.jobs[(kind, name)] = job
        if self.on_change is not None:
            self.on_change(job)
        thread = threading.Thread(target=self._run, args=(job,), name=f"sagemaker-{kind}-{name}", daemon=True)
        thread.start()
        return job

    def stop(self, kind: str, name: str) -> None:
        job = self.jobs.get((kind, name))
        if job is not None and job.status == "InProgress":
            job.status = "Stopping"
            job.stop_requested.set()

    # -- running

    def _run(self, job: LocalJob) -> None:
        job.start_time = now()
        try:
            if job.kind == "processing":
                self._run_processing(job)
            elif job.kind == "training":
                self._run_training(job)
            else:
                from sagestep.local.transform import run_transform

                run_transform(job, self)
        except JobSpecError as exc:
            self._finish(job, "Failed", f"ClientError: {exc}")
        except Exception as exc:  # the runtime itself failed: report it as the job's failure, loudly
            self._finish(job, "Failed", f"InternalServerError: local runtime error: {type(exc).__name__}: {exc}")
        finally:
            job.done.set()

    def _finish(self, job: LocalJob, status: str, reason: str | None = None) -> None:
        job.end_time = now()
        if reason:
            job.failure_reason = reason[:FAILURE_REASON_MAX]
        job.status = status
        job.set_secondary({"Completed": "Completed", "Failed": "Failed", "Stopped": "Stopped"}[status], reason or status)
        if self.on_change is not None:
            self.on_change(job)

    def map_path(self, job: LocalJob, value: str) -> str:
        """Map a container path under /opt/ml to the job's local tree (other strings pass through)."""
        if value == OPT_ML or value.startswith(OPT_ML + "/"):
            return str(job.opt_ml) + value[len(OPT_ML):]
        return value.replace(f"={OPT_ML}/", f"={job.opt_ml}/").replace(f":{OPT_ML}/", f":{job.opt_ml}/")

    def command(self, job: LocalJob, entrypoint: list[str] | None, arguments: list[str] | None, image: str) -> list[str]:
        if not entrypoint:
            raise JobSpecError(
                f"{image}: the local runtime runs a job through its ContainerEntrypoint (there is no Docker to run the "
                f"image's own entry point); set ContainerEntrypoint, e.g. [\"python3\", \"/opt/ml/.../code/ml/<script>.py\"]"
            )
        command = [self.map_path(job, part) for part in list(entrypoint) + list(arguments or [])]
        if command[0] == "/usr/bin/env":
            command = command[1:]
        if command and (command[0] in _PYTHONS or Path(command[0]).name.startswith("python")):
            command[0] = self.python
        return command

    def environment(self, job: LocalJob, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_", "SAGESTEP_"))}
        # A job has no AWS access locally: any AWS call it makes fails fast instead of reaching a real account.
        env.update(
            AWS_ACCESS_KEY_ID="local-job-has-no-aws-access",
            AWS_SECRET_ACCESS_KEY="local-job-has-no-aws-access",
            AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            AWS_ENDPOINT_URL="http://127.0.0.1:9",
            PYTHONUNBUFFERED="1",
        )
        env.update({k: self.map_path(job, str(v)) for k, v in extra.items()})
        return env

    def execute(self, job: LocalJob, command: list[str], env: dict[str, str], cwd: Path,
                isolated: bool | None = None) -> tuple[int | None, str]:
        """Run the entry point; return (exit code or None if stopped, stderr tail). With network isolation (the
        request's EnableNetworkIsolation, or `isolated`) the process reaches no network (`local/isolation.py`)."""
        from sagestep.local import isolation

        namespace = False
        if isolation.job_isolated(job.kind, job.request) if isolated is None else isolated:
            env = isolation.guard_environment(env)
            namespace = isolation.namespaces_work()
        max_runtime = (job.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        stderr_path = job.root / "logs" / "stderr.log"
        deadline = time.monotonic() + max_runtime if max_runtime else None
        with open(job.log_path, "wb") as log, open(stderr_path, "wb") as err:
            process = self._start(command, env, cwd, namespace)
            pumps = [
                threading.Thread(target=_pump, args=(process.stdout, [log]), daemon=True),
                threading.Thread(target=_pump, args=(process.stderr, [log, err]), daemon=True),
            ]
            for pump in pumps:
                pump.start()
            stopped = False
            while process.poll() is None:
                if job.stop_requested.is_set() or (deadline is not None and time.monotonic() > deadline):
                    process.terminate()
                    try:
                        process.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        process.kill()
                    stopped = True
                    break
                time.sleep(0.05)
            process.wait()
            for pump in pumps:
                pump.join(timeout=5)
        tail = _tail(stderr_path.read_bytes().decode("utf-8", "replace"))
        if stopped:
            return None, tail
        return process.returncode, tail

    @staticmethod
    def _start(command: list[str], env: dict[str, str], cwd: Path, namespace: bool) -> Any:
        """The job's process, with stdout and stderr pipes: forked from its interpreter's zygote when the command is
        `<image interpreter> script.py ...` (local/forkserver.py), else started as the command."""
        from sagestep.local import forkserver, interpreters, isolation

        preload = interpreters.preload(command[0])
        if preload is not None:
            out_read, out_write = os.pipe()
            err_read, err_write = os.pipe()
            try:
                forked = forkserver.fork(command[0], preload, command[1:], env=env, cwd=cwd, stdout=out_write,
                                         stderr=err_write, network_namespace=namespace)
            finally:
                os.close(out_write)
                os.close(err_write)
            if forked is not None:
                forked.stdout, forked.stderr = os.fdopen(out_read, "rb"), os.fdopen(err_read, "rb")
                return forked
            os.close(out_read)
            os.close(err_read)
        if namespace:
            command = isolation.namespaced(command)
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=die_with_parent)

    def failure_reason(self, job: LocalJob, code: int, tail: str) -> str:
        failure_file = job.opt_ml / "output" / "failure"
        head = f"AlgorithmError: exit code {code}"
        if failure_file.is_file():
            head += f": {failure_file.read_text(errors='replace').strip()[:400]}"
        return f"{head}\n--- stderr tail ---\n{tail}"[-FAILURE_REASON_MAX:] if len(head) < FAILURE_REASON_MAX else head

    # -- processing

    def _run_processing(self, job: LocalJob) -> None:
        request = job.request
        app = request.get("AppSpecification") or {}
        inputs_dir = job.opt_ml / "processing"
        inputs_dir.mkdir(parents=True, exist_ok=True)
        # As SageMaker does: the job's request at /opt/ml/config/processingjobconfig.json (inputs' S3 URIs and paths)
        (job.opt_ml / "config").mkdir(parents=True, exist_ok=True)
        (job.opt_ml / "config" / "processingjobconfig.json").write_text(
            json.dumps({"ProcessingJobName": job.name, "ProcessingJobArn": job.arn, **request}, indent=2, default=str))
        job.set_secondary("Downloading", "Downloading input data")
        for channel in request.get("ProcessingInputs") or []:
            s3_input = channel.get("S3Input")
            if not s3_input:
                raise JobSpecError(f"input {channel.get('InputName')}: only S3Input is supported locally")
            local_path = _container_path(s3_input["LocalPath"], "/opt/ml/processing/", channel.get("InputName"))
            target = Path(self.map_path(job, local_path))
            target.mkdir(parents=True, exist_ok=True)
            if s3_input.get("S3DataType") == "ManifestFile":
                self.store.download_manifest(s3_input["S3Uri"], target)
            else:
                self.store.download_prefix(s3_input["S3Uri"], target)
        outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        for output in outputs:
            local_path = _container_path(output["S3Output"]["LocalPath"], "/opt/ml/processing/", output.get("OutputName"))
            Path(self.map_path(job, local_path)).mkdir(parents=True, exist_ok=True)
        command = self.command(job, app.get("ContainerEntrypoint"), app.get("ContainerArguments"), app.get("ImageUri", "?"))
        job.set_secondary("Processing", "Running the processing script")
        code, tail = self.execute(job, command, self.environment(job, request.get("Environment") or {}), job.root)
        if code is None:
            self._finish(job, "Stopped", "Stopped: MaxRuntimeInSeconds exceeded or StopProcessingJob called")
            return
        if code != 0:
            reason = self.failure_reason(job, code, tail)
            message = job.opt_ml / "output" / "message"  # the container's own ExitMessage (first 1 KB), as in AWS
            job.exit_message = (message.read_text(errors="replace")[:FAILURE_REASON_MAX] if message.is_file()
                                else tail[-FAILURE_REASON_MAX:])
            self._finish(job, "Failed", reason)
            return
        job.set_secondary("Uploading", "Uploading output data")
        for output in outputs:
            s3_output = output["S3Output"]
            self.store.upload_dir(Path(self.map_path(job, s3_output["LocalPath"])), s3_output["S3Uri"])
        self._finish(job, "Completed")

    # -- training

    def _run_training(self, job: LocalJob) -> None:
        request = job.request
        algorithm = request.get("AlgorithmSpecification") or {}
        opt_ml = job.opt_ml
        config_dir = opt_ml / "input" / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        hyperparameters = request.get("HyperParameters") or {}
        (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2))
        channels = request.get("InputDataConfig") or []
        (config_dir / "inputdataconfig.json").write_text(
            json.dumps({c["ChannelName"]: {k: v for k, v in c.items() if k != "DataSource"} for c in channels}, indent=2)
        )
        (config_dir / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"})
        )
        job.set_secondary("Downloading", "Downloading input data")
        env: dict[str, str] = {
            "SM_MODEL_DIR": "/opt/ml/model",
            "SM_INPUT_DIR": "/opt/ml/input",
            "SM_INPUT_CONFIG_DIR": "/opt/ml/input/config",
            "SM_OUTPUT_DIR": "/opt/ml/output",
            "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
            "SM_HPS": json.dumps(hyperparameters),
            "SM_CHANNELS": json.dumps([c["ChannelName"] for c in channels]),
            "SM_CURRENT_HOST": "algo-1",
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NUM_GPUS": "0",
            "SM_TRAINING_JOB_NAME": job.name,
        }
        for channel in channels:
            name = channel["ChannelName"]
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if not source:
                raise JobSpecError(f"channel {name}: only S3DataSource is supported locally")
            target = opt_ml / "input" / "data" / name
            target.mkdir(parents=True, exist_ok=True)
            self.store.download_prefix(source["S3Uri"], target)
            env[f"SM_CHANNEL_{name.upper()}"] = f"/opt/ml/input/data/{name}"
        for sub in ("model", "output/data"):
            (opt_ml / sub).mkdir(parents=True, exist_ok=True)
        env.update(request.get("Environment") or {})
        entrypoint = algorithm.get("ContainerEntrypoint")
        program, submitted = hyperparameters.get("sagemaker_program"), hyperparameters.get("sagemaker_submit_directory")
        if not entrypoint and program and submitted:
            # Script mode (the SageMaker training toolkit's contract, and the only way a tuning job's trials name
            # their code: a tuning job's AlgorithmSpecification has no ContainerEntrypoint): the source archive
            # extracted into /opt/ml/code, the program run from there.
            self.store.download_extracted(str(submitted).strip('"'), opt_ml / "code")
            entrypoint = ["python3", f"/opt/ml/code/{str(program).strip(chr(34))}"]
        command = self.command(
            job, entrypoint, algorithm.get("ContainerArguments"), algorithm.get("TrainingImage", "?")
        )
        job.set_secondary("Training", "Training image download completed. Training in progress.")
        code, tail = self.execute(job, command, self.environment(job, env), job.root)
        self._collect_metrics(job, algorithm.get("MetricDefinitions") or [])
        if code is None:
            job.failure_reason = "MaxRuntimeExceeded: the job ran past StoppingCondition.MaxRuntimeInSeconds or was stopped"
            self._finish(job, "Stopped", job.failure_reason)
            return
        if code != 0:
            self._finish(job, "Failed", self.failure_reason(job, code, tail))
            return
        job.set_secondary("Uploading", "Uploading generated training model")
        output_path = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        job.model_artifacts = f"{output_path}/{job.name}/output/model.tar.gz"
        self.store.upload_bytes(_tar_gz(opt_ml / "model"), job.model_artifacts)
        if any((opt_ml / "output" / "data").iterdir()):
            self.store.upload_bytes(_tar_gz(opt_ml / "output" / "data"), f"{output_path}/{job.name}/output/output.tar.gz")
        self._finish(job, "Completed")

    def _collect_metrics(self, job: LocalJob, definitions: list[dict[str, str]]) -> None:
        if not job.log_path.exists():
            return
        text = job.log_path.read_text(errors="replace")
        for definition in definitions:
            pattern = re.compile(definition["Regex"])
            values = [m.group(1) for m in pattern.finditer(text)]
            for value in reversed(values):
                try:
                    job.metrics[definition["Name"]] = (float(value), now())  # SageMaker keeps the last value
                    break
                except ValueError:
                    continue


def die_with_parent() -> None:
    """In the child before exec: a job never outlives the local cloud that runs it (even after `kill -9`)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the job's pipes close with the cloud, and its output is not uploaded


def _container_path(path: str, required_prefix: str, what: str | None) -> str:
    if not path.startswith(required_prefix):
        raise JobSpecError(f"{what}: LocalPath {path!r} must be under {required_prefix} (SageMaker rejects it otherwise)")
    return path


def _pump(stream: Any, sinks: list[Any]) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):
        for sink in sinks:
            sink.write(chunk)
            sink.flush()


def _tail(text: str, lines: int = 25, chars: int = 900) -> str:
    tail = "\n".join(text.rstrip().splitlines()[-lines:])
    return tail[-chars:]
