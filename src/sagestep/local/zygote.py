"""A fork server's process (run as a file by `local/forkserver.py`, with the interpreter of the processes it starts;
imported elsewhere only for MAX_FDS): it imports the heavy libraries once, then forks one child per request, so a model server or job
starts without paying those imports again.

    python -u zygote.py CONTROL_FD MODULE...

Requests arrive on CONTROL_FD (a SOCK_SEQPACKET socket) as one JSON object with file descriptors: the child's stdout
and stderr, then its stdin when "stdin" is true (else /dev/null), then one per number in "pass_fds", which the child
gets under that number: {"id", "argv": [script, arg...], "env", "cwd", "pythonpath": [...], "network_namespace": bool,
"stdin": bool, "pass_fds": [n...]}. Answers: {"ready": true}
once the imports are done, {"id", "pid"} per child started, {"exit": pid, "code": n} when a child ends (the code as
subprocess reports it: negative for a signal). When the parent goes away (the socket closes) the zygote kills its
children and exits; a child dies with the zygote (PR_SET_PDEATHSIG).

A child is what `python SCRIPT ARG...` would be with that environment: its own argv, environment, working directory,
sys.path (the script's directory, then PYTHONPATH, then the interpreter's), a `sitecustomize.py` on its PYTHONPATH
run first, fresh random seeds, and the interpreter's exit (exit code, threads joined, atexit handlers). It shares the zygote's imported modules: only
libraries that read no per-process setting at import belong on the preload list.
"""

import ctypes
import json
import os
import select
import signal
import socket
import sys

_CHILDREN = set()
MAX_FDS = 7  # descriptors per request: stdout, stderr, stdin and up to four passed (forkserver.fork's pass_fds)


def _preload(modules):
    for name in modules:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - not installed or broken: the child imports it itself and reports
            pass


def _serve(control):
    """The zygote's loop; returns (request, fds) in a forked child, never in the zygote."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    control.send(json.dumps({"ready": True}).encode())
    while True:
        ready, _, _ = select.select([control, wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 4096)
            _reap(control)
        if control not in ready:
            continue
        message, fds, _, _ = socket.recv_fds(control, 1 << 20, MAX_FDS)
        if not message:  # the parent is gone
            for pid in list(_CHILDREN):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os._exit(0)
        request = json.loads(message)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            control.send(json.dumps({"id": request["id"], "error": str(exc)}).encode())
            continue
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(wake_read)
            os.close(wake_write)
            control.close()
            return request, fds
        _CHILDREN.add(pid)
        for fd in fds:
            os.close(fd)
        control.send(json.dumps({"id": request["id"], "pid": pid}).encode())


def _reap(control):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _CHILDREN.discard(pid)
        control.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def _own_network(stderr):
    """A new network namespace with its loopback up (as `unshare --net` then `ip link set lo up`): nothing else exists."""
    import fcntl
    import struct

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        os.write(stderr, f"cannot enter a network namespace: {os.strerror(ctypes.get_errno())}\n".encode())
        os._exit(126)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(probe, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(probe, 0x8914, struct.pack("16sH22x", b"lo", flags | 0x1))  # SIOCSIFFLAGS: IFF_UP


def _place(fds, has_stdin, targets):
    """stdout, stderr, stdin (else /dev/null) onto 1, 2, 0 and the passed descriptors onto their numbers: first all
    moved above every target number, so that placing one never closes another."""
    import fcntl

    floor = max([2, *targets]) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, floor) for fd in fds]
    for fd in fds:
        os.close(fd)
    out, err, rest = moved[0], moved[1], moved[2:]
    if has_stdin:
        stdin = rest.pop(0)
    else:
        null = os.open(os.devnull, os.O_RDONLY)
        stdin = fcntl.fcntl(null, fcntl.F_DUPFD, floor)
        os.close(null)
    for fd, target in ((stdin, 0), (out, 1), (err, 2), *zip(rest, targets)):
        os.dup2(fd, target)
    for fd in (stdin, out, err, *rest):
        os.close(fd)


def _become(request, fds, base_path):
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the zygote
    except OSError:
        pass
    if os.getppid() == 1:
        os._exit(137)  # the zygote died before the signal was armed
    if request.get("network_namespace"):
        _own_network(fds[1])
    _place(fds, bool(request.get("stdin")), request.get("pass_fds") or [])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    script = request["argv"][0]
    sys.argv = list(request["argv"])
    sys.path[:] = [os.path.dirname(os.path.abspath(script)), *request["pythonpath"], *base_path]
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    for entry in request["pythonpath"]:
        custom = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(custom):
            import runpy

            runpy.run_path(custom, run_name="sitecustomize")
            break
    return script


def main():
    control = socket.socket(fileno=int(sys.argv[1]))
    base_path = [p for p in sys.path[1:]]  # the interpreter's own (sys.path[0] is this file's directory)
    _preload(sys.argv[2:])
    request, fds = _serve(control)
    script = _become(request, fds, base_path)
    os._exit(_run(script))


def _run(script):
    """Run the script as __main__ and end as the interpreter would: the exit code, non-daemon threads joined, atexit
    handlers run, streams flushed. The module teardown is skipped: it frees the zygote's whole heap (0.3 CPU-s)."""
    import atexit
    import runpy
    import threading

    try:
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:  # noqa: BLE001 - reported as the interpreter reports an uncaught exception
        kind, value, trace = sys.exc_info()
        while trace is not None and trace.tb_frame.f_code.co_filename != script and trace.tb_next is not None:
            trace = trace.tb_next  # from the script's own frame, as `python script.py` shows it
        sys.excepthook(kind, value.with_traceback(trace), trace)
        code = 1
    try:
        threading._shutdown()
    except BaseException:  # noqa: BLE001
        pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code


def _exit_code(value):
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
