"""The fork server (local/forkserver.py, local/zygote.py): a forked child is what `python SCRIPT ARG...` would be."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from sagestep.local import forkserver

PRELOAD = ("json", "decimal")


def run(tmp_path, source: str, *args: str, env: dict | None = None, cwd=None) -> tuple[object, str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    log = tmp_path / "out.log"
    with open(log, "wb") as out:
        process = forkserver.fork(sys.executable, PRELOAD, [str(script), *args], env=env or {}, cwd=cwd or tmp_path,
                                  stdout=out.fileno(), stderr=out.fileno())
    assert isinstance(process, forkserver.ForkedProcess)
    process.wait(60)
    return process, log.read_text()


def test_child_gets_its_argv_environment_directory_path_and_exit_code(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helper.py").write_text("VALUE = 'from PYTHONPATH'\n")
    process, out = run(tmp_path, """
        import json, os, sys
        import helper
        print(json.dumps({"argv": sys.argv[1:], "env": os.environ.get("GREETING"), "cwd": os.getcwd(),
                          "name": __name__, "helper": helper.VALUE, "has_home": "HOME" in os.environ}))
        sys.exit(3)
    """, "--flag", "x", env={"GREETING": "hello", "PYTHONPATH": str(tmp_path / "lib")}, cwd=tmp_path / "lib")
    assert process.returncode == 3
    assert json.loads(out) == {"argv": ["--flag", "x"], "env": "hello", "cwd": str(tmp_path / "lib"),
                               "name": "__main__", "helper": "from PYTHONPATH", "has_home": False}


def test_uncaught_exception_exits_1_with_the_scripts_own_traceback(tmp_path):
    process, out = run(tmp_path, "raise ValueError('row 3: Income is not a number')\n")
    assert process.returncode == 1
    assert out.splitlines()[1].strip().startswith(f'File "{tmp_path / "script.py"}"'), out
    assert "zygote" not in out and out.strip().endswith("ValueError: row 3: Income is not a number")


def test_atexit_handlers_and_threads_finish_before_the_exit(tmp_path):
    process, out = run(tmp_path, """
        import atexit, threading, time
        atexit.register(lambda: print("atexit"))
        threading.Thread(target=lambda: (time.sleep(0.2), print("thread"))).start()
    """)
    assert process.returncode == 0 and out.split() == ["thread", "atexit"]


def test_terminated_child_reports_the_signal_as_subprocess_does(tmp_path):
    script = tmp_path / "sleep.py"
    script.write_text("import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    with open(tmp_path / "out.log", "wb") as out:
        process = forkserver.fork(sys.executable, PRELOAD, [str(script)], env={}, cwd=tmp_path,
                                  stdout=out.fileno(), stderr=out.fileno())
    assert process.poll() is None
    process.terminate()
    assert process.wait(30) == -signal.SIGTERM


def test_a_setting_read_at_startup_gets_a_zygote_started_with_it(tmp_path):
    # PYTHONHASHSEED is read when the interpreter starts: a forked child can only have it from its zygote
    _, out = run(tmp_path, "print(hash('credit'))\n", env={"PYTHONHASHSEED": "7"})
    expected = subprocess.run([sys.executable, "-c", "print(hash('credit'))"], env={**os.environ, "PYTHONHASHSEED": "7"},
                              capture_output=True, text=True, check=True).stdout
    assert out == expected


def test_child_whose_path_holds_a_preloaded_package_is_not_forked(tmp_path):
    (tmp_path / "vendored" / "decimal").mkdir(parents=True)
    (tmp_path / "vendored" / "decimal" / "__init__.py").write_text("")
    script = tmp_path / "script.py"
    script.write_text("print('hi')\n")
    assert forkserver.fork(sys.executable, PRELOAD, [str(script)], env={"PYTHONPATH": str(tmp_path / "vendored")},
                           cwd=tmp_path, stdout=1, stderr=2) is None


def test_a_command_that_is_not_a_script_is_not_forked(tmp_path):
    assert forkserver.fork(sys.executable, PRELOAD, ["-c", "print(1)"], env={}, cwd=tmp_path, stdout=1, stderr=2) is None


def test_child_reads_the_given_stdin_and_writes_to_a_passed_descriptor_under_its_number(tmp_path):
    # GIVEN a pipe for stdin and a result pipe whose write end the child must find under the parent's number
    # (a Lambda worker reads requests on stdin and answers on SAGESTEP_LAMBDA_RESULT_FD)
    stdin_read, stdin_write = os.pipe()
    result_read, result_write = os.pipe()
    script = tmp_path / "echo.py"
    script.write_text("import os, sys\n"
                      "with os.fdopen(int(os.environ['RESULT_FD']), 'w') as out:\n"
                      "    for line in sys.stdin:\n"
                      "        out.write(line.upper())\n")
    with open(tmp_path / "out.log", "wb") as log:
        process = forkserver.fork(sys.executable, PRELOAD, [str(script)], env={"RESULT_FD": str(result_write)},
                                  cwd=tmp_path, stdout=log.fileno(), stderr=log.fileno(), stdin=stdin_read,
                                  pass_fds=(result_write,))
    os.close(stdin_read)
    os.close(result_write)
    # WHEN two lines are written and stdin is closed
    with os.fdopen(stdin_write, "w") as requests:
        requests.write("approve\ndecline\n")
    # THEN the answers arrive on the passed descriptor and the child exits cleanly
    with os.fdopen(result_read) as results:
        assert results.read() == "APPROVE\nDECLINE\n"
    assert process.wait(30) == 0, (tmp_path / "out.log").read_text()


def test_more_descriptors_than_the_zygote_takes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="pass_fds"):
        forkserver.fork(sys.executable, PRELOAD, [str(tmp_path / "x.py")], env={}, cwd=tmp_path, stdout=1, stderr=2,
                        pass_fds=(3, 4, 5, 6, 7))
