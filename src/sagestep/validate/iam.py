"""Check 4, IAM coverage, on the template as CloudFormation sees it (after SAM translation, so SAM policy templates,
`Policies` of functions and state machines and connectors are expanded the way `sam deploy` expands them).

Needs:
- a state machine's role: every Task's integration, with resources from the evaluated request (example walk):
  SageMaker calls on their job/model/endpoint ARN (+ Describe/Stop and the managed EventBridge rule for `.sync`,
  AddTags when Tags are passed), iam:PassRole of every `*RoleArn` passed, lambda:InvokeFunction on the function,
  sns:Publish/sqs:SendMessage (+ kms:GenerateDataKey/Decrypt when the template's topic or queue is KMS-encrypted),
  states:StartExecution (+ Describe/Stop and the rule for `.sync`), `aws-sdk:svc:op` → svc:Op; Logging and Tracing.
- a function's role: the API calls of its handler (`boto_scan`), on any resource (the scan cannot know which).
Grants: Allow statements of the role's inline policies, AWS::IAM::Policy / ManagedPolicy resources attached to it,
and a few AWS managed policies known by content. Actions match with IAM wildcards (case-insensitive), resources
with wildcards on both sides (an unknown part of a required ARN may be anything). Conditions are assumed to hold;
an unconditional Deny wins.

Wildcards: an Allow statement in template.yaml whose Action contains `*`, whose Resource is `*`, or that uses
NotAction/NotResource, needs a `# why: ...` comment on its line or the line above; so does a SAM policy template
that grants such a statement and an AWS managed policy known to be broad.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from sagestep.stack import template as tpl
from sagestep.validate import boto_scan, flows
from sagestep.validate.evaluate import boto_service, integration
from sagestep.validate.naming import all_states
from sagestep.validate.parameters import state_location
from sagestep.validate.project import STACK, Finding, Machine, Project, ValidationResolver
from sagestep.validate.values import CLOSE, OPEN, _MARKER

CHECK = "iam"

SYNC_RULES = {
    ("sagemaker", "createTrainingJob"): "StepFunctionsGetEventsForSageMakerTrainingJobsRule",
    ("sagemaker", "createProcessingJob"): "StepFunctionsGetEventsForSageMakerProcessingJobsRule",
    ("sagemaker", "createTransformJob"): "StepFunctionsGetEventsForSageMakerTransformJobsRule",
    ("sagemaker", "createHyperParameterTuningJob"): "StepFunctionsGetEventsForSageMakerTuningJobsRule",
    ("states", "startExecution"): "StepFunctionsGetEventsForStepFunctionsExecutionRule",
    ("ecs", "runTask"): "StepFunctionsGetEventsForECSTaskRule",
    ("batch", "submitJob"): "StepFunctionsGetEventsForBatchJobsRule",
    ("codebuild", "startBuild"): "StepFunctionsGetEventsForCodeBuildStartBuildRule",
}

# botocore operations whose IAM action has another name.
IAM_ACTION = {
    ("s3", "ListObjectsV2"): ["s3:ListBucket"], ("s3", "ListObjects"): ["s3:ListBucket"],
    ("s3", "HeadObject"): ["s3:GetObject"], ("s3", "HeadBucket"): ["s3:ListBucket"],
    ("s3", "ListObjectVersions"): ["s3:ListBucketVersions"], ("s3", "DeleteObjects"): ["s3:DeleteObject"],
    ("s3", "CopyObject"): ["s3:GetObject", "s3:PutObject"], ("s3", "CreateMultipartUpload"): ["s3:PutObject"],
    ("s3", "UploadPart"): ["s3:PutObject"], ("s3", "CompleteMultipartUpload"): ["s3:PutObject"],
    ("s3", "UploadPartCopy"): ["s3:GetObject", "s3:PutObject"],
    ("lambda", "Invoke"): ["lambda:InvokeFunction"], ("lambda", "InvokeAsync"): ["lambda:InvokeFunction"],
    ("lambda", "InvokeWithResponseStream"): ["lambda:InvokeFunction"],
}

# AWS managed policies whose content is known (everything else attached by ARN is reported as unreadable).
KNOWN_MANAGED = {
    "service-role/AWSLambdaBasicExecutionRole": [
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}],
    "AWSXrayWriteOnlyAccess": [
        {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                                        "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"], "Resource": "*"}],
}
BROAD_MANAGED = re.compile(r"FullAccess|PowerUser|AdministratorAccess|ReadOnlyAccess")


@dataclasses.dataclass(frozen=True)
class Need:
    action: str
    resource: str  # an ARN; `*` where a part is unknown
    why: str


@dataclasses.dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...]
    not_resources: tuple[str, ...] | None
    conditional: bool


# ---------------------------------------------------------------------------------------------- matching


@functools.lru_cache(maxsize=65536)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.IGNORECASE)

# IAM action prefixes that differ from the service's signing name.
_IAM_PREFIXES = {"monitoring": "cloudwatch", "runtime.sagemaker": "sagemaker"}


def iam_prefix(signing_name: str) -> str:
    return _IAM_PREFIXES.get(signing_name, signing_name)


def action_matches(pattern: str, action: str) -> bool:
    return _glob_regex(pattern).fullmatch(action) is not None


def globs_intersect(a: str, b: str) -> bool:
    """Is there a string both wildcard patterns (`*`, `?`) match?"""

    @functools.lru_cache(maxsize=None)
    def go(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            if go(i + 1, j) or (j < len(b) and go(i, j + 1)):
                return True
            return False
        if j < len(b) and b[j] == "*":
            return go(i, j + 1) or (i < len(a) and go(i + 1, j))
        if i < len(a) and j < len(b) and (a[i] == b[j] or a[i] == "?" or b[j] == "?"):
            return go(i + 1, j + 1)
        return False

    return go(0, 0)


def _covers_action(statement: Statement, action: str) -> bool:
    if statement.not_actions is not None:
        return not any(action_matches(p, action) for p in statement.not_actions)
    return any(action_matches(p, action) for p in statement.actions)


def _covers_resource(statement: Statement, resource: str) -> bool:
    if statement.not_resources is not None:
        return not any(_glob_regex(p).fullmatch(resource) for p in statement.not_resources if "*" not in resource)
    return any(globs_intersect(p, resource) for p in statement.resources)


def allowed(statements: list[Statement], need: Need) -> bool:
    for s in statements:
        if s.effect == "Deny" and not s.conditional and _covers_action(s, need.action):
            if any(_glob_regex(p).fullmatch(need.resource) for p in s.resources) or s.resources == ("*",):
                return False
    return any(s.effect == "Allow" and _covers_action(s, need.action) and _covers_resource(s, need.resource) for s in statements)


# ---------------------------------------------------------------------------------------------- policies of a role


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def statements_of(document: Any, resolver: ValidationResolver) -> list[Statement]:
    out = []
    if not isinstance(document, dict):
        return out
    for raw in _as_list(document.get("Statement") or []):
        if not isinstance(raw, dict):
            continue

        def resolved(key: str) -> tuple[str, ...] | None:
            if key not in raw:
                return None
            values = []
            for item in _as_list(raw[key]):
                try:
                    values.append(_text(resolver.resolve(item)))
                except tpl.TemplateError:
                    values.append(f"<unresolvable {json.dumps(item)}>")
            return tuple(values)

        out.append(Statement(
            effect=str(raw.get("Effect", "Allow")),
            actions=resolved("Action") or (), not_actions=resolved("NotAction"),
            resources=resolved("Resource") or (), not_resources=resolved("NotResource"),
            conditional="Condition" in raw,
        ))
    return out


@dataclasses.dataclass
class Role:
    logical_id: str | None  # in the translated template
    statements: list[Statement]
    unreadable: list[str]  # managed policy ARNs whose content is not known offline


def _ref_target(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return str(att[0] if isinstance(att, list) else str(att).split(".")[0])
    return None


def role_policies(translated: dict[str, Any], resolver: ValidationResolver, role_value: Any) -> Role:
    resources = translated.get("Resources") or {}
    role_id = _ref_target(role_value)
    if role_id is None or resources.get(role_id, {}).get("Type") != "AWS::IAM::Role":
        return Role(None, [], [])
    props = resources[role_id].get("Properties") or {}
    statements: list[Statement] = []
    unreadable: list[str] = []
    for policy in props.get("Policies") or []:
        if isinstance(policy, dict):
            statements += statements_of(policy.get("PolicyDocument"), resolver)
    for arn in props.get("ManagedPolicyArns") or []:
        target = _ref_target(arn)
        if target and resources.get(target, {}).get("Type") == "AWS::IAM::ManagedPolicy":
            statements += statements_of((resources[target].get("Properties") or {}).get("PolicyDocument"), resolver)
            continue
        try:
            text = str(resolver.resolve(arn))
        except tpl.TemplateError:
            text = json.dumps(arn)
        name = text.split(":policy/", 1)[-1]
        if name in KNOWN_MANAGED:
            statements += [Statement("Allow", tuple(_as_list(s["Action"])), None, tuple(_as_list(s["Resource"])), None, False)
                           for s in KNOWN_MANAGED[name]]
        else:
            unreadable.append(text)
    for logical_id, resource in resources.items():
        if resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            rprops = resource.get("Properties") or {}
            if any(_ref_target(r) == role_id for r in rprops.get("Roles") or []):
                statements += statements_of(rprops.get("PolicyDocument"), resolver)
    return Role(role_id, statements, unreadable)


# ---------------------------------------------------------------------------------------------- needs of a machine


def _arnish(value: Any) -> str:
    """A required resource from an evaluated value: unknown parts become `*`."""
    text = value if isinstance(value, str) else "*"
    text = _MARKER.sub("*", text).replace(OPEN, "*").replace(CLOSE, "*")
    return text or "*"


def _kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


_VERBS = ("Create", "Describe", "Update", "Delete", "Stop", "Start", "List", "Add", "Put", "Get", "Search")


def sagemaker_resource(operation: str, params: dict[str, Any]) -> str:
    verb = next((v for v in _VERBS if operation.startswith(v)), "")
    entity = operation[len(verb):]
    if verb in ("List", "Search") or not entity:
        return "*"
    # The resource is the longest leading part of the noun the request names: UpdateEndpointWeightsAndCapacities
    # → EndpointName, ListTrainingJobsForHyperParameterTuningJob → (none).
    words = re.findall(r"[A-Z][a-z0-9]*", entity)
    for end in range(len(words), 0, -1):
        candidate = "".join(words[:end])
        for name_of in (candidate, candidate[:-1] if candidate.endswith("s") else None):
            if name_of and (f"{name_of}Name" in params or f"{name_of}Arn" in params):
                entity = name_of
                break
        else:
            continue
        break
    name = params.get(f"{entity}Name", params.get(f"{entity}Arn"))
    if isinstance(name, str) and name.startswith("arn:"):
        return _arnish(name)
    if entity == "ModelPackage" and name is None and isinstance(params.get("ModelPackageGroupName"), str):
        return STACK.arn("sagemaker", f"model-package/{_arnish(params['ModelPackageGroupName']).lower()}/*")
    resource = _arnish(name).lower() if name is not None else "*"
    return STACK.arn("sagemaker", f"{_kebab(entity)}/{resource}")


def _role_arns(value: Any) -> list[str]:
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("RoleArn") and isinstance(item, str):
                found.append(_arnish(item))
            else:
                found += _role_arns(item)
    elif isinstance(value, list):
        for item in value:
            found += _role_arns(item)
    return found


def _encrypted_target(project: Project, arn: str, kind: str) -> str | None:
    """The KMS key ARN of the template's topic/queue that `arn` names, when it has KmsMasterKeyId."""
    for logical_id, resource in project.resources.items():
        if resource.get("Type") != kind:
            continue
        try:
            names = {str(project.resolver.ref(logical_id))}
            if kind == "AWS::SQS::Queue":
                names.add(str(project.resolver.get_att(logical_id, "Arn")))
        except tpl.TemplateError:
            continue
        if arn not in names:
            continue
        key = (resource.get("Properties") or {}).get("KmsMasterKeyId")
        if key is None:
            return None
        target = _ref_target(key)
        if target and project.resources.get(target, {}).get("Type") == "AWS::KMS::Key":
            return str(project.resolver.get_att(target, "Arn"))
        try:
            text = str(project.resolver.resolve(key))
        except tpl.TemplateError:
            return "*"
        if text.startswith("alias/aws/"):
            return None  # the AWS managed key: its key policy lets the account's principals use it through the service
        return text if text.startswith("arn:") else STACK.arn("kms", text if text.startswith("alias/") else f"key/{text}")
    return None


