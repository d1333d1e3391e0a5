"""The code bundle: how `ml/` and the sagestep library reach SageMaker jobs and serving containers.

A bundle is published under `s3://<artifacts>/code/<version>/`, where version is a hash of the content:

    ml/...                    the entry points, run as `python3 /opt/ml/.../code/ml/<script>.py`
    src/sagestep/...          the runtime packages of the library (RUNTIME_PACKAGES), on PYTHONPATH for those jobs
    sourcedir.tar.gz          script-mode serving source: ml/* at the root plus sagestep/ (SAGEMAKER_PROGRAM=inference.py),
                              with wheels/ for the offline install of requirements.txt (network isolation)
    VERSION.json              version and git commit, recorded in each model's lineage

In AWS the CodeBundle custom resource (functions/code_bundle) publishes it from the layers on every deploy that
changes them; locally the runtime publishes it from the working tree. Old versions are never deleted: registered
models point at the code that trained them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_ML_SUFFIXES = {".py", ".yaml", ".yml", ".json", ".txt", ".whl"}
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)\s*$")
_LIBRARY_SUFFIXES = {".py", ".typed", ".j2", ".json"}  # .j2: the training report page; .json: the audit record schema
# The packages of src/sagestep/ that Lambda functions, SageMaker jobs and the serving container import: the only
# ones that ship (Lambda layer, job bundle, serving source dir). Everything else under src/sagestep/ (local/,
# validate/, cli/, stack/, console/) is tooling, which runtime code never imports. The training report
# (training/report/) is runtime: the training pipeline's report step (ml/report.py) renders it in the job image, which
# provides jinja2 and matplotlib.
RUNTIME_PACKAGES = ("abtest", "audit", "aws", "monitoring", "registry", "serving", "training")
_LIBRARY_ROOT_FILES = ("__init__.py", "py.typed")


def library_files(library_dir: Path) -> list[Path]:
    """The files of the sagestep library that ship: its root `__init__` and the runtime packages, no caches."""
    missing = [package for package in RUNTIME_PACKAGES if not (library_dir / package / "__init__.py").is_file()]
    if (library_dir / "__init__.py").is_file() and missing:
        raise FileNotFoundError(f"{library_dir}: the sagestep library lacks its runtime package(s) {', '.join(missing)}; "
                                "a bundle without them would fail in the jobs that import them (rebuild the layer: sam build)")
    files = [library_dir / name for name in _LIBRARY_ROOT_FILES if (library_dir / name).is_file()]
    for package in RUNTIME_PACKAGES:
        files += [p for p in (library_dir / package).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix in _LIBRARY_SUFFIXES]
    if not (library_dir / "__init__.py").is_file():
        raise FileNotFoundError(f"{library_dir}: not the sagestep library (no __init__.py); a bundle without it "
                                "would fail in every job")
    return sorted(files)


def collect(ml_dir: Path, library_dir: Path) -> list[tuple[str, bytes]]:
    """(bundle path, content) of every file to ship, sorted; caches, tests and tooling are left out."""
    files: list[tuple[str, bytes]] = []
    for path in sorted(ml_dir.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix not in _ML_SUFFIXES:
            continue
        if path.parts[len(ml_dir.parts)] == "python":
            continue  # in the Lambda, the sagestep layer's python/ directory shares /opt with ml/
        files.append((f"ml/{path.relative_to(ml_dir).as_posix()}", path.read_bytes()))
    if not files:
        raise FileNotFoundError(f"{ml_dir}: no ml/ entry points found to publish")
    check_serving_wheels(files, ml_dir)
    files += [(f"src/sagestep/{p.relative_to(library_dir).as_posix()}", p.read_bytes()) for p in library_files(library_dir)]
    return sorted(files)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def check_serving_wheels(files: list[tuple[str, bytes]], ml_dir: Path) -> None:
    """The serving container installs requirements.txt offline (`--no-index --find-links wheels`: the models run
    with network isolation), so every pinned requirement needs its wheel in ml/wheels/; refuse to publish without."""
    contents = dict(files)
    requirements = contents.get("ml/requirements.txt")
    if requirements is None:
        return
    wheels = {name.rsplit("/", 1)[-1] for name in contents if name.startswith("ml/wheels/") and name.endswith(".whl")}
    missing = []
    for line in requirements.decode().splitlines():
        match = _REQUIREMENT.match(line.strip())
        if match is None:
            continue
        prefix = f"{_normalized(match.group(1))}-{match.group(2)}-"
        if not any(_normalized(w.split("-", 1)[0]) + "-" + w.split("-", 2)[1] + "-" == prefix for w in wheels):
            missing.append(f"{match.group(1)}=={match.group(2)}")
    if missing:
        raise FileNotFoundError(
            f"{ml_dir / 'wheels'}: no wheel for {', '.join(missing)} (ml/requirements.txt): the serving container installs "
            "them offline (network isolation); run `make ml-wheels` (locally) or `sam build` (ml/Makefile downloads them)")


def write_layer(library_dir: Path, out_dir: Path) -> list[Path]:
    """The Lambda layer's code: the runtime packages under <out_dir>/python/sagestep/ (see src/Makefile)."""
    written = []
    for path in library_files(library_dir):
        target = out_dir / "python" / "sagestep" / path.relative_to(library_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
        written.append(target)
    return written


def version_of(files: Iterable[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for name, content in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()[:16]


def sourcedir_tarball(files: list[tuple[str, bytes]]) -> bytes:
    """Script-mode serving source dir; the same bytes for the same content (tar and gzip headers carry no time).
    The last one built is kept: a process that publishes the same code again (the local cloud, once per workspace)
    does not compress the wheels again."""
    version = version_of(files)
    if _LAST_TARBALL[0] == version:
        return _LAST_TARBALL[1]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in files:
            arcname = name[len("ml/"):] if name.startswith("ml/") else name[len("src/"):]
            info = tarfile.TarInfo(arcname)
            info.size = len(content)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(content))
    tarball = gzip.compress(buffer.getvalue(), mtime=0)
    _LAST_TARBALL[:] = [version, tarball]
    return tarball


_LAST_TARBALL: list[Any] = [None, b""]  # (version, sourcedir.tar.gz)


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
