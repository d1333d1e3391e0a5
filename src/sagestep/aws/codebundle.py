"""The code bundle: how `ml/` and the sagestep library reach SageMaker jobs and serving containers.

A bundle is published under `s3://<artifacts>/code/<version>/`, where version is a hash of the content:

    ml/...                    the entry points, run as `python3 /opt/ml/.../code/ml/<script>.py`
    src/sagestep/...          the library, on PYTHONPATH for those jobs
    sourcedir.tar.gz          script-mode serving source: ml/* at the root plus sagestep/ (SAGEMAKER_PROGRAM=inference.py)
    VERSION.json              version and git commit, recorded in each model's lineage

In AWS the CodeBundle custom resource (functions/code_bundle) publishes it from the layers on every deploy that
changes them; locally the runtime publishes it from the working tree. Old versions are never deleted: registered
models point at the code that trained them.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_ML_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".txt"}


def collect(ml_dir: Path, library_dir: Path) -> list[tuple[str, bytes]]:
    """(bundle path, content) of every file to ship, sorted; caches and tests are left out."""
    files: list[tuple[str, bytes]] = []
    for base, prefix, suffixes in ((ml_dir, "ml", _ML_SUFFIXES), (library_dir, "src/sagestep", {".py", ".typed"})):
        for path in sorted(base.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix not in suffixes:
                continue
            if prefix == "ml" and path.parts[len(base.parts)] == "python":
                continue  # in the Lambda, the sagestep layer's python/ directory shares /opt with ml/
            files.append((f"{prefix}/{path.relative_to(base).as_posix()}", path.read_bytes()))
    if not any(name.startswith("ml/") for name, _ in files):
        raise FileNotFoundError(f"{ml_dir}: no ml/ entry points found to publish")
    return files


def version_of(files: Iterable[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for name, content in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()[:16]


def sourcedir_tarball(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files:
            arcname = name[len("ml/"):] if name.startswith("ml/") else name[len("src/"):]
            info = tarfile.TarInfo(arcname)
            info.size = len(content)
            info.mtime = 0  # reproducible bytes for the same content
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def publish(s3: Any, bucket: str, prefix: str, files: list[tuple[str, bytes]], git_commit: str) -> dict[str, str]:
    version = version_of(files)
    base = f"{prefix.strip('/')}/{version}"
    for name, content in files:
        s3.put_object(Bucket=bucket, Key=f"{base}/{name}", Body=content)
    s3.put_object(Bucket=bucket, Key=f"{base}/sourcedir.tar.gz", Body=sourcedir_tarball(files))
    s3.put_object(Bucket=bucket, Key=f"{base}/VERSION.json", Body=json.dumps({"version": version, "git_commit": git_commit}).encode())
    return {"S3Uri": f"s3://{bucket}/{base}/", "Version": version}


def handle_custom_resource(event: dict[str, Any], context: Any, s3: Any, ml_dir: Path, library_dir: Path) -> None:
    """CloudFormation custom resource protocol: always answer the ResponseURL, SUCCESS or FAILED with the reason."""
    props = event.get("ResourceProperties", {})
    status, reason, data = "SUCCESS", "", {}
    physical_id = event.get("PhysicalResourceId", "code-bundle")
    try:
        if event["RequestType"] in ("Create", "Update"):
            files = collect(ml_dir, library_dir)
            data = publish(s3, props["BucketName"], props["Prefix"], files, git_commit=props.get("GitCommit", "deployed"))
            physical_id = data["S3Uri"]
    except Exception as exc:  # CloudFormation waits an hour for an answer that never comes otherwise
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or f"see CloudWatch log stream {getattr(context, 'log_stream_name', '')}",
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - CloudFormation's pre-signed URL
        response.read()
