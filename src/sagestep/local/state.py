"""What the local cloud keeps on disk besides S3, written as it changes so that `kill -9` loses nothing acknowledged.

    <workspace>/state/sagemaker/<collection>/<name>.json   models, endpoint configs, endpoints, model package groups
                                                            and packages, model cards, jobs (moto's objects as JSON)
    <workspace>/state/cloudwatch/alarms/<name>.json         metric alarms
    <workspace>/state/cloudwatch/metrics.jsonl              every PutMetricData, replayed on start
    <workspace>/executions/<state machine>/<name>.json      each execution: describe + event history, written when it
                                                            starts and when it ends
    <workspace>/notifications.jsonl                         what SNS would have sent

Objects are stored as JSON (not pickle): an object is its class name and its attributes, datetimes tagged. A file that
cannot be read is reported by name with what to do; it never stops the other files from loading.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sagestep.local.files import StateFileError, atomic_write, read_state_file

MOTO_VERSION = "5.2.5"
FORMAT = 1
SAGEMAKER_COLLECTIONS = ("_models", "endpoint_configs", "endpoints", "model_package_groups", "model_packages",
                         "model_cards", "training_jobs", "processing_jobs", "transform_jobs",
                         "hyper_parameter_tuning_jobs")


class UnsupportedState(TypeError):
    pass


# ------------------------------------------------------------------------------------------------ JSON codec


def encode(value: Any, where: str = "") -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dt.datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, dt.date):
        return {"__date__": value.isoformat()}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"__map__": {k: encode(v, f"{where}.{k}") for k, v in value.items()}}
        return {"__pairs__": [[encode(k, where), encode(v, where)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        items = [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, (set, frozenset)):
        return {"__set__": [encode(v, where) for v in sorted(value, key=repr)]}
    cls = type(value)
    if cls.__module__.startswith("threading") or cls.__name__ in ("lock", "RLock", "Event", "Condition"):
        return {"__skip__": cls.__name__}
    if hasattr(value, "__dict__") and cls.__module__.startswith(("moto.", "sagestep.")):
        if isinstance(value, dict):  # moto's LowercaseDict and friends are dict-like objects
            return {"__object__": f"{cls.__module__}:{cls.__qualname__}", "items": encode(dict(value.items()), where)}
        return {"__object__": f"{cls.__module__}:{cls.__qualname__}",
                "state": {k: encode(v, f"{where}.{k}") for k, v in vars(value).items()}}
    if hasattr(value, "items") and hasattr(value, "__dict__"):
        return {"__object__": f"{cls.__module__}:{cls.__qualname__}", "items": encode(dict(value.items()), where)}
    raise UnsupportedState(f"{where}: cannot store a {cls.__module__}.{cls.__qualname__}")


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__datetime__" in value:
        return dt.datetime.fromisoformat(value["__datetime__"])
    if "__date__" in value:
        return dt.date.fromisoformat(value["__date__"])
    if "__map__" in value:
        return {k: decode(v) for k, v in value["__map__"].items()}
    if "__pairs__" in value:
        return {decode(k): decode(v) for k, v in value["__pairs__"]}
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__set__" in value:
        return {decode(v) for v in value["__set__"]}
    if "__skip__" in value:
        return threading.Lock() if value["__skip__"] in ("lock", "Lock") else threading.RLock() \
            if value["__skip__"] == "RLock" else threading.Event() if value["__skip__"] == "Event" else None
    if "__object__" in value:
        module_name, _, qualname = value["__object__"].partition(":")
        cls: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if "items" in value:
            obj = cls()
            obj.update(decode(value["items"]))
            return obj
        obj = cls.__new__(cls)
        obj.__dict__.update({k: decode(v) for k, v in value["state"].items()})
        return obj
    return value


def _dump(document: Any) -> bytes:
    return (json.dumps(document, indent=1, sort_keys=True, allow_nan=True) + "\n").encode()


# ------------------------------------------------------------------------------------------------ SageMaker


class SageMakerState:
    """moto's SageMaker objects, one JSON file each, rewritten only when they change."""

    def __init__(self, root: Path, tmp_dir: Path, backend: Callable[[], Any]) -> None:
        self.dir = root / "state" / "sagemaker"
        self.tmp_dir = tmp_dir
        self.backend = backend
        self._written: dict[Path, bytes] = {}
        self._lock = threading.Lock()

    def _collections(self) -> Iterator[tuple[str, dict[str, Any]]]:
        backend = self.backend()
        for name in SAGEMAKER_COLLECTIONS:
            collection = getattr(backend, name, None)
            if isinstance(collection, dict):
                yield name, collection

    def save_changed(self) -> int:
        written = 0
        with self._lock:
            backend = self.backend()
            seen: set[Path] = set()
            for collection_name, collection in self._collections():
                for name, obj in list(collection.items()):
                    path = self.dir / collection_name / f"{_safe(name)}.json"
                    seen.add(path)
                    data = _dump({"format": FORMAT, "moto": MOTO_VERSION, "name": name,
                                  "object": encode(obj, f"{collection_name}/{name}")})
                    if self._written.get(path) != data:
                        atomic_write(self.tmp_dir, path, data)
                        self._written[path] = data
                        written += 1
            mapping = self.dir / "model_package_name_mapping.json"
            seen.add(mapping)
            data = _dump(dict(getattr(backend, "model_package_name_mapping", {})))
            if self._written.get(mapping) != data:
                atomic_write(self.tmp_dir, mapping, data)
                self._written[mapping] = data
            for path in [p for p in self._written if p not in seen]:
                path.unlink(missing_ok=True)
                del self._written[path]
        return written

    def load(self) -> list[str]:
        """Restore every stored object into the backend; return one line per file that could not be read."""
        backend = self.backend()
        problems: list[str] = []
        if not self.dir.is_dir():
            return problems
        for collection_name in SAGEMAKER_COLLECTIONS:
            collection = getattr(backend, collection_name, None)
            directory = self.dir / collection_name
            if not isinstance(collection, dict) or not directory.is_dir():
                continue
            for path in sorted(directory.glob("*.json")):
                try:
                    document = read_state_file(path)
                    if document.get("moto") != MOTO_VERSION:
                        raise StateFileError(f"{path}: written with moto {document.get('moto')}, this is {MOTO_VERSION}")
                    collection[document["name"]] = decode(document["object"])
                    self._written[path] = path.read_bytes()
                except (StateFileError, KeyError, TypeError, AttributeError, ImportError, ValueError) as exc:
                    problems.append(str(exc) if isinstance(exc, StateFileError) else f"{path}: {type(exc).__name__}: {exc}")
        mapping = self.dir / "model_package_name_mapping.json"
        if mapping.is_file():
            try:
                backend.model_package_name_mapping.update(read_state_file(mapping))
            except StateFileError as exc:
                problems.append(str(exc))
        return problems


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else f"%{ord(c):02x}" for c in name)


# ------------------------------------------------------------------------------------------------ append-only logs
