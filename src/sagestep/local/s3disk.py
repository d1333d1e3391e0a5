"""Disk-backed S3 for the local cloud: moto keeps each object's metadata, the bytes live in the workspace.

    <workspace>/s3/<bucket>/<key>              the current version of an object, as a plain file
    <workspace>/s3-versions/<bucket>/<id>      earlier versions in a versioned bucket (hard links, no copy)
    <workspace>/s3-blobs/<bucket>/<sha256>     keys that cannot be a file path (ending in "/", "." segments, a key
                                               that is also another key's "directory")
    <workspace>/state/s3.sqlite                metadata: ETag, content type, user metadata, versions, locks

moto's S3 (buckets, versioning, Object Lock, listing, multipart, copy, the XML of every response) is kept as it is;
only where a key's bytes live changes:

- `DiskKey` (moto's `FakeKey`) holds a new object's bytes in memory until moto stores it in a bucket; from then on
  its value is read from its file on request, so the cloud's memory does not grow with the data.
- `DiskKeyStore` (moto's per-bucket `_VersionedKeyStore`) writes an object's file when moto stores it (write to
  `<workspace>/tmp/`, fsync, rename: an acknowledged PUT is on disk; a crash leaves no half-written object), and
  reads a bucket's keys from the index and the files the first time the bucket is used — metadata only, no bytes.
- Files that other processes put into `s3/<bucket>/` (model servers' data capture, ground-truth labels) are
  objects too: a listing rescans the prefix it lists; their ETag is computed once and kept.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sagestep.local.engine import _attr, _module
from sagestep.local.files import atomic_write

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, version TEXT NOT NULL, seq INTEGER NOT NULL,
    delete_marker INTEGER NOT NULL DEFAULT 0, path TEXT, size INTEGER, mtime_ns INTEGER, etag TEXT,
    last_modified TEXT, metadata TEXT, storage TEXT, encryption TEXT, kms_key_id TEXT,
    lock_mode TEXT, lock_until TEXT, legal_hold TEXT, checksum TEXT,
    PRIMARY KEY (bucket, key, version));
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, config TEXT NOT NULL);
"""
_BUCKET_CONFIG = ("versioning_status", "object_lock_enabled", "default_lock_mode", "default_lock_days",
                  "default_lock_years", "notification_configuration")


