"""What every check reads: the template (parsed, with line numbers, resolved with example values), its state
machines (definition, substitutions, sample inputs) and its functions, all discovered from template.yaml."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from sagestep.aws import codebundle
from sagestep.stack import template as tpl
from sagestep.validate.values import unknown


@dataclasses.dataclass(frozen=True)
class Finding:
    check: str  # template | asl | parameters | iam | naming | errors
    file: str
    location: str
    message: str

    def render(self) -> str:
        return f"{self.file}: {self.location}: {self.message}"


STACK = tpl.StackContext(stack_name="sagestep-validate")


class _NullS3:
    def put_object(self, **_: Any) -> dict[str, Any]:
        return {}


def _custom_attributes(resolver: tpl.Resolver, logical_id: str, attribute: str, props: dict[str, Any]) -> Any:
    """Example values for custom resources. CodeBundle's attributes are the ones `codebundle.publish` returns."""
    rtype = resolver.resources[logical_id].get("Type", "")
    if rtype == "Custom::CodeBundle":
        values = codebundle.publish(_NullS3(), str(props.get("BucketName", "example-bucket")),
                                    str(props.get("Prefix", "code")), [], git_commit="validate")
        if attribute not in values:
            raise tpl.TemplateError(
                f"!GetAtt {logical_id}.{attribute}: Custom::CodeBundle returns {', '.join(sorted(values))}"
            )
        return values[attribute]
    # Another custom resource: a value of the right flavour; its provider's Data is not known offline.
    if attribute.endswith("Arn"):
        return STACK.arn("custom", f"{logical_id}/{attribute}")
    if attribute.endswith("Uri"):
        return f"s3://example-bucket/{logical_id.lower()}/"
    return f"example-{logical_id.lower()}-{attribute.lower()}"


class ValidationResolver(tpl.Resolver):
    """The runtime's resolver, with example values for custom resources and an opaque stand-in for attributes of
    resource types the local runtime does not model (cfn-lint checks those attributes exist)."""

    def __init__(self, template: dict[str, Any], source: str) -> None:
        super().__init__(template, STACK, {}, custom_attributes=lambda l, a, p: _custom_attributes(self, l, a, p),
                         source=source)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        try:
            return super().get_att(logical_id, attribute)
        except tpl.TemplateError as exc:
            if logical_id in self.resources and "none known locally" in str(exc):
                return f"{{{{{logical_id}.{attribute}}}}}"
            raise


@dataclasses.dataclass
class Machine:
    logical_id: str
    file: str  # relative to the project root
    path: Path
    text: str
    definition: dict[str, Any] | None  # substituted with example values; None if it could not be built
    substitutions: dict[str, str]
    declared_substitutions: set[str]
    samples: list[tuple[str, Any]]  # (events/... file, execution input)
    name: str
    arn: str
    role_arn: str
    problems: list[Finding]


@dataclasses.dataclass
class Function:
    logical_id: str
    code_dir: Path
    handler: str


