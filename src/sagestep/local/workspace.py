"""The local workspace: everything the local cloud keeps, as files a person can read.

    <workspace>/s3/<bucket>/<key>                     S3 objects (current versions), as plain files
    <workspace>/s3-versions/, s3-blobs/               earlier versions; keys that cannot be a path (local/s3disk.py)
    <workspace>/state/                                S3 metadata (sqlite), SageMaker objects, alarms, metrics (local/state.py)
    <workspace>/executions/<state machine>/<name>.json  each execution: describe + event history
    <workspace>/jobs/<job>/                           each SageMaker job: its /opt/ml tree, logs and job.json
    <workspace>/endpoints/<endpoint>/...              model servers of local endpoints
    <workspace>/notifications.jsonl                   what SNS would have sent
    <workspace>/cloud.json                            the local cloud serving this workspace (URL, pid, settings)
    <workspace>/tmp/                                  files being written (renamed into place when complete)

One local cloud serves a workspace at a time (`cloud.lock`); every command is a client of it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

from sagestep.local.files import StateFileError, atomic_write, read_state_file


class WorkspaceError(RuntimeError):
    """The workspace cannot be used (a file where a directory should be, an old format, held by a cloud)."""


class WorkspaceLocked(WorkspaceError):
    pass


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.s3_dir = self.root / "s3"
        self.state_dir = self.root / "state"
        self.executions_dir = self.root / "executions"
        self.jobs_dir = self.root / "jobs"
        self.endpoints_dir = self.root / "endpoints"
        self.tmp_dir = self.root / "tmp"
        self.notifications_path = self.root / "notifications.jsonl"
        self.cloud_file = self.root / "cloud.json"
        self._lock_file: Any = None

    # -- checks and the cloud's lock

    def check(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(f"--workspace {self.root} is a file, not a directory; pass a directory (it is created "
                                 f"if missing)")
        if (self.root / "registry" / "sagemaker.pkl").is_file():
            raise WorkspaceError(
                f"{self.root} was written by sagestep 0.1 (registry/sagemaker.pkl); this version keeps state as JSON "
                f"under state/. Start with a new --workspace (or move this one aside: its s3/ files can be copied "
                f"in with `aws s3 cp --recursive`)"
            )

    def create(self) -> None:
        self.check()
        try:
            for directory in (self.s3_dir, self.state_dir, self.executions_dir, self.jobs_dir, self.endpoints_dir, self.tmp_dir):
                directory.mkdir(parents=True, exist_ok=True)
        except (NotADirectoryError, FileExistsError, PermissionError) as exc:
            raise WorkspaceError(f"cannot create the workspace {self.root}: {exc}") from None
        for leftover in self.tmp_dir.iterdir():  # files a crash left half-written: never visible, safe to drop
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
            else:
                shutil.rmtree(leftover, ignore_errors=True)

    def lock_for_cloud(self) -> None:
        self._lock_file = open(self.root / "cloud.lock", "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            info = self.cloud_info()
            where = f" at {info['url']} (pid {info.get('pid')})" if info else ""
            raise WorkspaceLocked(
                f"a local cloud already serves {self.root}{where}; use it (every sagestep command does), stop it with "
                f"Ctrl-C in its terminal, or pass another --workspace"
            ) from None

    def release(self) -> None:
        if self._lock_file is not None:
            self.cloud_file.unlink(missing_ok=True)
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def publish_cloud(self, info: dict[str, Any]) -> None:
        atomic_write(self.tmp_dir, self.cloud_file, json.dumps(info, indent=1).encode())

    def cloud_info(self) -> dict[str, Any] | None:
        """The cloud serving this workspace, if one is up (its lock is held and it published where it listens)."""
        lock_path = self.root / "cloud.lock"
        if not self.cloud_file.is_file() or not lock_path.is_file():
            return None
        with open(lock_path, "a+") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    return json.loads(self.cloud_file.read_text())
                except (OSError, json.JSONDecodeError):
                    return None
            fcntl.flock(probe, fcntl.LOCK_UN)
        return None  # a cloud.json left by a cloud that died: nobody holds the lock

    # -- S3 objects as files

    def object_path(self, bucket: str, key: str) -> Path:
        return self.s3_dir / bucket / key

    # -- executions

    def execution_path(self, state_machine_name: str, name: str) -> Path:
        return self.executions_dir / state_machine_name / f"{name}.json"

    def save_execution(self, record: dict[str, Any]) -> Path:
        execution = record["execution"]
        machine = execution["stateMachineArn"].rsplit(":", 1)[-1]
        path = self.execution_path(machine, execution["name"])
        atomic_write(self.tmp_dir, path, json.dumps(record, indent=1, default=str).encode())
        return path

    def execution_records(self) -> list[Path]:
        return sorted(self.executions_dir.glob("*/*.json")) if self.executions_dir.is_dir() else []

    def find_execution(self, arn_or_name: str) -> dict[str, Any]:
        parts = arn_or_name.split(":")
        if len(parts) >= 8 and parts[5] == "execution":
            candidates = [self.execution_path(parts[6], parts[7])]
        else:
            candidates = sorted(self.executions_dir.glob(f"*/{arn_or_name}.json")) if self.executions_dir.is_dir() else []
        found = [p for p in candidates if p.is_file()]
        if not found:
            recent = sorted(self.execution_records(), key=lambda p: p.stat().st_mtime)[-10:]
            raise FileNotFoundError(
                f"no execution {arn_or_name!r} in {self.executions_dir}; recent: "
                f"{', '.join(p.stem for p in recent) or 'none'}"
            )
        if len(found) > 1:
            raise FileNotFoundError(
                f"{arn_or_name!r} names executions of several state machines "
                f"({', '.join(p.parent.name for p in found)}); pass the execution ARN"
            )
        record = read_state_file(found[0])
        if not isinstance(record, dict) or "execution" not in record:
            raise StateFileError(f"{found[0]}: not an execution record (no 'execution'); move it aside")
        return record

    # -- jobs

    def save_job(self, job_dir: Path, record: dict[str, Any]) -> None:
        atomic_write(self.tmp_dir, job_dir / "job.json", json.dumps(record, indent=1, default=str).encode())

    def job_records(self) -> list[Path]:
        return sorted(self.jobs_dir.glob("*/job.json")) if self.jobs_dir.is_dir() else []


def disk_usage(path: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(directory) / name).stat().st_size
            except OSError:
                pass
    return total
