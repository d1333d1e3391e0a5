"""Check family `operations` (issue 14): what lets someone run the stack and answer a regulator.

- every state machine has `Logging` (a log group destination) and `Tracing: {Enabled: true}`; every function is
  traced (`Tracing: Active`) and logs to a log group with a retention;
- every alarm has actions: the template's `AWS::CloudWatch::Alarm`s and the `putMetricAlarm` tasks of the state
  machines (alarms the pipelines create per model line);
- every taggable resource of the translated template (SAM's generated roles and rules included; taggable = its
  CloudFormation schema has `Tags`, from cfn-lint's provider schemas) carries the tags of the strategy, and every
  SageMaker job, model, endpoint config and endpoint a state machine creates passes `Tags`;
- an Object Lock bucket keeps its records in COMPLIANCE mode at least as long as the retention parameter says.
"""

from __future__ import annotations

import json
from typing import Any

from sagestep.validate.project import Finding, Project

CHECK = "operations"
TAG_KEYS = ("Project", "Environment", "ModelLine", "Owner", "CostCenter", "DataClassification")
RETENTION_PARAMETER = "AuditRetentionDays"
# SageMaker creates that take Tags and leave a billable or auditable resource (jobs, models, configs, endpoints).
_TAGGED_CREATES = ("createTrainingJob", "createProcessingJob", "createTransformJob", "createModel",
                   "createEndpointConfig", "createEndpoint", "createModelCard")


def check(project: Project, translated: dict[str, Any] | None) -> list[Finding]:
    findings = _logging_and_tracing(project) + _alarm_actions(project) + _object_lock(project)
    if translated is not None:
        findings += _template_tags(project, translated)
    findings += _state_machine_tags(project)
    return findings


def _props(project: Project, logical_id: str) -> dict[str, Any]:
    return project.resources[logical_id].get("Properties") or {}


def _logging_and_tracing(project: Project) -> list[Finding]:
    findings = []
    globals_function = (project.document.get("Globals") or {}).get("Function") or {}
    for logical_id, resource in project.resources.items():
        rtype = resource.get("Type")
        props = resource.get("Properties") or {}
        where = project.where(logical_id)
        if rtype == "AWS::Serverless::StateMachine":
            logging = props.get("Logging") or {}
            if not logging.get("Destinations") or logging.get("Level") in (None, "OFF"):
                findings.append(Finding(CHECK, project.template_file, where, f"state machine {logical_id} has no Logging to a log "
                                        "group: add Logging {Level: ALL, Destinations: [{CloudWatchLogsLogGroup: ...}]}"))
            if (props.get("Tracing") or {}).get("Enabled") is not True:
                findings.append(Finding(CHECK, project.template_file, where, f"state machine {logical_id} is not traced: add "
                                        "Tracing: {Enabled: true}"))
        elif rtype == "AWS::Serverless::Function":
            tracing = props.get("Tracing", globals_function.get("Tracing"))
            if tracing != "Active":
                findings.append(Finding(CHECK, project.template_file, where, f"function {logical_id} is not traced: set "
                                        "Tracing: Active (here or in Globals.Function)"))
            log_group = (props.get("LoggingConfig") or globals_function.get("LoggingConfig") or {}).get("LogGroup")
            if not _is_retained_log_group(project, log_group):
                findings.append(Finding(CHECK, project.template_file, where, f"function {logical_id} logs to no log group with a "
                                        "retention: set LoggingConfig.LogGroup to an AWS::Logs::LogGroup with RetentionInDays"))
    for logical_id, resource in project.resources.items():
        if resource.get("Type") == "AWS::Logs::LogGroup" and not (resource.get("Properties") or {}).get("RetentionInDays"):
            findings.append(Finding(CHECK, project.template_file, project.where(logical_id),
                                    f"log group {logical_id} keeps logs forever: set RetentionInDays (parameter LogRetentionDays)"))
    return findings


def _is_retained_log_group(project: Project, ref: Any) -> bool:
    if not (isinstance(ref, dict) and "Ref" in ref):
        return False
    resource = project.resources.get(ref["Ref"]) or {}
    return resource.get("Type") == "AWS::Logs::LogGroup" and bool((resource.get("Properties") or {}).get("RetentionInDays"))


def _alarm_actions(project: Project) -> list[Finding]:
    findings = []
    for logical_id, resource in project.resources.items():
        if resource.get("Type") == "AWS::CloudWatch::Alarm" and not (resource.get("Properties") or {}).get("AlarmActions"):
            findings.append(Finding(CHECK, project.template_file, project.where(logical_id),
                                    f"alarm {logical_id} has no AlarmActions: nobody would hear it (add [!Ref NotificationTopic])"))
    for machine in project.machines:
        for name, state in _task_states(machine.definition):
            if str(state.get("Resource", "")).endswith(":cloudwatch:putMetricAlarm"):
                arguments = state.get("Parameters") or state.get("Arguments") or {}
                if not (arguments.get("AlarmActions") or arguments.get("AlarmActions.$")):
                    findings.append(Finding(CHECK, machine.file, f"state {name!r}",
                                            "putMetricAlarm without AlarmActions: the alarm would notify nobody"))
    return findings


