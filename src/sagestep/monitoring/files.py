"""Reading and writing the monitoring JSON documents with errors that name the file and the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class DocumentError(ValueError):
    """A JSON document that is missing or unreadable."""


def read_json(path: str | Path, what: str, fix: str) -> Any:
    """Load `path`; `what` names the document and `fix` says how to produce it when it is missing."""
    file = Path(path)
    if not file.is_file():
        raise DocumentError(f"{file}: {what} not found; {fix}")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{file}: {what} is not valid JSON ({exc}); {fix}") from exc


def write_json(path: str | Path, document: Any, *, indent: int | None = None) -> Path:
    """Write atomically (temporary file + rename) so readers never see half a document."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text(json.dumps(document, indent=indent, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, file)
    return file


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> Path:
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text("".join(json.dumps(r, allow_nan=False) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, file)
    return file
