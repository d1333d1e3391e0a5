"""Start Python processes of a given interpreter without paying its heavy imports each time: a fork server.

Jobs, model servers and batch-transform workers import pandas, NumPy, scikit-learn, LightGBM and XGBoost before
they do anything (about 2 CPU-seconds each, most of a short job's or a model server's cost; a forked child costs
about 0.02). A zygote (`local/zygote.py`) of that
interpreter imports them once and forks a child per start; the child then runs its script as `python SCRIPT ARG...`
would (its own argv, environment, working directory and sys.path). What the image runs is unchanged; only the
imports are shared.

    process = forkserver.fork(python, preload, [script, *args], env=env, cwd=cwd, stdout=fd, stderr=fd)
    if process is None:
        process = subprocess.Popen([python, script, *args], ...)  # as without a fork server

`fork` returns a `ForkedProcess` (pid, poll, wait, terminate, kill, returncode as subprocess reports them), or None
when argv[0] is not a script, the child's own path holds a copy of a preloaded package (it would import that one),
or the zygote cannot start. The settings the preloaded libraries read at import
(OMP_* — libgomp reads them when it loads —, OPENBLAS_*, MKL_*, PYTHON* other than PYTHONPATH, PYTHONUNBUFFERED and
PYTHONDONTWRITEBYTECODE, which the child applies itself) are the zygote's: one zygote per interpreter, preload list
and such settings, per process. It exits when this process does (its control socket closes), and its children
with it.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sagestep.local import zygote

ZYGOTE = Path(__file__).with_name("zygote.py")
_READ_AT_IMPORT = ("OMP_", "OPENBLAS_", "MKL_", "KMP_", "GOTO", "PYTHON")
_HANDLED_BY_CHILD = {"PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
_MAX_PASS_FDS = zygote.MAX_FDS - 3  # the zygote also receives stdout, stderr and stdin
_READY_TIMEOUT = 300.0  # a guard against a hung import, not a deadline: a busy machine imports slowly


class ForkedProcess:
    """A child of a zygote, as much of subprocess.Popen as the local cloud uses."""

    def __init__(self, pid: int, args: Sequence[str]) -> None:
        self.pid = pid
        self.args = list(args)
        self.returncode: int | None = None
        self.stdout: Any = None  # set by a caller that gave it pipes
        self.stderr: Any = None
        self._done = threading.Event()

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Zygote:
    def __init__(self, python: str, preload: Sequence[str], env: Mapping[str, str]) -> None:
        self.env = dict(env)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen([python, "-u", str(ZYGOTE), str(child.fileno()), *preload],
                                            pass_fds=(child.fileno(),), env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
        finally:
            child.close()
        self._socket = parent
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._pending: dict[int, list[Any]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}
        self.alive = True
        self._ready = threading.Event()
        threading.Thread(target=self._read, name="forkserver", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                message = self._socket.recv(1 << 16)
            except OSError:
                message = b""
            if not message:
                break
            answer = json.loads(message)
            with self._lock:
                if answer.get("ready"):
                    self._ready.set()
                elif "exit" in answer:
                    child = self._children.pop(answer["exit"], None)
                    if child is not None:
                        child._exited(answer["code"])
                    else:
                        self._early_exits[answer["exit"]] = answer["code"]
                else:
                    slot = self._pending.pop(answer["id"])
                    slot.append(answer)
                    slot[0].set()
        with self._lock:  # the zygote is gone: its children died with it (PR_SET_PDEATHSIG)
            self.alive = False
            self._ready.set()
            for child in self._children.values():
                child._exited(-signal.SIGKILL)
            self._children.clear()
            for slot in self._pending.values():
                slot.append({"error": "the fork server exited"})
                slot[0].set()
            self._pending.clear()

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: str, stdout: int, stderr: int,
              stdin: int | None, pass_fds: Sequence[int], network_namespace: bool) -> ForkedProcess:
        if not self._ready.wait(_READY_TIMEOUT) or not self.alive:
            raise OSError("the fork server did not start")
        pythonpath = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        slot: list[Any] = [threading.Event()]
        with self._lock:
            if not self.alive:
                raise OSError("the fork server exited")
            request_id = next(self._ids)
            self._pending[request_id] = slot
            request = {"id": request_id, "argv": list(argv), "env": dict(env), "cwd": cwd, "pythonpath": pythonpath,
                       "network_namespace": network_namespace, "stdin": stdin is not None, "pass_fds": list(pass_fds)}
            fds = [stdout, stderr, *([] if stdin is None else [stdin]), *pass_fds]
            try:
                socket.send_fds(self._socket, [json.dumps(request).encode()], fds)
            except OSError:
                del self._pending[request_id]
                raise
        slot[0].wait()
        answer = slot[1]
        if "error" in answer:
            raise OSError(f"the fork server could not start {argv[0]}: {answer['error']}")
        child = ForkedProcess(answer["pid"], argv)
        with self._lock:
            if answer["pid"] in self._early_exits:
                child._exited(self._early_exits.pop(answer["pid"]))
            else:
                self._children[answer["pid"]] = child
        return child


_ZYGOTES: dict[tuple[Any, ...], _Zygote] = {}
_LOCK = threading.Lock()


def _import_settings(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The settings in `env` that the preloaded libraries read when they are imported (libgomp reads OMP_* at load)."""
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(_READ_AT_IMPORT) and k not in _HANDLED_BY_CHILD))