def _object_lock(project: Project) -> list[Finding]:
    findings = []
    parameters = project.document.get("Parameters") or {}
    for logical_id, resource in project.resources.items():
        if resource.get("Type") != "AWS::S3::Bucket" or not _props(project, logical_id).get("ObjectLockEnabled"):
            continue
        where = project.where(logical_id)
        retention = ((_props(project, logical_id).get("ObjectLockConfiguration") or {}).get("Rule") or {}).get("DefaultRetention") or {}
        if retention.get("Mode") != "COMPLIANCE":
            findings.append(Finding(CHECK, project.template_file, where, f"bucket {logical_id}: Object Lock default retention "
                                    "must be Mode COMPLIANCE (GOVERNANCE can be bypassed)"))
        days = retention.get("Days")
        years = retention.get("Years")
        minimum = (parameters.get(RETENTION_PARAMETER) or {}).get("Default")
        if days == {"Ref": RETENTION_PARAMETER}:
            continue
        resolved = int(days) if isinstance(days, int) else int(years) * 365 if isinstance(years, int) else None
        if minimum is None or resolved is None or resolved < int(minimum):
            findings.append(Finding(CHECK, project.template_file, where, f"bucket {logical_id}: Object Lock retention "
                                    f"({days or years}) is below parameter {RETENTION_PARAMETER} ({minimum}); use Days: "
                                    f"!Ref {RETENTION_PARAMETER}"))
    if not any(r.get("Type") == "AWS::S3::Bucket" and (r.get("Properties") or {}).get("ObjectLockEnabled")
               for r in project.resources.values()):
        findings.append(Finding(CHECK, project.template_file, "Resources", "no bucket with Object Lock: the audit trail "
                                "needs one (COMPLIANCE, retention !Ref AuditRetentionDays)"))
    return findings


def _taggable(rtype: str) -> bool:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", rtype).schema
    except Exception:  # noqa: BLE001 - custom resources and unknown types have no schema: not taggable
        return False
    return "Tags" in (schema.get("properties") or {})


def _tag_keys(tags: Any) -> set[str]:
    if isinstance(tags, dict):
        return set(tags)
    if isinstance(tags, list):
        return {t.get("Key") for t in tags if isinstance(t, dict)}
    return set()


def _template_tags(project: Project, translated: dict[str, Any]) -> list[Finding]:
    from sagestep.validate.template_checks import original_logical_id

    findings = []
    for logical_id, resource in (translated.get("Resources") or {}).items():
        rtype = str(resource.get("Type"))
        if not _taggable(rtype):
            continue
        missing = [k for k in TAG_KEYS if k not in _tag_keys((resource.get("Properties") or {}).get("Tags"))]
        source = original_logical_id(project, logical_id)
        if missing and rtype == "AWS::Events::Rule" and source != logical_id:
            # SAM generates this rule from a state machine's EventBridgeRule event and cannot tag it (samtranslator's
            # EventsRule has no Tags; PropagateTags skips it): the one exception, until the event becomes a resource.
            continue
        if missing:
            what = logical_id if source == logical_id else f"{logical_id} (generated from {source})"
            findings.append(Finding(CHECK, project.template_file, project.where(source) if source in project.resources else logical_id,
                                    f"{rtype} {what} is untagged: missing {', '.join(missing)} (tagging strategy, README "
                                    "\"Tags\"; SAM resources: Tags + PropagateTags: true)"))
    return findings


def _task_states(definition: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in (definition.get("States") or {}).items():
        if state.get("Type") == "Task":
            found.append((name, state))
        for branch in state.get("Branches") or []:
            found += _task_states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found += _task_states(state[key])
    return found


def _state_machine_tags(project: Project) -> list[Finding]:
    findings = []
    for machine in project.machines:
        for name, state in _task_states(machine.definition):
            resource = str(state.get("Resource", ""))
            action = resource.rsplit(":", 1)[-1].removesuffix(".sync")
            if ":sagemaker:" not in resource or action not in _TAGGED_CREATES:
                continue
            arguments = state.get("Parameters") or state.get("Arguments") or {}
            if isinstance(arguments, str):  # a JSONata expression: the tags are inside it
                present = {k for k in TAG_KEYS if f"'{k}'" in arguments or f'"{k}"' in arguments}
            else:
                tags = arguments.get("Tags")
                present = set() if tags is None else {k for k in TAG_KEYS if f'"{k}"' in json.dumps(tags)}
            missing = [k for k in TAG_KEYS if k not in present]
            if missing:
                findings.append(Finding(CHECK, machine.file, f"state {name!r}", f"{action} creates an untagged resource: "
                                        f"add Tags {', '.join(missing)} (tagging strategy, README \"Tags\")"))
    return findings
