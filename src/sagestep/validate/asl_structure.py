"""Check 2, ASL structure: transitions, reachability, terminal states, `${...}` placeholders vs substitutions.

Scopes are checked separately, as Step Functions does: a Parallel branch or Map processor may only move between
its own states.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from sagestep.stack import template as tpl
from sagestep.validate.project import Finding, Machine, Project

CHECK = "asl"
STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}
TERMINAL_TYPES = {"Succeed", "Fail"}


def transitions(state: dict[str, Any]) -> list[tuple[str, Any]]:
    """(where, target) for every transition a state declares."""
    out: list[tuple[str, Any]] = []
    if "Next" in state:
        out.append(("Next", state["Next"]))
    if "Default" in state:
        out.append(("Default", state["Default"]))
    for index, choice in enumerate(state.get("Choices") or []):
        if isinstance(choice, dict) and "Next" in choice:
            out.append((f"Choices[{index}].Next", choice["Next"]))
    for index, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict) and "Next" in catcher:
            out.append((f"Catch[{index}].Next", catcher["Next"]))
    return out


def sub_machines(state: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for index, branch in enumerate(state.get("Branches") or []):
        if isinstance(branch, dict):
            out.append((f"branch {index + 1}", branch))
    processor = state.get("ItemProcessor") or state.get("Iterator")
    if isinstance(processor, dict):
        out.append(("item", processor))
    return out


def reachable(states: dict[str, Any], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in states or not isinstance(states[name], dict):
            continue
        seen.add(name)
        todo.extend(t for _, t in transitions(states[name]) if isinstance(t, str))
    return seen


def check_scope(machine: dict[str, Any], prefix: tuple[str, ...], report: Any) -> None:
    states = machine.get("States")
    where = " > ".join(prefix) or "top level"
    if not isinstance(states, dict) or not states:
        report(prefix, f"{where}: States must be a non-empty object")
        return
    start = machine.get("StartAt")
    if start not in states:
        report(prefix, f"{where}: StartAt {start!r} is not a state of this scope (states: {', '.join(states)})")
    for name, state in states.items():
        path = prefix + (name,)
        if not isinstance(state, dict):
            report(path, "a state must be an object")
            continue
        kind = state.get("Type")
        if kind not in STATE_TYPES:
            report(path, f"Type {kind!r} is not one of {', '.join(sorted(STATE_TYPES))}")
        for field, target in transitions(state):
            if target not in states:
                report(path, f"{field} goes to {target!r}, which is not a state of {where}"
                             + (" (states of a Parallel branch or Map processor cannot leave it)" if prefix else ""))
        if kind in STATE_TYPES - TERMINAL_TYPES - {"Choice"}:
            if state.get("End") is True and "Next" in state:
                report(path, "has both Next and End")
            elif state.get("End") is not True and "Next" not in state:
                report(path, "needs Next or \"End\": true")
        if kind == "Choice" and not state.get("Choices"):
            report(path, "a Choice state needs a non-empty Choices list")
        if kind in TERMINAL_TYPES and ("Next" in state or "End" in state):
            report(path, f"a {kind} state takes neither Next nor End")
        for label, sub in sub_machines(state):
            check_scope(sub, path + (label,), report)
    if start in states:
        unreachable = [n for n in states if n not in reachable(states, start)]
        for name in unreachable:
            report(prefix + (name,), f"unreachable from StartAt {start!r}: no Next, Default, Choice or Catch leads here")


def check_machine(project: Project, machine: Machine) -> list[Finding]:
    findings = [f for f in machine.problems if f.check == CHECK]

    def report(path: tuple[str, ...], message: str) -> None:
        location = f'{machine.logical_id}, state "{" > ".join(path)}"' if path else machine.logical_id
        findings.append(Finding(CHECK, machine.file, location, message))

    if machine.text:
        used = tpl.placeholders(machine.text)
        for name in sorted(used - machine.declared_substitutions):
            findings.append(Finding(CHECK, machine.file, machine.logical_id,
                                    f"${{{name}}} has no entry in {machine.logical_id}.DefinitionSubstitutions "
                                    f"({project.template_file}); add `{name}: ...` there"))
        for name in sorted(machine.declared_substitutions - used):
            findings.append(Finding(CHECK, project.template_file,
                                    project.where(machine.logical_id, "Properties", "DefinitionSubstitutions", name),
                                    f"substitution {name} is never used in {machine.file}; remove it or use ${{{name}}}"))
    if machine.definition is not None:
        check_scope(machine.definition, (), report)
    return findings


def asl_validator(root: Path) -> str | None:
    """tools/asl-validator (installed by `make`, pinned in its package.json), when node is there to run it."""
    script = root / "tools" / "asl-validator" / "node_modules" / ".bin" / "asl-validator"
    return str(script) if script.is_file() and shutil.which("node") else None


def second_opinion(project: Project) -> list[Finding]:
    """asl-validator on each substituted definition (what Step Functions receives). Skipped when not installed."""
    validator = asl_validator(project.root)
    machines = [m for m in project.machines if m.definition is not None]
    if validator is None or not machines:
        return []
    findings = []
    with tempfile.TemporaryDirectory(prefix="sagestep-validate-") as tmp:
        for machine in machines:
            path = Path(tmp) / f"{machine.logical_id}.json"
            path.write_text(json.dumps(machine.definition))
            try:
                result = subprocess.run([validator, "--json-path", str(path)], capture_output=True, text=True,  # noqa: S603
                                        timeout=60, check=False)
            except subprocess.TimeoutExpired:
                findings.append(Finding(CHECK, machine.file, machine.logical_id, "asl-validator did not finish in 60 s"))
                continue
            if result.returncode == 0:
                continue
            lines = [line.strip() for line in (result.stdout + result.stderr).splitlines()]
            problems = [line for line in lines if line and not line.startswith(("✕", "✓")) and ":" in line]
            for problem in problems or [" | ".join(lines[-3:])]:
                findings.append(Finding(CHECK, machine.file, machine.logical_id, f"asl-validator: {problem}"))
    return findings


def check(project: Project) -> list[Finding]:
    findings: list[Finding] = []
    for machine in project.machines:
        findings += check_machine(project, machine)
    return findings + second_opinion(project)