def task_needs(project: Project, machine: Machine, state: dict[str, Any], params: Any, why: str) -> list[Need]:
    integ = integration(state.get("Resource"))
    params = params if isinstance(params, dict) else {}
    needs: list[Need] = []

    def need(action: str, resource: str) -> None:
        needs.append(Need(action, resource, why))

    if integ.kind == "lambda-arn":
        need("lambda:InvokeFunction", _arnish(state.get("Resource")))
        return needs
    if integ.kind not in ("optimized", "aws-sdk"):
        return needs
    service = boto_service(integ.service)
    operation = integ.action[0].upper() + integ.action[1:]
    from sagestep.aws import service_model as awsmodel

    try:
        op_model = awsmodel.operation_model(service, integ.action)
        operation = op_model.name
        prefix = iam_prefix(op_model.service_model.signing_name or service)
    except Exception:
        prefix = service
    actions = IAM_ACTION.get((service, operation), [f"{prefix}:{operation}"])
    if service == "sagemaker":
        resource = sagemaker_resource(operation, params)
        for action in actions:
            need(action, resource)
        if integ.pattern.startswith(".sync") and operation.startswith("Create"):
            need(f"sagemaker:Describe{operation[6:]}", resource)
            need(f"sagemaker:Stop{operation[6:]}", resource)
        if params.get("Tags") and operation.startswith("Create"):
            need("sagemaker:AddTags", resource)
    elif service == "lambda" and operation == "Invoke":
        function = _arnish(params.get("FunctionName", "*"))
        if not function.startswith("arn:") and function != "*":
            function = STACK.arn("lambda", f"function:{function}")
        if isinstance(params.get("Qualifier"), str):
            function = f"{function}:{_arnish(params['Qualifier'])}"
        need("lambda:InvokeFunction", function)
    elif service == "sns" and operation == "Publish":
        topic = _arnish(params.get("TopicArn", params.get("TargetArn", "*")))
        need("sns:Publish", topic)
        key = _encrypted_target(project, topic, "AWS::SNS::Topic")
        if key:
            need("kms:GenerateDataKey", key)
            need("kms:Decrypt", key)
    elif service == "sqs" and operation == "SendMessage":
        url = _arnish(params.get("QueueUrl", "*"))
        match = re.match(r"https://sqs\.([^.]+)\.amazonaws\.com/(\d+)/(.+)$", url)
        queue = f"arn:{STACK.partition}:sqs:{match.group(1)}:{match.group(2)}:{match.group(3)}" if match else "*"
        need("sqs:SendMessage", queue)
        key = _encrypted_target(project, queue, "AWS::SQS::Queue")
        if key:
            need("kms:GenerateDataKey", key)
            need("kms:Decrypt", key)
    elif service == "stepfunctions" and operation == "StartExecution":
        target = _arnish(params.get("StateMachineArn", "*"))
        need("states:StartExecution", target)
        if integ.pattern.startswith(".sync"):
            name = target.split(":")[-1] if target.startswith("arn:") else "*"
            execution = STACK.arn("states", f"execution:{name}:*")
            need("states:DescribeExecution", execution)
            need("states:StopExecution", execution)
    elif service == "dynamodb" and isinstance(params.get("TableName"), str):
        for action in actions:
            need(action, STACK.arn("dynamodb", f"table/{_arnish(params['TableName'])}"))
    elif service == "s3" and isinstance(params.get("Bucket"), str):
        bucket = _arnish(params["Bucket"])
        key = params.get("Key")
        for action in actions:
            need(action, f"arn:{STACK.partition}:s3:::{bucket}" + (f"/{_arnish(key)}" if isinstance(key, str) and action != "s3:ListBucket" else ""))
    else:
        for action in actions:
            need(action, "*")
    for role_arn in _role_arns(params):
        need("iam:PassRole", role_arn)
    rule = SYNC_RULES.get((integ.service, integ.action)) if integ.pattern.startswith(".sync") else None
    if rule:
        for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
            need(action, STACK.arn("events", f"rule/{rule}"))
    return needs