def snake(name: str) -> str:
    """`TrainingStateMachine` -> `training_state_machine`; an acronym is one word: `ABTestStateMachine` -> `ab_test_...`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Project:
    def __init__(self, template_path: Path) -> None:
        self.template_path = template_path.resolve()
        self.root = self.template_path.parent
        self.template_file = self.rel(self.template_path)
        self.text = self.template_path.read_text()
        self.document = tpl.load_template(self.template_path)
        self.resources: dict[str, dict[str, Any]] = self.document.get("Resources") or {}
        self.resolver = ValidationResolver(self.document, self.template_file)
        self.nodes = yaml.compose(self.text, Loader=tpl._CfnLoader)  # noqa: S506 - SafeLoader subclass

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    # -- line numbers in template.yaml

    def node_at(self, keys: list[Any], strict: bool = False) -> yaml.Node | None:
        """The node at the keys (strict), or the deepest node found along them."""
        node, found = self.nodes, None
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                match = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(key)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                match = node.value[key]
            else:
                match = None
            if match is None:
                return None if strict else found
            node = found = match
        return found

    def line_of(self, keys: list[Any]) -> int | None:
        node = self.node_at(keys)
        return node.start_mark.line + 1 if node is not None else None

    def resource_at_line(self, line: int) -> str | None:
        """The logical ID whose definition holds the line (or `Section.Key` outside Resources)."""
        if not isinstance(self.nodes, yaml.MappingNode):
            return None
        for section, body in self.nodes.value:
            if not (section.start_mark.line + 1 <= line <= body.end_mark.line) or not isinstance(body, yaml.MappingNode):
                continue
            for key, value in body.value:
                if key.start_mark.line + 1 <= line <= value.end_mark.line:
                    return key.value if section.value == "Resources" else f"{section.value}.{key.value}"
            return section.value
        return None

    def where(self, logical_id: str, *keys: Any) -> str:
        """'LogicalId.Properties.X (line N)', down to the deepest key that exists in template.yaml."""
        keys_found: list[Any] = []
        for key in keys:
            if self.node_at(["Resources", logical_id, *keys_found, key], strict=True) is None:
                break
            keys_found.append(key)
        line = self.line_of(["Resources", logical_id, *keys_found]) if logical_id in self.resources else None
        dotted = ".".join([logical_id, *[str(k) for k in keys_found]])
        return f"{dotted} (line {line})" if line else dotted

    # -- state machines and functions

    @functools.cached_property
    def machines(self) -> list[Machine]:
        machines = []
        for logical_id, resource in self.resources.items():
            if resource.get("Type") not in ("AWS::Serverless::StateMachine",):
                continue
            machines.append(self._machine(logical_id, resource.get("Properties") or {}))
        return machines

    def _machine(self, logical_id: str, props: dict[str, Any]) -> Machine:
        problems: list[Finding] = []
        uri = props.get("DefinitionUri")
        path = (self.root / uri) if isinstance(uri, str) else self.root / f"<{logical_id} has no DefinitionUri>"
        file = self.rel(path)
        text = ""
        if not isinstance(uri, str):
            problems.append(Finding("asl", self.template_file, self.where(logical_id, "Properties"),
                                    "needs DefinitionUri: statemachines/<name>.asl.json (an inline Definition cannot be checked)"))
        elif not path.is_file():
            problems.append(Finding("asl", self.template_file, self.where(logical_id, "Properties", "DefinitionUri"),
                                    f"DefinitionUri {uri} does not exist"))
        else:
            text = path.read_text()
        declared = props.get("DefinitionSubstitutions") or {}
        substitutions: dict[str, str] = {}
        for key, value in declared.items():
            try:
                resolved = self.resolver.resolve(value)
                substitutions[key] = resolved if isinstance(resolved, str) else json.dumps(resolved)
            except tpl.TemplateError as exc:
                problems.append(Finding("template", self.template_file,
                                        self.where(logical_id, "Properties", "DefinitionSubstitutions", key),
                                        f"{logical_id}: substitution {key}: {_strip_source(str(exc))}"))
                substitutions[key] = unknown("string", f"unresolved substitution {key}")  # no cascade of findings
        definition = None
        if text:
            filled = tpl._PLACEHOLDER.sub(lambda m: substitutions.get(m.group(1), m.group(0)), text)
            try:
                definition = json.loads(filled)
            except ValueError as exc:
                problems.append(Finding("asl", file, f"{logical_id}", f"not valid JSON once substituted: {exc}"))
            if definition is not None and not isinstance(definition, dict):
                problems.append(Finding("asl", file, logical_id, "the definition must be a JSON object"))
                definition = None
        name = arn = role_arn = ""
        try:
            name = self.resolver.physical_name(logical_id)
            arn = self.resolver.get_att(logical_id, "Arn")
        except tpl.TemplateError as exc:
            problems.append(Finding("template", self.template_file, self.where(logical_id), _strip_source(str(exc))))
            name, arn = logical_id, STACK.arn("states", f"stateMachine:{logical_id}")
        try:
            role_arn = str(self.resolver.resolve(props["Role"])) if "Role" in props else STACK.arn("iam", f"role/{logical_id}Role", region=False)
        except tpl.TemplateError as exc:
            problems.append(Finding("template", self.template_file, self.where(logical_id, "Properties", "Role"), _strip_source(str(exc))))
        return Machine(logical_id, file, path, text, definition, substitutions, set(declared),
                       self._samples(logical_id), name, arn, role_arn, problems)

    def _samples(self, logical_id: str) -> list[tuple[str, Any]]:
        """events/<snake_name>_<scenario>.json; a file goes to the machine with the longest matching name."""
        events = self.root / "events"
        if not events.is_dir():
            return []
        mine = snake(logical_id) + "_"
        others = [snake(m) + "_" for m, r in self.resources.items()
                  if r.get("Type") in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine") and m != logical_id]
        samples = []
        for path in sorted(events.glob(f"{mine}*.json")):
            if any(o.startswith(mine) and path.name.startswith(o) for o in others):
                continue
            try:
                samples.append((self.rel(path), json.loads(path.read_text())))
            except ValueError:
                continue
        return samples

    @functools.cached_property
    def functions(self) -> list[Function]:
        out = []
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != "AWS::Serverless::Function":
                continue
            props = tpl._merged_function_props(self.document, resource.get("Properties") or {})
            if isinstance(props.get("CodeUri"), str) and isinstance(props.get("Handler"), str):
                out.append(Function(logical_id, (self.root / props["CodeUri"]).resolve(), props["Handler"]))
        return out


def _strip_source(message: str) -> str:
    return re.sub(r"^[^:]*template[^:]*\.ya?ml: ", "", message)
