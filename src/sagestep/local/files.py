"""Files of the workspace, written so that a crash leaves the old file or the whole new one: atomic writes,
append-only JSON-lines logs, and readable errors for files that were damaged anyway."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class StateFileError(ValueError):
    """A state file of the workspace is unreadable (e.g. a crash while another tool wrote it)."""


def atomic_write(tmp_dir: Path, path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` so that a reader (or a crash) sees the old file or the whole new one, never a part.
    `durable` also survives a power loss (fsync); a killed process never loses what was written either way."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:  # e.g. the disk is full: the old file stays whole, no part is left behind
        tmp.unlink(missing_ok=True)
        raise


def read_state_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateFileError(
            f"{path}: unreadable ({type(exc).__name__}: {str(exc)[:120]}); move it aside to start without that "
            f"resource, or restore it from a copy"
        ) from None


class JsonLog:
    """An append-only JSON-lines file: each line written whole and fsynced; a torn last line is skipped on read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())

    def read(self) -> Iterator[dict[str, Any]]:
        if not self.path.is_file():
            return
        with open(self.path, "rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue  # a line torn by a crash while it was written
                if isinstance(record, dict):
                    yield record