def _zygote_env(settings: tuple[tuple[str, str], ...]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "SAGESTEP_", "SM_", "SAGEMAKER_", *_READ_AT_IMPORT)) or k in _HANDLED_BY_CHILD}
    base.pop("PYTHONPATH", None)
    return {**base, **dict(settings)}


def _shadows(env: Mapping[str, str], preload: Sequence[str], script: str) -> bool:
    """Whether the child's own path (its script's directory, PYTHONPATH) holds one of the preloaded packages: it would
    import that copy, not the zygote's (a code bundle that vendors its own LightGBM)."""
    roots = [Path(script).resolve().parent, *(Path(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    names = {name.split(".")[0] for name in preload}
    return any((root / name).is_dir() or (root / f"{name}.py").is_file() for root in roots for name in names)


def fork(python: str, preload: Sequence[str], argv: Sequence[str], *, env: Mapping[str, str], cwd: str | Path,
         stdout: int, stderr: int, stdin: int | None = None, pass_fds: Sequence[int] = (),
         network_namespace: bool = False) -> ForkedProcess | None:
    """Start `python argv...` (argv[0] a script) from the zygote of that interpreter and import-time settings, with
    the given stdout/stderr descriptors, stdin (else /dev/null) and `pass_fds` under the same numbers, as
    subprocess.Popen's pass_fds (the caller closes its copies), in a network namespace of its own (loopback only)
    when `network_namespace`; None when the zygote cannot give the same process (the caller starts it directly)."""
    if len(pass_fds) > _MAX_PASS_FDS or any(fd <= 2 for fd in pass_fds):
        raise ValueError(f"pass_fds: at most {_MAX_PASS_FDS} descriptors above 2, got {list(pass_fds)}")
    if not argv or argv[0].startswith("-") or not argv[0].endswith(".py") or _shadows(env, preload, argv[0]):
        return None
    settings = _import_settings(env)
    key = (python, tuple(preload), os.getpid(), settings)
    with _LOCK:
        zygote = _ZYGOTES.get(key)
        if zygote is None or not zygote.alive:
            try:
                zygote = _ZYGOTES[key] = _Zygote(python, preload, _zygote_env(settings))
            except OSError as exc:
                print(f"sagestep: fork server for {python} not started ({exc}); starting processes directly",
                      file=sys.stderr)
                return None
    try:
        return zygote.spawn(argv, env, str(cwd), stdout, stderr, stdin, pass_fds, network_namespace)
    except OSError:
        return None