def machine_needs(project: Project, machine: Machine) -> list[Need]:
    if machine.definition is None:
        return []
    params_by_path: dict[tuple[str, ...], list[Any]] = {}
    for walk in flows.example_walks(machine):
        for visit in walk.walker.visits:
            params_by_path.setdefault(visit.path, []).append(visit.params if visit.has_params else visit.input)
    needs: list[Need] = []
    for path, state, _ in all_states(machine.definition):
        why = state_location(machine, path)
        if state.get("Type") == "Task":
            integ = integration(state.get("Resource"))
            label = f" ({integ.service}:{integ.action}{integ.pattern})" if integ.kind in ("optimized", "aws-sdk") else ""
            for params in params_by_path.get(path) or [state.get("Parameters") or {}]:
                needs += task_needs(project, machine, state, params, why + label)
        if state.get("Type") == "Map" and (state.get("ItemProcessor") or {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
            needs.append(Need("states:StartExecution", machine.arn, why + " (distributed Map)"))
            for action in ("states:DescribeExecution", "states:StopExecution"):
                needs.append(Need(action, STACK.arn("states", f"execution:{machine.name}/*"), why + " (distributed Map)"))
    props = project.resources[machine.logical_id].get("Properties") or {}
    if props.get("Logging"):
        for action in ("CreateLogDelivery", "GetLogDelivery", "UpdateLogDelivery", "DeleteLogDelivery",
                       "ListLogDeliveries", "PutResourcePolicy", "DescribeResourcePolicies", "DescribeLogGroups"):
            needs.append(Need(f"logs:{action}", "*", f"{machine.logical_id} Logging"))
    if (props.get("Tracing") or {}).get("Enabled") is True:
        for action in ("PutTraceSegments", "PutTelemetryRecords", "GetSamplingRules", "GetSamplingTargets"):
            needs.append(Need(f"xray:{action}", "*", f"{machine.logical_id} Tracing"))
    return needs


def function_needs(project: Project, function: Any) -> list[Need]:
    module, _, name = function.handler.rpartition(".")
    handler_file = function.code_dir.joinpath(*module.split(".")).with_suffix(".py")
    if not handler_file.is_file():
        return []
    calls = boto_scan.scan(handler_file, name, [function.code_dir, project.root / "src", project.root], project.root)
    needs = []
    for call in sorted(calls, key=lambda c: (c.service, c.operation, c.file, c.line)):
        try:
            from sagestep.aws import service_model as awsmodel

            prefix = iam_prefix(awsmodel.operation_model(call.service, call.operation).service_model.signing_name or call.service)
        except Exception:
            prefix = call.service
        for action in IAM_ACTION.get((call.service, call.operation), [f"{prefix}:{call.operation}"]):
            needs.append(Need(action, "*", f"{call.file}:{call.line} calls {call.service}.{call.operation}"))
    return needs


# ---------------------------------------------------------------------------------------------- the check


def _role_location(project: Project, role: Role, owner: str) -> str:
    if role.logical_id and role.logical_id in project.resources:
        return project.where(role.logical_id, "Properties", "Policies")
    return project.where(owner, "Properties", "Policies")


def coverage(project: Project, translated: dict[str, Any]) -> list[Finding]:
    resolver = ValidationResolver(translated, project.template_file)
    resources = translated.get("Resources") or {}
    findings: list[Finding] = []

    def judge(owner: str, role_value: Any, needs: list[Need], kind: str) -> None:
        if not needs:
            return
        role = role_policies(translated, resolver, role_value)
        if role.logical_id is None:
            findings.append(Finding(CHECK, project.template_file, project.where(owner),
                                    f"the {kind}'s role is not an AWS::IAM::Role of this template, so its grants cannot "
                                    f"be checked offline; define the role (or Policies) in the template"))
            return
        reported: set[tuple[str, str]] = set()
        for need in needs:
            if (need.action, need.resource) in reported or allowed(role.statements, need):
                continue
            reported.add((need.action, need.resource))
            note = f" (managed policies not readable offline: {', '.join(role.unreadable)})" if role.unreadable else ""
            shown_role = role.logical_id if role.logical_id in project.resources else f"{role.logical_id} (generated from {owner}.Policies)"
            findings.append(Finding(CHECK, project.template_file, _role_location(project, role, owner),
                                    f"{shown_role} does not grant {need.action} on {need.resource}, needed by {need.why}{note}"))

    for machine in project.machines:
        translated_machine = resources.get(machine.logical_id) or {}
        role_value = (translated_machine.get("Properties") or {}).get("RoleArn")
        judge(machine.logical_id, role_value, machine_needs(project, machine), "state machine")
    for function in project.functions:
        translated_function = resources.get(function.logical_id) or {}
        role_value = (translated_function.get("Properties") or {}).get("Role")
        judge(function.logical_id, role_value, function_needs(project, function), "function")
    return findings


# ---------------------------------------------------------------------------------------------- wildcards need a why


def _has_why(lines: list[str], line_index: int) -> bool:
    same = lines[line_index] if line_index < len(lines) else ""
    above = lines[line_index - 1].strip() if line_index > 0 else ""
    return "# why" in same or above.startswith("# why")


@functools.lru_cache(maxsize=1)
def _sam_policy_templates() -> dict[str, Any]:
    import samtranslator

    path = Path(samtranslator.__file__).parent / "policy_templates_data" / "policy_templates.json"
    return json.loads(path.read_text()).get("Templates", {})


def _scalar_values(node: yaml.Node) -> list[yaml.ScalarNode]:
    if isinstance(node, yaml.ScalarNode):
        return [node]
    if isinstance(node, yaml.SequenceNode):
        return [n for n in node.value if isinstance(n, yaml.ScalarNode)]
    return []


def _mapping(node: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    return {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)} if isinstance(node, yaml.MappingNode) else {}


def wildcards(project: Project) -> list[Finding]:
    lines = project.text.splitlines()
    findings: list[Finding] = []

    def report(node: yaml.Node, what: str) -> None:
        line = node.start_mark.line
        if _has_why(lines, line):
            return
        owner = project.resource_at_line(line + 1) or "template"
        findings.append(Finding(CHECK, project.template_file, f"{owner} (line {line + 1})",
                                f"{what} without a `# why: ...` comment on the same line or the line above"))

    def statement(node: yaml.Node) -> None:
        fields = _mapping(node)
        effect = fields.get("Effect", (None, None))[1]
        if not isinstance(effect, yaml.ScalarNode) or effect.value != "Allow":
            return
        for key in ("NotAction", "NotResource"):
            if key in fields:
                report(fields[key][0], f"an Allow statement with {key}")
        for value in _scalar_values(fields.get("Action", (None, None))[1]) if "Action" in fields else []:
            if "*" in value.value:
                report(value, f"an Allow statement grants the wildcard action {value.value!r}")
        for value in _scalar_values(fields.get("Resource", (None, None))[1]) if "Resource" in fields else []:
            if value.value == "*" and value.tag in ("tag:yaml.org,2002:str",):
                report(value, "an Allow statement grants Resource \"*\"")

    def visit(node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            fields = _mapping(node)
            if "Statement" in fields:
                statements = fields["Statement"][1]
                for item in statements.value if isinstance(statements, yaml.SequenceNode) else [statements]:
                    statement(item)
            for _, value in node.value:
                visit(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                visit(item)

    visit(project.nodes)
    templates = _sam_policy_templates()
    for logical_id, resource in project.resources.items():
        if not str(resource.get("Type", "")).startswith("AWS::Serverless::"):
            continue
        policies = project.node_at(["Resources", logical_id, "Properties", "Policies"])
        items = policies.value if isinstance(policies, yaml.SequenceNode) else [policies] if policies is not None else []
        for item in items:
            if isinstance(item, yaml.ScalarNode):
                if BROAD_MANAGED.search(item.value):
                    report(item, f"the managed policy {item.value} grants broad wildcards")
                continue
            for key, _ in _mapping(item).items():
                template = templates.get(key)
                if template is None:
                    continue
                for raw in _as_list((template.get("Definition") or {}).get("Statement") or []):
                    broad = any("*" in str(a) for a in _as_list(raw.get("Action", []))) or "*" in _as_list(raw.get("Resource", []))
                    if raw.get("Effect") == "Allow" and broad:
                        report(_mapping(item)[key][0], f"the SAM policy template {key} grants a wildcard action or Resource \"*\"")
                        break
    return findings


def check(project: Project, translated: dict[str, Any] | None) -> list[Finding]:
    findings = wildcards(project)
    if translated is not None:
        findings += coverage(project, translated)
    return findings
