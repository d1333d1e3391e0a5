"""What a SageMaker Processing job knows about itself, for messages a user can act on.

SageMaker writes the job's request to `/opt/ml/config/processingjobconfig.json`: each ProcessingInput's S3Uri and
the LocalPath it was copied to. An error about `/opt/ml/processing/input/config/credit_data.yaml` is useless to a
user who uploaded `s3://…/configs/credit_data.yaml`: `JobFiles.name` maps a local input path back to the S3 URI
it came from. A job writes its one-line failure to `/opt/ml/output/message`, which SageMaker returns as the job's
ExitMessage (first 1 KB). Both paths are found from any path under the job's /opt/ml (the local runtime maps
/opt/ml to a directory of its own).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

PROCESSING_JOB_CONFIG = "config/processingjobconfig.json"
EXIT_MESSAGE = "output/message"
MAX_EXIT_MESSAGE = 1024  # bytes SageMaker keeps


def opt_ml_root(path: str | Path) -> Path | None:
    """The job's /opt/ml directory: the nearest ancestor named `ml` inside one named `opt`."""
    path = Path(path).resolve()
    for candidate in (path, *path.parents):
        if candidate.name == "ml" and candidate.parent.name == "opt":
            return candidate
    return None


@dataclass
class JobFiles:
    """Local input path → S3 URI, from processingjobconfig.json (empty when there is none, e.g. a test run)."""

    inputs: dict[str, str] = field(default_factory=dict)  # path relative to /opt/ml → S3 URI (prefix)

    @classmethod
    def of(cls, path: str | Path) -> JobFiles:
        root = opt_ml_root(path)
        config = root / PROCESSING_JOB_CONFIG if root is not None else None
        if config is None or not config.is_file():
            return cls()
        try:
            request = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        inputs = {}
        for item in request.get("ProcessingInputs") or []:
            s3 = item.get("S3Input") or {}
            local, uri = s3.get("LocalPath"), s3.get("S3Uri")
            if local and uri and s3.get("S3DataType", "S3Prefix") == "S3Prefix":
                inputs[str(local).removeprefix("/opt/ml/").strip("/")] = str(uri)
        return cls(inputs)

    def name(self, path: str | Path) -> str:
        """The S3 URI a local input file came from, else the path itself."""
        text = Path(path).resolve().as_posix()
        for local, uri in sorted(self.inputs.items(), key=lambda item: -len(item[0])):
            marker = f"/{local}"
            at = text.find(marker + "/")
            if at < 0 and text.endswith(marker):
                at = len(text) - len(marker)
            if at < 0:
                continue
            rest = text[at + len(marker):].lstrip("/")
            if not rest:
                return uri
            if uri.endswith("/"):
                return uri + rest
            # S3Prefix with an object key: the key itself when it is the file, else key + "/" + rest
            return uri if uri.rsplit("/", 1)[-1] == rest else f"{uri}/{rest}"
        return str(path)


def write_exit_message(near: str | Path, message: str) -> None:
    """Write the job's one-line failure where SageMaker reads ExitMessage (nothing outside a job's /opt/ml)."""
    root = opt_ml_root(near)
    if root is None:
        return
    target = root / EXIT_MESSAGE
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(message.encode("utf-8")[:MAX_EXIT_MESSAGE])
    except OSError:
        pass
