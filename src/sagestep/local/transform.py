"""Batch Transform jobs, run locally under the SageMaker script-mode inference contract.

The model (from CreateModel) names its serving code the way the framework containers read it:
`SAGEMAKER_SUBMIT_DIRECTORY` (an s3:// tar.gz or prefix) and `SAGEMAKER_PROGRAM` (the module in it). The job
downloads the model artifact into `/opt/ml/model`, the code into `/opt/ml/code`, and runs a subprocess
(`local/transform_worker.py`, run as a file) that imports the program and calls `model_fn`, then per record (or
per mini-batch) `input_fn` → `predict_fn` → `output_fn`. Outputs go to `<S3OutputPath>/<input file>.out`, joined
with the input when `DataProcessing.JoinSource` is `Input`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sagestep.local.jobs import JobRunner, JobSpecError, LocalJob, parse_s3_uri


def _model_container(job: LocalJob) -> dict[str, Any]:
    import boto3

    model_name = job.request["ModelName"]
    try:
        model = boto3.client("sagemaker").describe_model(ModelName=model_name)
    except Exception as exc:
        raise JobSpecError(f"ModelName {model_name}: no such model; create it first (CreateModel)") from exc
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    if not container.get("ModelDataUrl"):
        raise JobSpecError(f"model {model_name} has no ModelDataUrl")
    return {**container, "EnableNetworkIsolation": bool(model.get("EnableNetworkIsolation"))}


def run_transform(job: LocalJob, runner: JobRunner) -> None:
    request = job.request
    container = _model_container(job)
    environment = dict(container.get("Environment") or {})
    environment.update(request.get("Environment") or {})
    program = environment.get("SAGEMAKER_PROGRAM")
    submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
    if not program or not submit:
        raise JobSpecError(
            f"model {request['ModelName']}: the local runtime serves script-mode models; set SAGEMAKER_PROGRAM and "
            f"SAGEMAKER_SUBMIT_DIRECTORY in the container Environment"
        )
    opt_ml = job.opt_ml
    job.set_secondary("Downloading", "Downloading model and code")
    model_dir, code_dir, input_dir, output_dir = (opt_ml / d for d in ("model", "code", "input", "output"))
    for directory in (model_dir, code_dir, input_dir, output_dir):
        directory.mkdir(parents=True, exist_ok=True)
    runner.store.download_extracted(container["ModelDataUrl"], model_dir)
    runner.store.download_extracted(submit, code_dir)
    source = request["TransformInput"]["DataSource"]["S3DataSource"]
    runner.store.download_prefix(source["S3Uri"], input_dir)
    spec = {
        "program": program,
        "model_dir": str(model_dir),
        "code_dir": str(code_dir),
        "input_dir": str(input_dir),
        "output_dir": str(output_dir),
        "content_type": request["TransformInput"].get("ContentType", "text/csv"),
        "accept": request["TransformOutput"].get("Accept", "text/csv"),
        "split_type": request["TransformInput"].get("SplitType", "None"),
        "batch_strategy": request.get("BatchStrategy", "MultiRecord"),
        "join_source": (request.get("DataProcessing") or {}).get("JoinSource", "None"),
        "capture": _capture_spec(job, runner, request.get("DataCaptureConfig")),
    }
    spec_path = job.root / "transform_spec.json"
    spec_path.write_text(json.dumps(spec))
    job.set_secondary("Transforming", "Scoring the input")
    # Run as a file, not -m: the program must import the sagestep of its own code bundle (runtime packages only).
    from sagestep.local import interpreters

    # the serving image runs the program: the serving interpreter, not the job image's (local/interpreters.py)
    command = [interpreters.serve_python(), str(Path(__file__).with_name("transform_worker.py")), str(spec_path)]
    env = runner.environment(job, {**environment, "PYTHONPATH": str(code_dir)})
    code, tail = runner.execute(job, command, env, job.root, isolated=bool(container.get("EnableNetworkIsolation")))
    if code is None:
        runner._finish(job, "Stopped", "Stopped: MaxRuntimeInSeconds exceeded or StopTransformJob called")
        return
    if code != 0:
        runner._finish(job, "Failed", runner.failure_reason(job, code, tail))
        return
    runner.store.upload_dir(output_dir, request["TransformOutput"]["S3OutputPath"])
    if spec["capture"] and Path(spec["capture"]["directory"]).is_dir():
        runner.store.upload_dir(Path(spec["capture"]["directory"]), spec["capture"]["s3_uri"])
    runner._finish(job, "Completed")


def _capture_spec(job: LocalJob, runner: JobRunner, config: dict[str, Any] | None) -> dict[str, Any] | None:
    """Batch data capture, written locally as endpoint-style JSONL records (see README: differences from AWS)
    under <DestinationS3Uri>/<job>/AllTraffic/yyyy/mm/dd/hh/, so the same monitoring code reads both."""
    if not config:
        return None
    bucket, prefix = parse_s3_uri(config["DestinationS3Uri"])
    return {
        "directory": str(job.root / "capture"),
        "s3_uri": f"s3://{bucket}/{prefix.strip('/')}/{job.name}/AllTraffic",
        "generate_inference_id": bool(config.get("GenerateInferenceId", False)),
    }
