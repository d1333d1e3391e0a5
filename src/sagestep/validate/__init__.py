"""`sagestep validate`: prove offline that what `sam deploy` ships would work in AWS.

One module per family of checks, each a pure function of the `Project` returning `Finding`s:

- `template_checks`: `sam validate --lint`; SAM translation + cfn-lint on the result (bad !GetAtt / !Ref in SAM
  properties);
- `asl_structure`: transitions, reachability, placeholders vs DefinitionSubstitutions;
- `parameters`: every Task's evaluated request against botocore's model;
- `iam`: the actions each state machine and function needs vs. what its role grants; wildcards need a `# why`;
- `naming`: names that can break their length or pattern, `.sync` results kept whole, retried creates;
- `rules`: EventBridge rules and schedules valid, each pattern matching its sample event in events/rule_*.json, and
  the target input it builds readable by the target machine's states.
- `errors`: Retry/Catch names the state can actually fail with, permanent errors not retried for minutes,
  heartbeat below timeout, Map concurrency within AWS's limits.
- `operations`: logging + tracing on every state machine and function, actions on every alarm, the tagging strategy
  on every taggable resource and SageMaker create, Object Lock retention at least the audit retention parameter.

Everything is discovered from template.yaml: new state machines, functions and resources are checked as they appear.
"""

from __future__ import annotations

import os
from pathlib import Path

from sagestep.validate.project import Finding, Project

__all__ = ["Finding", "Project", "run"]


FAMILIES = ("template", "asl", "parameters", "iam", "naming", "rules", "errors", "operations")


def run(template_path: Path, *, skip_sam: bool = False, only: set[str] | None = None) -> list[Finding]:
    """Every finding of the checks (all families, or `only` those named); `skip_sam` leaves out `sam validate --lint`."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from sagestep.validate import asl_structure, errors, iam, naming, operations, parameters, rules, template_checks

    wanted = set(FAMILIES if only is None else only)
    project = Project(template_path)
    sam = None
    if "template" in wanted and not skip_sam:
        sam = template_checks.start_sam_lint(project)  # runs while the other checks do
    translated, translate_findings = (None, [])
    if wanted & {"template", "iam", "operations"}:
        translated, translate_findings = template_checks.translate(project)
    findings: list[Finding] = []
    if "template" in wanted:
        findings += template_checks.check(project, translated, translate_findings)
    if "asl" in wanted:
        findings += asl_structure.check(project)
    if "parameters" in wanted:
        findings += parameters.check(project)
    if "iam" in wanted:
        findings += iam.check(project, translated)
    if "naming" in wanted:
        findings += naming.check(project)
    if "rules" in wanted:
        findings += rules.check(project)
    if "errors" in wanted:
        findings += errors.check(project)
    if "operations" in wanted:
        findings += operations.check(project, translated)
    if sam is not None:
        findings = template_checks.sam_lint_findings(project, sam) + findings
    unique: list[Finding] = []
    for finding in findings:
        if finding not in unique:
            unique.append(finding)
    return unique
