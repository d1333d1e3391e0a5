"""tar.gz artifacts for functional tests, built the way SageMaker and ml/evaluate.py build them."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def toy_model(scale: float) -> bytes:
    """model.tar.gz for tests/functional/jobs/inference.py: score = Income / scale."""
    return tar_gz({"model.json": json.dumps({"scale": scale}).encode()})


def tar_dir(directory: Path) -> bytes:
    """model.tar.gz of a saved model directory, as a training job uploads it."""
    return tar_gz({path.name: path.read_bytes() for path in sorted(directory.iterdir())})
