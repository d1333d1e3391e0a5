"""The Python interpreters that stand in for SageMaker's container images locally.

- Jobs (processing, training: the ml/ entry points) run with the job image's libraries: `.venv-job` (Python 3.12,
  SageMaker Distribution 3.2.0's pins, tools/images/sagemaker-distribution-3.2.0-cpu.txt; `make job-env`).
- Model servers and batch transform (ml/inference.py) run with the serving image's: `.venv-serve` (Python 3.10,
  sagemaker-xgboost 3.0-5's pins plus ml/requirements.txt, tools/images/sagemaker-xgboost-3.0-5.txt; `make serve-env`).

One setting each, read once: SAGESTEP_JOB_PYTHON / SAGESTEP_SERVE_PYTHON (a path to an interpreter), else the venv
under the project root. When neither exists, the local runtime's own interpreter is used and a warning names the
make target: jobs then run on the project's pins (pandas 3.1, numpy 2.4), not the image's.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
JOB_VENV, SERVE_VENV = ".venv-job", ".venv-serve"
# What model servers and transform workers import before their own code, for their fork server to import once
# (local/forkserver.py): libraries that read no per-process setting at import.
SERVE_PRELOAD = ("numpy", "pandas", "sklearn", "lightgbm", "xgboost")
JOB_PRELOAD = ("numpy", "pandas", "pyarrow.parquet", "pyarrow.csv", "scipy.stats", "sklearn.metrics",
               "sklearn.model_selection", "lightgbm", "xgboost", "yaml")


def _find(variable: str, venv: str, target: str, what: str) -> str:
    configured = os.environ.get(variable)
    if configured:
        if not Path(configured).is_file():
            raise FileNotFoundError(f"{variable}={configured}: no such interpreter; unset it or run `make {target}`")
        return configured
    candidate = PROJECT_ROOT / venv / "bin" / "python"
    if candidate.is_file():
        return str(candidate)
    print(f"sagestep: warning: {venv}/ not found: {what} run with {sys.executable} (the project's pins), not the image's "
          f"libraries; run `make {target}` or set {variable}", file=sys.stderr)
    return sys.executable


@functools.lru_cache(maxsize=None)
def job_python() -> str:
    return _find("SAGESTEP_JOB_PYTHON", JOB_VENV, "job-env", "processing and training jobs")


@functools.lru_cache(maxsize=None)
def serve_python() -> str:
    return _find("SAGESTEP_SERVE_PYTHON", SERVE_VENV, "serve-env", "model servers and batch transform")


def preload(python: str) -> tuple[str, ...] | None:
    """The fork server's preload list for one of the image interpreters; None for any other command."""
    if python == job_python():
        return JOB_PRELOAD
    if python == serve_python():
        return SERVE_PRELOAD
    return None