def _md5_file(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - S3's ETag, not security
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DiskS3:
    """The workspace side of S3: the files, the metadata index, and what moto needs to find them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects_dir = root / "s3"
        self.versions_dir = root / "s3-versions"
        self.blobs_dir = root / "s3-blobs"
        self.tmp_dir = root / "tmp"
        (root / "state").mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(root / "state" / "s3.sqlite", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses no commit
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._dirty: set[DiskKey] = set()
        self.closed = False

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._db.close()

    # -- paths

    def visible_path(self, bucket: str, key: str) -> Path | None:
        """Where the current version of `key` lives as a plain file, or None when the key cannot be a path."""
        parts = key.split("/")
        if not key or key.endswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in key:
            return None
        path = self.objects_dir / bucket / key
        base = self.objects_dir / bucket
        for parent in path.parents:
            if parent == base:
                break
            if parent.is_file():  # "a" is an object: "a/b" cannot be a file under it
                return None
        if path.is_dir():  # "a/b" exists: "a" cannot be a file
            return None
        return path

    def blob_path(self, bucket: str, key: str) -> Path:
        return self.blobs_dir / bucket / hashlib.sha256(key.encode()).hexdigest()

    def version_path(self, bucket: str, version: str) -> Path:
        return self.versions_dir / bucket / version

    # -- index

    def rows(self, bucket: str) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._db.execute("SELECT * FROM objects WHERE bucket=? ORDER BY key, seq", (bucket,))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]  # type: ignore[misc]

    def save_row(self, key: DiskKey | Any, seq: int, delete_marker: bool = False) -> None:
        if delete_marker:
            values = (key.bucket_name_for_index, key.name, key.version_id, seq, 1, None, None, None, None,
                      key.last_modified.isoformat(), None, None, None, None, None, None, None, None)
        else:
            path = key.disk_path
            stat = path.stat() if path is not None and path.exists() else None
            values = (
                key.bucket_name, key.name, key.version_id, seq, 0, str(path) if path else None,
                key.size, stat.st_mtime_ns if stat else None, key._etag, key.last_modified.isoformat(),
                json.dumps(dict(key.metadata)), key.storage_class, key.encryption, key.kms_key_id, key.lock_mode,
                key.lock_until, key.lock_legal_status, key.checksum_value,
            )
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", values)

    def delete_rows(self, bucket: str, key: str, version: str | None = None) -> None:
        with self._lock:
            if version is None:
                self._db.execute("DELETE FROM objects WHERE bucket=? AND key=?", (bucket, key))
            else:
                self._db.execute("DELETE FROM objects WHERE bucket=? AND key=? AND version=?", (bucket, key, version))

    def save_bucket(self, bucket: Any) -> None:
        config = {name: getattr(bucket, name, None) for name in _BUCKET_CONFIG}
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?)", (bucket.name, json.dumps(config, default=str)))

    def forget_bucket(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM buckets WHERE name=?", (name,))
            self._db.execute("DELETE FROM objects WHERE bucket=?", (name,))

    def saved_buckets(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            saved = {name: json.loads(config) for name, config in self._db.execute("SELECT name, config FROM buckets")}
        for directory in sorted(p for p in self.objects_dir.glob("*") if p.is_dir()) if self.objects_dir.is_dir() else []:
            saved.setdefault(directory.name, {})
        return saved

    # -- metadata set by moto after it stored a key (content type, tags, ...): saved at the end of each request

    def mark_dirty(self, key: DiskKey) -> None:
        with self._lock:
            self._dirty.add(key)

    def flush(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        for key in dirty:
            store = key.store
            if store is not None and key.disk_path is not None:
                versions = dict.get(store, key.name) or []
                if any(v is key for v in versions):
                    self.save_row(key, key.seq)


class DiskKey(_attr(_module("moto.s3.models"), "FakeKey")):  # type: ignore[misc]
    """moto's FakeKey whose bytes live in a workspace file once stored (see the module docstring)."""

    disk_path: Path | None = None
    store: DiskKeyStore | None = None
    seq: int = 0

    @property
    def value(self) -> bytes:  # type: ignore[override]
        path = self.disk_path
        if path is not None:
            return path.read_bytes()
        return super().value

    @value.setter
    def value(self, new_value: bytes) -> None:
        self.disk_path = None
        _FAKE_KEY.value.fset(self, new_value)  # type: ignore[attr-defined]

    @property
    def etag(self) -> str:  # type: ignore[override]
        if self._etag is None and self.disk_path is not None:
            self._etag = _md5_file(self.disk_path)
            if self.store is not None:
                self.store.disk.mark_dirty(self)
        return _FAKE_KEY.etag.fget(self)  # type: ignore[attr-defined]

    def set_metadata(self, metadata: Any, replace: bool = False) -> None:
        super().set_metadata(metadata, replace)
        if self.store is not None:
            self.store.disk.mark_dirty(self)

    def attach(self, path: Path) -> None:
        """From now on the bytes are the file's: drop the in-memory copy."""
        self.disk_path = path
        try:
            self._value_buffer.close()
        except Exception:  # noqa: BLE001 - a closed buffer is what we want
            pass

    def __getstate__(self) -> dict[str, Any]:
        if self.disk_path is None:
            return super().__getstate__()
        state = self.__dict__.copy()
        state.pop("_value_buffer", None)
        state.pop("lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state.get("disk_path") is None:
            super().__setstate__(state)
            return
        self.__dict__.update(state)
        self.lock = threading.Lock()
        self._value_buffer = _closed_buffer()

    def __deepcopy__(self, memo: dict[int, Any]) -> DiskKey:
        """moto deep-copies keys when it lists versions: share the file and the store, never read the bytes."""
        if self.disk_path is None:
            clone = object.__new__(DiskKey)
            clone.__setstate__(copy.deepcopy(super().__getstate__(), memo))
            return clone
        clone = object.__new__(DiskKey)
        clone.__dict__.update(self.__dict__)
        clone.lock = threading.Lock()
        clone._metadata = _fresh_metadata(self._metadata)
        return clone

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


_FAKE_KEY = _attr(_module("moto.s3.models"), "FakeKey")


def _fresh_metadata(metadata: Any) -> Any:
    """A copy of moto's LowercaseDict that shares nothing with the original (copy.copy shares its storage)."""
    fresh = type(metadata)()
    fresh.update(dict(metadata.items()))
    return fresh


def _closed_buffer() -> Any:
    import io

    buffer = io.BytesIO()
    buffer.close()
    return buffer


class DiskKeyStore(_attr(_module("moto.s3.utils"), "_VersionedKeyStore")):  # type: ignore[misc]
    """A bucket's keys: moto's versioned key store that keeps its files and index in step (module docstring)."""

    def __init__(self, bucket: Any, disk: DiskS3, prototype: DiskKey) -> None:
        super().__init__()
        self.bucket = bucket
        self.disk = disk
        self._prototype = prototype
        self._loaded = False
        self._seq = 0
        self._lock = threading.RLock()

    # -- reading the bucket from disk (once) and noticing files written by other processes

    def _ensure(self) -> None:
        if self._loaded or self.disk.closed:  # a closed cloud's buckets are only being disposed of by moto's reset
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            by_key: dict[str, list[Any]] = {}
            for row in self.disk.rows(self.bucket.name):
                self._seq = max(self._seq, row["seq"])
                if row["delete_marker"]:
                    by_key.setdefault(row["key"], []).append(self._marker(row))
                    continue
                path = Path(row["path"]) if row["path"] else None
                if path is None or not path.exists():
                    continue  # removed from the workspace by hand: gone
                by_key.setdefault(row["key"], []).append(self._key_from_row(row, path))
            for key, versions in by_key.items():
                if versions:
                    dict.__setitem__(self, key, versions)
            self.rescan("")

    def rescan(self, prefix: str) -> None:
        """Add files under `prefix` that no index row knows (written by another process); drop vanished ones."""
        base = self.disk.objects_dir / self.bucket.name
        if not base.is_dir():
            return
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base / head if head else base
        if not start.is_dir():
            return
        with self._lock:
            seen = set()
            for directory, _dirs, files in os.walk(start):
                for filename in files:
                    path = Path(directory) / filename
                    key = path.relative_to(base).as_posix()
                    if not key.startswith(prefix):
                        continue
                    seen.add(key)
                    versions = dict.get(self, key)
                    if versions and getattr(versions[-1], "disk_path", None) == path:
                        current = versions[-1]
                        try:
                            stat = path.stat()
                        except FileNotFoundError:
                            continue
                        if stat.st_size != current.contentsize:  # rewritten in place by another process
                            current.contentsize = stat.st_size
                            current._etag = None
                        continue
                    if versions and not isinstance(versions[-1], DiskKey):
                        continue  # a delete marker is current: the file is an old copy being unlinked
                    self._seq += 1
                    discovered = self._discovered(key, path)
                    dict.__setitem__(self, key, (versions or []) + [discovered])
            for key in [k for k in dict.keys(self) if k.startswith(prefix) and k not in seen]:
                versions = dict.get(self, key) or []
                current = versions[-1] if versions else None
                if isinstance(current, DiskKey) and current.disk_path is not None and current.disk_path.is_relative_to(base) \
                        and not current.disk_path.exists():
                    remaining = versions[:-1]
                    if remaining:
                        dict.__setitem__(self, key, remaining)
                    else:
                        dict.pop(self, key, None)

    def _new_key(self, name: str) -> DiskKey:
        key = object.__new__(DiskKey)
        key.__dict__.update(self._prototype.__dict__)
        key.__dict__.update(name=name, bucket_name=self.bucket.name, lock=threading.Lock(), _value_buffer=_closed_buffer(),
                            _metadata=_fresh_metadata(self._prototype._metadata), acl=copy.copy(self._prototype.acl))
        key.store = self
        return key

    def _discovered(self, name: str, path: Path) -> DiskKey:
        stat = path.stat()
        key = self._new_key(name)
        key.contentsize = stat.st_size
        key.last_modified = dt.datetime.fromtimestamp(stat.st_mtime, tz=dt.timezone.utc).replace(tzinfo=None)
        key._etag = None
        key._version_id = "null"
        key._is_versioned = False
        key.seq = self._seq
        key.attach(path)
        return key

    def _key_from_row(self, row: dict[str, Any], path: Path) -> DiskKey:
        key = self._new_key(row["key"])
        stat = path.stat()
        key.contentsize = stat.st_size
        same_file = row["mtime_ns"] == stat.st_mtime_ns and row["size"] == stat.st_size
        key._etag = row["etag"] if same_file else None
        key.last_modified = dt.datetime.fromisoformat(row["last_modified"]) if row["last_modified"] else None
        key._version_id = row["version"]
        key._is_versioned = row["version"] != "null"
        key._storage_class = row["storage"] or "STANDARD"
        key.encryption, key.kms_key_id = row["encryption"], row["kms_key_id"]
        key.lock_mode, key.lock_until, key.lock_legal_status = row["lock_mode"], row["lock_until"], row["legal_hold"]
        key.checksum_value = row["checksum"]
        key._metadata.clear()
        key._metadata.update(json.loads(row["metadata"] or "{}"))
        key.seq = row["seq"]
        key.attach(path)
        return key

    def _marker(self, row: dict[str, Any]) -> Any:
        marker_cls = _attr(_module("moto.s3.models"), "FakeDeleteMarker")
        marker = object.__new__(marker_cls)
        marker.key = None
        marker.name = row["key"]
        marker.last_modified = dt.datetime.fromisoformat(row["last_modified"])
        marker._version_id = row["version"]
        marker.bucket_name_for_index = self.bucket.name
        return marker

    # -- writing: every change of a key's version list reaches the disk before moto answers

    def _store_version(self, name: str, key: Any, previous: list[Any]) -> None:
        self._seq += 1
        marker_cls = _attr(_module("moto.s3.models"), "FakeDeleteMarker")
        current = previous[-1] if previous else None
        visible = self.disk.visible_path(self.bucket.name, name)
        if isinstance(current, DiskKey) and current.disk_path is not None and current.disk_path == visible \
                and current.version_id != "null":
            # a versioned bucket keeps the current version's bytes: hard-link them out before replacing the file
            kept = self.disk.version_path(self.bucket.name, current.version_id)
            kept.parent.mkdir(parents=True, exist_ok=True)
            if not kept.exists():
                os.link(visible, kept)
            current.disk_path = kept
            self.disk.save_row(current, current.seq)
        if isinstance(key, marker_cls):
            key.bucket_name_for_index = self.bucket.name
            if visible is not None and visible.exists() and not (isinstance(current, DiskKey) and current.version_id == "null"):
                visible.unlink()
            self.disk.save_row(key, self._seq, delete_marker=True)
            return
        if not isinstance(key, DiskKey):
            raise TypeError(f"unexpected object in bucket {self.bucket.name}: {type(key).__name__}")
        data = _FAKE_KEY.value.fget(key) if key.disk_path is None else key.value  # type: ignore[attr-defined]
        if key._etag is None:
            key._etag = hashlib.md5(data).hexdigest()  # noqa: S324 - S3's ETag
        target = visible if visible is not None else self.disk.blob_path(self.bucket.name, f"{name}\0{key.version_id}")
        # renamed into place whole: a killed cloud never leaves half an object (fsync would only add power-loss
        # safety, at a third of the PUT throughput)
        atomic_write(self.disk.tmp_dir, target, data, durable=False)
        key.store = self
        key.seq = self._seq
        key.attach(target)
        self.disk.save_row(key, key.seq)

    def _remove_version(self, name: str, key: Any, remaining: list[Any]) -> None:
        if isinstance(key, DiskKey) and key.disk_path is not None:
            visible = self.disk.visible_path(self.bucket.name, name)
            if key.disk_path.exists():
                key.disk_path.unlink()
            if key.disk_path == visible and remaining and isinstance(remaining[-1], DiskKey) \
                    and remaining[-1].disk_path is not None and remaining[-1].disk_path.exists():
                os.link(remaining[-1].disk_path, visible)  # the previous version is current again
        self.disk.delete_rows(self.bucket.name, name, getattr(key, "version_id", None) or "null")

    # -- moto's interface

    def __sgetitem__(self, key: str) -> list[Any]:
        self._ensure()
        return super().__sgetitem__(key)

    def __getitem__(self, key: str) -> Any:
        self._ensure()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._ensure()
        return dict.__contains__(self, key)

    def __len__(self) -> int:
        self._ensure()
        return dict.__len__(self)

    def get(self, key: str, default: Any = None) -> Any:
        self._ensure()
        return super().get(key, default)

    def getlist(self, key: str, default: Any = None) -> Any:
        self._ensure()
        return super().getlist(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self._ensure()
        with self._lock:
            previous = list(dict.get(self, key) or [])
            self._store_version(key, value, previous)
            dict.__setitem__(self, key, previous + [value])

    def setlist(self, key: Any, list_: Any) -> Any:
        self._ensure()
        with self._lock:
            new = list(list_) if isinstance(list_, (list, tuple)) else [list_]
            previous = list(dict.get(self, key) or [])
            kept = [v for v in previous if any(v is n for n in new)]
            for version in previous:
                if not any(version is n for n in new):
                    self._remove_version(key, version, kept)
            for version in new:
                if not any(version is p for p in previous):
                    self._store_version(key, version, kept)
                    kept.append(version)
            dict.__setitem__(self, key, new)

    def pop(self, key: str) -> None:  # type: ignore[override]
        self._ensure()
        with self._lock:
            versions = list(dict.get(self, key) or [])
            for version in reversed(versions):
                self._remove_version(key, version, [])
            self.disk.delete_rows(self.bucket.name, key)
            dict.pop(self, key, None)

    def _self_iterable(self) -> dict[str, Any]:
        self._ensure()
        return dict(self)

    def item_size(self) -> int:
        self._ensure()
        return super().item_size()


_DISK: DiskS3 | None = None  # the workspace of the cloud running in this process
_INSTALLED = False
_INSTALL_LOCK = threading.Lock()


def install(disk: DiskS3) -> None:
    """Make moto's S3 store new objects as DiskKeys in DiskKeyStores backed by `disk` (patched once per process;
    each new cloud brings its own workspace)."""
    global _DISK, _INSTALLED
    _DISK = disk
    with _INSTALL_LOCK:
        if _INSTALLED:
            return
        _install_once()
        _INSTALLED = True


def _current() -> DiskS3 | None:
    """The running cloud's workspace; None when moto is used without a cloud (plain in-memory S3, e.g. mock_aws)."""
    return None if _DISK is None or _DISK.closed else _DISK


def _install_once() -> None:
    models = _module("moto.s3.models")
    _attr(models, "FakeKey")
    backend_cls = _attr(models, "S3Backend")
    models.FakeKey = DiskKey
    prototype = DiskKey(name="prototype", value=b"", account_id="000000000000", region_name="us-east-1")
    original_create = _attr(backend_cls, "create_bucket")
    original_delete = _attr(backend_cls, "delete_bucket")
    original_list = _attr(backend_cls, "list_objects")
    original_list_v2 = _attr(backend_cls, "list_objects_v2")

    def create_bucket(self: Any, bucket_name: str, region_name: str, *args: Any, **kwargs: Any) -> Any:
        bucket = original_create(self, bucket_name, region_name, *args, **kwargs)
        disk = _current()
        if disk is not None:
            bucket.keys = DiskKeyStore(bucket, disk, prototype)
            disk.save_bucket(bucket)
        return bucket

    def delete_bucket(self: Any, bucket_name: str) -> Any:
        result = original_delete(self, bucket_name)
        disk = _current()
        if disk is None:
            return result
        disk.forget_bucket(bucket_name)
        directory = disk.objects_dir / bucket_name
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
        return result

    def _rescan(bucket: Any, prefix: str | None) -> None:
        store = bucket.keys
        if isinstance(store, DiskKeyStore):
            store._ensure()
            store.rescan(prefix or "")

    def list_objects(self: Any, bucket: Any, prefix: str | None, *args: Any, **kwargs: Any) -> Any:
        _rescan(bucket, prefix)
        return original_list(self, bucket, prefix, *args, **kwargs)

    def list_objects_v2(self: Any, bucket: Any, prefix: str | None, *args: Any, **kwargs: Any) -> Any:
        _rescan(bucket, prefix)
        return original_list_v2(self, bucket, prefix, *args, **kwargs)

    backend_cls.create_bucket = create_bucket
    backend_cls.delete_bucket = delete_bucket
    backend_cls.list_objects = list_objects
    backend_cls.list_objects_v2 = list_objects_v2


def iter_keys(store: Any) -> Iterator[tuple[str, Any]]:
    for name, versions in dict.items(store):
        if versions:
            yield name, versions[-1]
