"""Read the SAM template and resolve its intrinsic functions to the names and ARNs a stack would have.

The same resolution serves the local runtime (which bucket a `!Ref` means, which handler a function ARN calls,
what each `${Substitution}` of a state machine becomes) and `sagestep validate` (which resolves with example
values). Resolution is strict: an unknown resource, attribute or parameter is an error naming it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml


class TemplateError(ValueError):
    """A problem in template.yaml or in the values given for its parameters."""


# ---------------------------------------------------------------------------------------------- loading


class _CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when PyYAML has it: 10x faster
    pass


_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "Sub": "Fn::Sub",
    "GetAtt": "Fn::GetAtt",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "Base64": "Fn::Base64",
    "ImportValue": "Fn::ImportValue",
    "GetAZs": "Fn::GetAZs",
}


def _make_constructor(full_name: str) -> Callable[[yaml.Loader, yaml.Node], Any]:
    def construct(loader: yaml.Loader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if full_name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {full_name: value}

    return construct


for _tag, _name in _SHORT_TAGS.items():
    _CfnLoader.add_constructor(f"!{_tag}", _make_constructor(_name))


def load_template(path: Path) -> dict[str, Any]:
    try:
        document = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    except FileNotFoundError as exc:
        raise TemplateError(f"{path}: template not found; run from the project root or pass --template") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path}: a SAM template needs a top-level Resources section")
    return document


# ---------------------------------------------------------------------------------------------- naming


@dataclasses.dataclass(frozen=True)
class StackContext:
    stack_name: str
    account_id: str = "123456789012"
    region: str = "us-east-1"
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )


def _physical_name(logical_id: str, props: Mapping[str, Any], key: str | None, stack: StackContext) -> str:
    if key and isinstance(props.get(key), str):
        return props[key]
    return f"{stack.stack_name}-{logical_id}"


# ---------------------------------------------------------------------------------------------- resolving


class Resolver:
    """Evaluates CloudFormation intrinsics over one template for one set of parameter values."""

    def __init__(
        self,
        template: dict[str, Any],
        stack: StackContext,
        parameter_overrides: Mapping[str, str] | None = None,
        custom_attributes: Callable[[str, str, dict[str, Any]], Any] | None = None,
        source: str = "template.yaml",
    ) -> None:
        self.template = template
        self.stack = stack
        self.source = source
        self.resources: dict[str, dict[str, Any]] = template.get("Resources") or {}
        self._custom_attributes = custom_attributes
        self.parameters = self._parameter_values(parameter_overrides or {})
        self._conditions: dict[str, bool] = {}

    # -- parameters and conditions

    def _parameter_values(self, overrides: Mapping[str, str]) -> dict[str, str]:
        declared: dict[str, Any] = self.template.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(
                f"{self.source}: parameter override(s) {', '.join(unknown)} are not declared under Parameters; "
                f"declared: {', '.join(sorted(declared))}"
            )
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                value = str(overrides[name])
            elif "Default" in spec:
                value = str(spec["Default"])
            else:
                raise TemplateError(
                    f"{self.source}: parameter {name} has no Default; pass it with --parameter-overrides {name}=VALUE"
                )
            allowed = spec.get("AllowedValues")
            if allowed is not None and value not in [str(v) for v in allowed]:
                raise TemplateError(
                    f"{self.source}: parameter {name}={value!r} is not one of its AllowedValues {allowed}"
                )
            values[name] = value
        return values

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"{self.source}: condition {name!r} is used but not defined under Conditions")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return True if condition is None else self.condition(condition)

    # -- intrinsics

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value if v != {"Ref": "AWS::NoValue"}]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
        return {k: self.resolve(v) for k, v in value.items() if v != {"Ref": "AWS::NoValue"}}

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.stack.account_id,
            "AWS::Region": self.stack.region,
            "AWS::Partition": self.stack.partition,
            "AWS::StackName": self.stack.stack_name,
            "AWS::StackId": self.stack.arn("cloudformation", f"stack/{self.stack.stack_name}/local"),
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self._resource_ref(name)
        raise TemplateError(f"{self.source}: !Ref {name}: no parameter, resource or pseudo parameter has that name")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.resources:
            raise TemplateError(f"{self.source}: !GetAtt {logical_id}.{attribute}: resource {logical_id} is not defined")
        resource = self.resources[logical_id]
        rtype = resource.get("Type", "")
        props = resource.get("Properties") or {}
        name = self.physical_name(logical_id)
        s = self.stack
        table: dict[str, dict[str, Callable[[], Any]]] = {
            "AWS::S3::Bucket": {
                "Arn": lambda: f"arn:{s.partition}:s3:::{name}",
                "DomainName": lambda: f"{name}.s3.amazonaws.com",
            },
            "AWS::SNS::Topic": {"TopicArn": lambda: s.arn("sns", name), "TopicName": lambda: name},
            "AWS::IAM::Role": {"Arn": lambda: s.arn("iam", f"role/{name}", region=False), "RoleId": lambda: name},
            "AWS::Serverless::Function": {"Arn": lambda: s.arn("lambda", f"function:{name}")},
            "AWS::Lambda::Function": {"Arn": lambda: s.arn("lambda", f"function:{name}")},
            "AWS::Serverless::StateMachine": {
                "Arn": lambda: s.arn("states", f"stateMachine:{name}"),
                "Name": lambda: name,
            },
            "AWS::StepFunctions::StateMachine": {
                "Arn": lambda: s.arn("states", f"stateMachine:{name}"),
                "Name": lambda: name,
            },
            "AWS::SageMaker::ModelPackageGroup": {
                "ModelPackageGroupArn": lambda: s.arn("sagemaker", f"model-package-group/{name.lower()}"),
            },
            "AWS::KMS::Key": {"Arn": lambda: s.arn("kms", f"key/{name}"), "KeyId": lambda: name},
            "AWS::Events::Rule": {"Arn": lambda: s.arn("events", f"rule/{name}")},
            "AWS::CloudWatch::Alarm": {"Arn": lambda: s.arn("cloudwatch", f"alarm:{name}")},
            "AWS::Logs::LogGroup": {"Arn": lambda: s.arn("logs", f"log-group:{name}:*")},
            "AWS::Scheduler::Schedule": {"Arn": lambda: s.arn("scheduler", f"schedule/default/{name}")},
        }
        if rtype.startswith("Custom::") or rtype == "AWS::CloudFormation::CustomResource":
            if self._custom_attributes is None:
                raise TemplateError(
                    f"{self.source}: !GetAtt {logical_id}.{attribute}: custom resource {rtype} has no local provider"
                )
            return self._custom_attributes(logical_id, attribute, self.resolve(props))
        getter = table.get(rtype, {}).get(attribute)
        if getter is None:
            known = ", ".join(sorted(table.get(rtype, {}))) or "none known locally"
            raise TemplateError(
                f"{self.source}: !GetAtt {logical_id}.{attribute}: {rtype} has no attribute {attribute!r} "
                f"(attributes: {known})"
            )
        return getter()

    def physical_name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        rtype = resource.get("Type", "")
        props = resource.get("Properties") or {}
        key = _NAME_PROPERTY.get(rtype)
        if key and key in props:
            return str(self.resolve(props[key]))
        name = _physical_name(logical_id, props, None, self.stack)
        if rtype == "AWS::S3::Bucket":
            name = name.lower()[:63]
        return name

    def _resource_ref(self, logical_id: str) -> Any:
        rtype = self.resources[logical_id].get("Type", "")
        name = self.physical_name(logical_id)
        if rtype in ("AWS::SNS::Topic",):
            return self.get_att(logical_id, "TopicArn")
        if rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return self.get_att(logical_id, "Arn")
        if rtype == "AWS::SageMaker::ModelPackageGroup":
            return self.get_att(logical_id, "ModelPackageGroupArn")
        if rtype in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            return self.stack.arn("lambda", f"layer:{name}:1")
        return name

    def sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr and expr.split(".", 1)[0] in self.resources:
                logical_id, attribute = expr.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


_NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SageMaker::ModelPackageGroup": "ModelPackageGroupName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Events::Rule": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
}


def _get_att(resolver: Resolver, arg: Any) -> Any:
    logical_id, attribute = resolver.resolve(arg) if isinstance(arg, list) else arg.split(".", 1)
    return resolver.get_att(logical_id, attribute)


def _join(resolver: Resolver, arg: Any) -> str:
    delimiter, items = arg
    return str(delimiter).join(str(i) for i in resolver.resolve(items))


def _if(resolver: Resolver, arg: Any) -> Any:
    name, when_true, when_false = arg
    return resolver.resolve(when_true if resolver.condition(name) else when_false)


def _find_in_map(resolver: Resolver, arg: Any) -> Any:
    map_name, top, second = (resolver.resolve(a) for a in arg)
    try:
        return resolver.template["Mappings"][map_name][top][second]
    except KeyError as exc:
        raise TemplateError(f"{resolver.source}: !FindInMap [{map_name}, {top}, {second}] has no value") from exc


_INTRINSICS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": lambda r, a: r.ref(a),
    "Fn::GetAtt": _get_att,
    "Fn::Sub": lambda r, a: r.sub(a),
    "Fn::Join": _join,
    "Fn::If": _if,
    "Fn::Equals": lambda r, a: str(r.resolve(a[0])) == str(r.resolve(a[1])),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(x) for x in a),
    "Fn::Or": lambda r, a: any(r.resolve(x) for x in a),
    "Condition": lambda r, a: r.condition(a),
    "Fn::Select": lambda r, a: r.resolve(a[1])[int(r.resolve(a[0]))],
    "Fn::Split": lambda r, a: str(r.resolve(a[1])).split(a[0]),
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": lambda r, a: r.resolve(a),
}


# ---------------------------------------------------------------------------------------------- views


@dataclasses.dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout_seconds: int = 3  # Lambda's defaults when the template sets none
    memory_mb: int = 128


@dataclasses.dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    name: str
    arn: str
    definition_path: Path
    substitutions: dict[str, str]


def _merged_function_props(template: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    merged = dict(((template.get("Globals") or {}).get("Function") or {}))
    for key, value in props.items():
        if key == "Environment" and "Environment" in merged:
            variables = dict((merged["Environment"] or {}).get("Variables") or {})
            variables.update((value or {}).get("Variables") or {})
            merged["Environment"] = {"Variables": variables}
        else:
            merged[key] = value
    return merged


def functions(resolver: Resolver, root: Path) -> dict[str, FunctionSpec]:
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in resolver.resources.items():
        if resource.get("Type") != "AWS::Serverless::Function" or not resolver.resource_enabled(logical_id):
            continue
        props = _merged_function_props(resolver.template, resource.get("Properties") or {})
        code_uri = props.get("CodeUri")
        handler = props.get("Handler")
        if not isinstance(code_uri, str) or not isinstance(handler, str):
            raise TemplateError(f"{resolver.source}: {logical_id} needs a local CodeUri directory and a Handler")
        environment = resolver.resolve(((props.get("Environment") or {}).get("Variables")) or {})
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=resolver.physical_name(logical_id),
            arn=resolver.get_att(logical_id, "Arn"),
            code_dir=(root / code_uri).resolve(),
            handler=handler,
            environment={k: _as_env_string(v) for k, v in environment.items()},
            timeout_seconds=int(resolver.resolve(props.get("Timeout", 3))),
            memory_mb=int(resolver.resolve(props.get("MemorySize", 128))),
        )
    return specs


def _as_env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def state_machines(resolver: Resolver, root: Path) -> dict[str, StateMachineSpec]:
    specs: dict[str, StateMachineSpec] = {}
    for logical_id, resource in resolver.resources.items():
        if resource.get("Type") != "AWS::Serverless::StateMachine" or not resolver.resource_enabled(logical_id):
            continue
        props = resource.get("Properties") or {}
        definition_uri = props.get("DefinitionUri")
        if not isinstance(definition_uri, str):
            raise TemplateError(f"{resolver.source}: {logical_id} needs DefinitionUri pointing at statemachines/*.asl.json")
        substitutions = {
            key: str(resolver.resolve(value)) for key, value in (props.get("DefinitionSubstitutions") or {}).items()
        }
        specs[logical_id] = StateMachineSpec(
            logical_id=logical_id,
            name=resolver.physical_name(logical_id),
            arn=resolver.get_att(logical_id, "Arn"),
            definition_path=(root / definition_uri).resolve(),
            substitutions=substitutions,
        )
    return specs


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def substitute(definition_text: str, substitutions: Mapping[str, str], source: str) -> str:
    """Fill `${Name}` placeholders as Step Functions does at deploy time; an unfilled one is an error."""
    missing = sorted(set(_PLACEHOLDER.findall(definition_text)) - set(substitutions))
    if missing:
        raise TemplateError(f"{source}: placeholders {', '.join(missing)} have no DefinitionSubstitutions entry")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], definition_text)


def placeholders(definition_text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(definition_text))
