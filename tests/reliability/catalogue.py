"""The reliability catalogue's vocabulary: a case is data (where it enters, what it gets, what must come out), and
every case is judged the same way: the exit code or error it was designed to give, a message that names the input,
the field and the fix on one line without a traceback, no input changed, and a workspace still usable after."""

from __future__ import annotations

import hashlib
import io
import json
import traceback
from collections.abc import Callable, Iterable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sagestep.cli import main as cli_main

BAD_INPUT = "bad input"
FAULT = "fault"
CLEAR = "clear"  # refused with a clear error naming the input, the field and the fix
DESIGNED = "designed state"  # ended in the state it was designed to end in (a named failure, a retry that recovered, ...)


@dataclass(frozen=True)
class Case:
    """One entry of the catalogue. `argv` may name files made by `files` as {dir}/<name>, and {ws} for the shared
    workspace; `expect` fragments must all appear in the error (case-insensitive)."""

    id: str
    argv: Sequence[str]
    expect: Sequence[str]
    files: dict[str, bytes | str] = field(default_factory=dict)
    code: int = 2
    outcome: str = CLEAR
    kind: str = BAD_INPUT

    def __str__(self) -> str:
        return self.id


def ids(cases: Iterable[Case]) -> list[str]:
    return [c.id for c in cases]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(argv: Sequence[str]) -> CliResult:
    """`sagestep ...` in this process, as a user runs it: exit code, stdout, stderr; a traceback is a finding."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli_main(list(argv))
        except SystemExit as exc:  # argparse: usage error
            code = int(exc.code or 0)
        except BaseException:  # noqa: BLE001 - exactly what the catalogue exists to catch
            err.write(traceback.format_exc())
            code = -1
    return CliResult(code, out.getvalue(), err.getvalue())


def checksums(*roots: Path, skip: Callable[[Path], bool] = lambda p: False) -> dict[str, str]:
    """sha256 of every file under the roots (the inputs a case must leave alone)."""
    sums: dict[str, str] = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for path in paths:
            if not skip(path):
                sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before if after.get(k) != before[k])


def write_files(directory: Path, files: dict[str, bytes | str]) -> None:
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def fill(argv: Sequence[str], **values: str) -> list[str]:
    return [a.format(**values) for a in argv]


def clear_message(text: str, expect: Sequence[str]) -> list[str]:
    """What is wrong with an error message (empty: clear): no traceback, and it says each expected fragment."""
    problems = []
    if "Traceback (most recent call last)" in text:
        problems.append("a traceback")
    lowered = text.lower()
    problems += [f"does not say {fragment!r}" for fragment in expect if fragment.lower() not in lowered]
    return problems


def judge(request: pytest.FixtureRequest, case_id: str, kind: str, outcome: str, problems: list[str],
          inputs_changed: list[str], workspace_problem: str | None) -> None:
    """Record the case for the summary line, then fail it if it is not clear / in its designed state."""
    request.node.user_properties.append(("reliability", json.dumps({
        "id": case_id, "kind": kind, "outcome": outcome if not problems else "unclear",
        "inputs_changed": len(inputs_changed), "unusable": workspace_problem is not None,
    })))
    assert not problems, f"{case_id}: " + "; ".join(problems)
    assert not inputs_changed, f"{case_id}: inputs changed: {inputs_changed}"
    assert workspace_problem is None, f"{case_id}: workspace unusable after it: {workspace_problem}"


def one_line_error(result: CliResult) -> list[str]:
    """A refused command says what is wrong on one `error:` line (argparse: its usage line, then one error line)."""
    lines = [line for line in result.err.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    if not errors:
        return [f"no error line on stderr: {result.err[-400:]!r} (stdout {result.out[-300:]!r})"]
    if len(errors) > 1:
        return [f"{len(errors)} error lines"]
    return []


def describe(result: CliResult) -> str:
    return f"exit {result.code}; stderr: {result.err[-1500:]}; stdout: {result.out[-500:]}"


def as_json(value: Any) -> str:
    return json.dumps(value)
