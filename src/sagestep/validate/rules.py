"""Check 6, rules: every EventBridge rule and schedule of the template is valid and gives its target machine an input
its states can read.

- the rule itself: its pattern is valid (InvalidEventPatternException at deploy otherwise), its schedule parses;
- every rule with a pattern has a sample event `events/rule_<snake rule name>.json` — an event as AWS emits it —
  which must match the pattern (a pattern that never matches its own sample is a dead rule);
- the target input (Input, InputPath, InputTransformer, or the whole event) built from that event, or a schedule's
  constant Input, must be JSON, and the target state machine is walked with it as its execution input: a JSONPath
  of its states that reads a field the transformed event does not have, or a request it makes invalid, is reported.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from sagestep.local.eventbridge import (
    InputError,
    InvalidEventPattern,
    InvalidSchedule,
    matches,
    parse_schedule,
    rules_from_template,
    target_input,
)
from sagestep.validate import parameters
from sagestep.validate.project import STACK, Finding, Project, snake

CHECK = "rules"


def sample_path(project: Project, rule_logical_id: str) -> Path:
    return project.root / "events" / f"rule_{snake(rule_logical_id)}.json"


def check(project: Project) -> list[Finding]:
    findings: list[Finding] = []
    try:
        rules = rules_from_template(project.resolver, STACK)
    except InvalidEventPattern as exc:
        return [Finding(CHECK, project.template_file, "Events", str(exc))]
    machines = {m.arn: m for m in project.machines}
    for rule in rules:
        where = _where(project, rule.source)
        if rule.schedule is not None:
            try:
                parse_schedule(rule.schedule)
            except InvalidSchedule as exc:
                findings.append(Finding(CHECK, project.template_file, where, f"schedule {exc}"))
        event: dict[str, Any] | None = None
        sample_file = None
        if rule.pattern is not None:
            path = sample_path(project, rule.logical_id)
            sample_file = project.rel(path)
            if not path.is_file():
                findings.append(Finding(CHECK, project.template_file, where,
                                        f"rule {rule.logical_id} has no sample event {sample_file}: store an event as AWS "
                                        f"emits it there, so the rule's pattern and target input can be proven"))
                continue
            try:
                event = json.loads(path.read_text())
            except ValueError as exc:
                findings.append(Finding(CHECK, sample_file, rule.logical_id, f"not valid JSON: {exc}"))
                continue
            if not matches(rule.pattern, event):
                findings.append(Finding(CHECK, sample_file, rule.logical_id,
                                        f"the sample event does not match the pattern of rule {rule.logical_id}: the rule "
                                        f"would never start {rule.targets[0].arn.rsplit(':', 1)[-1] if rule.targets else 'its target'}"))
                continue
        functions = {project.resolver.get_att(f.logical_id, "Arn") for f in project.functions}
        for target in rule.targets:
            machine = machines.get(target.arn)
            if machine is None and target.arn in functions:  # a Lambda target gets the event itself (no input to walk)
                continue
            if machine is None:
                findings.append(Finding(CHECK, project.template_file, where,
                                        f"target {target.arn} is not a state machine or function of this template"))
                continue
            try:
                if rule.scheduler or event is None:
                    text = target.input if target.input is not None else "{}"
                else:
                    text = target_input(target.as_mapping(), event, rule.name, rule.arn, "2026-01-01T00:00:00Z")
                execution_input = json.loads(text)
            except (InputError, ValueError) as exc:
                findings.append(Finding(CHECK, project.template_file, where,
                                        f"target input for {machine.logical_id} is not JSON ({exc}); StartExecution would "
                                        f"refuse it (InvalidExecutionInput)"))
                continue
            label = sample_file or f"{rule.logical_id} Input"
            walked = dataclasses.replace(machine, samples=[(label, execution_input)])
            for finding in parameters.check_machine(walked):
                findings.append(Finding(CHECK, finding.file, finding.location,
                                        f"started by rule {rule.logical_id}: {finding.message}"))
            for location, message in _certain_failures(walked):
                findings.append(Finding(CHECK, machine.file, location, f"started by rule {rule.logical_id}: {message}"))
    return findings


def _certain_failures(machine: Any) -> list[tuple[str, str]]:
    """The input refused at the machine's door (a first state assigning InputProblems): its list of problems."""
    from sagestep.validate import flows
    from sagestep.validate.evaluate import eval_jsonata

    out = []
    for walk in flows.example_walks(machine):
        first = walk.walker.visits[0] if walk.walker.visits else None
        assign = first.state.get("Assign") if first is not None else None
        if not isinstance(assign, dict) or "InputProblems" not in assign:
            continue
        errors: list[str] = []
        bindings = {"states": {"input": first.input, "context": first.context}}
        problems = eval_jsonata({"p": assign["InputProblems"]}, bindings, errors, "Assign").get("p")
        if isinstance(problems, list) and problems and all(isinstance(p, str) for p in problems):
            out.append((parameters.state_location(machine, first.path),
                        "the machine refuses its input at the door (InvalidExecutionInput): " + "; ".join(problems)))
    return out


def _where(project: Project, source: str) -> str:
    if ".Events." in source:
        machine, event = source.split(".Events.", 1)
        return project.where(machine, "Properties", "Events", event)
    return project.where(source)
