"""The local workspace: what persists between `sagestep` commands.

    <workspace>/s3/<bucket>/<key>        local S3 objects, as plain files
    <workspace>/registry/sagemaker.pkl   models, endpoint configs, endpoints, model package groups and packages
    <workspace>/registry/jobs.json       finished SageMaker jobs (Describe* output)
    <workspace>/executions/<name>.json   execution records: describe + event history
    <workspace>/jobs/<job>/              each job's /opt/ml tree and logs
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import pickle
import time
from pathlib import Path
from typing import Any

# moto SageMaker backend attributes that make up "the registry" and deployed resources.
_SAGEMAKER_STATE = (
    "_models",
    "endpoint_configs",
    "endpoints",
    "model_package_groups",
    "model_packages",
    "model_package_name_mapping",
    "processing_jobs",
    "training_jobs",
    "transform_jobs",
)


class WorkspaceLocked(RuntimeError):
    pass


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.s3_dir = self.root / "s3"
        self.registry_dir = self.root / "registry"
        self.executions_dir = self.root / "executions"
        self.jobs_dir = self.root / "jobs"
        self._lock_file: Any = None
        self._loaded_at: float | None = None

    def open(self) -> None:
        for directory in (self.s3_dir, self.registry_dir, self.executions_dir, self.jobs_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.root / "workspace.lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise WorkspaceLocked(
                f"{self.root} is in use by another sagestep command; wait for it or pass another --workspace"
            ) from exc

    def close(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # -- S3

    def object_path(self, bucket: str, key: str) -> Path:
        return self.s3_dir / bucket / key

    def load_s3(self, s3: Any) -> int:
        """Put the workspace's files into (moto's) S3: all of them the first time, then only files written since
        the previous load (by model servers and traffic, which run in other processes)."""
        started = time.time()
        since = self._loaded_at - 1.0 if self._loaded_at is not None else None  # 1 s slack for coarse mtimes
        count = 0
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for bucket_dir in sorted(p for p in self.s3_dir.iterdir() if p.is_dir()):
            if bucket_dir.name not in existing:
                s3.create_bucket(Bucket=bucket_dir.name)
            for path in sorted(bucket_dir.rglob("*")):
                if not path.is_file() or path.suffix == ".tmp" or (since is not None and path.stat().st_mtime < since):
                    continue
                s3.put_object(Bucket=bucket_dir.name, Key=path.relative_to(bucket_dir).as_posix(), Body=path.read_bytes())
                count += 1
        self._loaded_at = started
        return count

    def save_s3(self, s3: Any) -> int:
        written = 0
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            (self.s3_dir / name).mkdir(parents=True, exist_ok=True)
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue
                    path = self.object_path(name, item["Key"])
                    etag = item["ETag"].strip('"')
                    if path.is_file() and "-" not in etag and hashlib.md5(path.read_bytes()).hexdigest() == etag:  # noqa: S324
                        continue
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(s3.get_object(Bucket=name, Key=item["Key"])["Body"].read())
                    written += 1
        return written

    # -- registry

    def load_sagemaker(self, backend: Any) -> None:
        path = self.registry_dir / "sagemaker.pkl"
        if not path.is_file():
            return
        state = pickle.loads(path.read_bytes())  # noqa: S301 - our own file in the user's workspace
        for name, value in state.items():
            setattr(backend, name, value)

    def save_sagemaker(self, backend: Any) -> None:
        state = {name: getattr(backend, name) for name in _SAGEMAKER_STATE}
        tmp = self.registry_dir / "sagemaker.pkl.tmp"
        tmp.write_bytes(pickle.dumps(state))
        tmp.replace(self.registry_dir / "sagemaker.pkl")

    def load_jobs(self) -> list[dict[str, Any]]:
        path = self.registry_dir / "jobs.json"
        return json.loads(path.read_text()) if path.is_file() else []

    def save_jobs(self, jobs: list[dict[str, Any]]) -> None:
        (self.registry_dir / "jobs.json").write_text(json.dumps(jobs, indent=1, default=str))

    # -- executions

    def save_execution(self, record: dict[str, Any]) -> Path:
        path = self.executions_dir / f"{record['execution']['name']}.json"
        path.write_text(json.dumps(record, indent=1, default=str))
        return path

    def find_execution(self, arn_or_name: str) -> dict[str, Any]:
        name = arn_or_name.rsplit(":", 1)[-1]
        path = self.executions_dir / f"{name}.json"
        if not path.is_file():
            known = sorted(p.stem for p in self.executions_dir.glob("*.json"))[-10:]
            raise FileNotFoundError(
                f"no execution {arn_or_name!r} in {self.executions_dir}; recent: {', '.join(known) or 'none'}"
            )
        return json.loads(path.read_text())
