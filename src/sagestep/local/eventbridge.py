"""EventBridge, locally: the template's rules and schedules, evaluated on events shaped as AWS emits them.

- Event patterns: the whole documented language — exact values (strings, numbers, booleans, null, ""), prefix and
  suffix (with equals-ignore-case), equals-ignore-case, wildcard, anything-but (values, lists, prefix, suffix,
  equals-ignore-case, wildcard), numeric ranges, exists, cidr and `$or` — matched against arrays in events as AWS does
  (any element; arrays of objects "crushed"), and validated as PutRule validates (InvalidEventPatternException).
  moto has a matcher, but it matches `true` against `[1]`, ignores unknown operators and never matches arrays of
  objects (notes in the README), so this one follows the EventBridge user guide and event-ruler's rules.
- Target input: `Input`, `InputPath`, `InputTransformer` (InputPathsMap + InputTemplate, with the predefined
  `aws.events.*` variables and AWS's quoting rules), or the whole event.
- Schedules: `rate(...)` and `cron(...)` in AWS's syntax (cron through aws-croniter), in UTC.

Rules come from template.yaml: `AWS::Events::Rule`, `AWS::Scheduler::Schedule`, and the SAM `Events:` of state
machines (`Schedule`, `ScheduleV2`, `EventBridgeRule`, `CloudWatchEvent`).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_PATTERN_CHARS = 4096
MAX_OR_COMBINATIONS = 1000
_OPERATORS = {"prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric", "exists", "cidr"}
_NUMERIC_OPS = {"<", "<=", "=", ">=", ">"}


class InvalidEventPattern(ValueError):
    """The pattern is not one EventBridge accepts (PutRule answers InvalidEventPatternException)."""


# ---------------------------------------------------------------------------------------------------- patterns


def parse_pattern(pattern: Any, where: str = "EventPattern") -> dict[str, Any]:
    """A pattern as a dict, validated as PutRule validates it."""
    if isinstance(pattern, str):
        if len(pattern) > MAX_PATTERN_CHARS:
            raise InvalidEventPattern(f"{where}: longer than {MAX_PATTERN_CHARS} characters")
        try:
            pattern = json.loads(pattern)
        except json.JSONDecodeError as exc:
            raise InvalidEventPattern(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(pattern, dict):
        raise InvalidEventPattern(f"{where}: a pattern is a JSON object")
    if len(json.dumps(pattern)) > MAX_PATTERN_CHARS:
        raise InvalidEventPattern(f"{where}: longer than {MAX_PATTERN_CHARS} characters")
    _validate_object(pattern, where)
    if _or_combinations(pattern) > MAX_OR_COMBINATIONS:
        raise InvalidEventPattern(f"{where}: more than {MAX_OR_COMBINATIONS} $or combinations")
    return pattern


def _validate_object(pattern: Mapping[str, Any], where: str) -> None:
    if not pattern:
        raise InvalidEventPattern(f"{where}: Empty objects are not allowed")
    for key, value in pattern.items():
        path = f"{where}.{key}"
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, dict) for v in value):
                raise InvalidEventPattern(f"{path}: $or takes a list of at least two pattern objects")
            for i, branch in enumerate(value):
                _validate_object(branch, f"{path}[{i}]")
        elif isinstance(value, dict):
            _validate_object(value, path)
        elif isinstance(value, list):
            if not value:
                raise InvalidEventPattern(f"{path}: Empty arrays are not allowed")
            for item in value:
                _validate_leaf(item, path)
        else:
            raise InvalidEventPattern(f'{path}: "{key}" must be an object or an array')


def _validate_leaf(item: Any, path: str) -> None:
    if item is None or isinstance(item, (str, bool, int, float)):
        return
    if not isinstance(item, dict):
        raise InvalidEventPattern(f"{path}: Match value must be String, number, true, false, or null")
    if len(item) != 1:
        raise InvalidEventPattern(f"{path}: Only one key allowed in match expression")
    op, arg = next(iter(item.items()))
    if op not in _OPERATORS:
        raise InvalidEventPattern(f"{path}: Unrecognized match type {op}")
    if op in ("prefix", "suffix"):
        if not (isinstance(arg, str) or (isinstance(arg, dict) and list(arg) == ["equals-ignore-case"]
                                         and isinstance(arg["equals-ignore-case"], str))):
            raise InvalidEventPattern(f"{path}: {op} match pattern must be a string")
    elif op == "equals-ignore-case":
        if not isinstance(arg, str):
            raise InvalidEventPattern(f"{path}: equals-ignore-case match pattern must be a string")
    elif op == "wildcard":
        _validate_wildcard(arg, path)
    elif op == "exists":
        if not isinstance(arg, bool):
            raise InvalidEventPattern(f"{path}: exists match pattern must be either true or false")
    elif op == "cidr":
        try:
            ipaddress.ip_network(arg, strict=False)
        except (ValueError, TypeError):
            raise InvalidEventPattern(f"{path}: Malformed CIDR, one '/' required: {arg!r}") from None
    elif op == "numeric":
        _validate_numeric(arg, path)
    elif op == "anything-but":
        if isinstance(arg, list):
            if not arg or not (all(isinstance(v, str) for v in arg) or all(_is_number(v) for v in arg)):
                raise InvalidEventPattern(f"{path}: Inside anything but list, all values must be strings or all numbers")
        elif isinstance(arg, dict):
            if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
                raise InvalidEventPattern(f"{path}: Unsupported anything-but pattern: {json.dumps(arg)}")
            inner_op, inner = next(iter(arg.items()))
            values = inner if isinstance(inner, list) else [inner]
            if not values or not all(isinstance(v, str) for v in values):
                raise InvalidEventPattern(f"{path}: anything-but {inner_op} takes a string or a list of strings")
            if inner_op == "wildcard":
                for value in values:
                    _validate_wildcard(value, path)
        elif not (isinstance(arg, str) or _is_number(arg)):
            raise InvalidEventPattern(f"{path}: anything-but takes a string, a number, a list or a prefix/suffix object")


def _validate_wildcard(arg: Any, path: str) -> None:
    if not isinstance(arg, str):
        raise InvalidEventPattern(f"{path}: wildcard match pattern must be a string")
    if "**" in arg:
        raise InvalidEventPattern(f"{path}: Consecutive wildcard characters at pos {arg.index('**') + 1}")
    if re.search(r"\\(?![*\\])", arg):
        raise InvalidEventPattern(f"{path}: Invalid escape character in wildcard pattern {arg!r}")


def _validate_numeric(arg: Any, path: str) -> None:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise InvalidEventPattern(f"{path}: numeric takes one or two operator/value pairs")
    pairs = [(arg[i], arg[i + 1]) for i in range(0, len(arg), 2)]
    for op, value in pairs:
        if op not in _NUMERIC_OPS or not _is_number(value):
            raise InvalidEventPattern(f"{path}: Unrecognized numeric range operator or value: {op!r} {value!r}")
    if len(pairs) == 2:
        (low_op, low), (high_op, high) = pairs
        if low_op not in (">", ">=") or high_op not in ("<", "<="):
            raise InvalidEventPattern(f"{path}: a numeric range is a > or >= bound then a < or <= bound")
        if not low < high:
            raise InvalidEventPattern(f"{path}: Bottom must be less than top")
    elif pairs[0][0] == "=" and len(arg) != 2:
        raise InvalidEventPattern(f"{path}: = takes one value")


def _or_combinations(pattern: Mapping[str, Any]) -> int:
    total = 1
    for key, value in pattern.items():
        if key == "$or":
            total *= sum(_or_combinations(branch) for branch in value)
        elif isinstance(value, dict):
            total *= _or_combinations(value)
    return total


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """Does `event` match the (validated) pattern?"""
    return _match_object(pattern, event if isinstance(event, dict) else {})


def _match_object(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    for key, spec in pattern.items():
        if key == "$or":
            if not any(_match_object(branch, event) for branch in spec):
                return False
            continue
        present = key in event
        value = event.get(key)
        if isinstance(spec, dict):
            objects = [v for v in _flatten(value) if isinstance(v, dict)] if present else []
            if not objects:
                objects = [{}]  # no object there: only exists:false (and anything absent-tolerant) can match
            if not any(_match_object(spec, obj) for obj in objects):
                return False
        else:
            leaves = [v for v in _flatten(value) if not isinstance(v, dict)] if present else []
            exists = present and bool(leaves) or (present and value is None)
            if not any(_match_leaf(item, leaves, exists) for item in spec):
                return False
    return True


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            out.extend(_flatten(item))
        return out
    return [value]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def _match_leaf(item: Any, leaves: list[Any], exists: bool) -> bool:
    if not isinstance(item, dict):
        return exists and any(_equal(item, leaf) for leaf in leaves)
    op, arg = next(iter(item.items()))
    if op == "exists":
        return exists if arg else not exists
    if not exists:
        return False
    if op == "anything-but":
        return any(_anything_but(arg, leaf) for leaf in leaves)
    return any(_operator(op, arg, leaf) for leaf in leaves)


def _operator(op: str, arg: Any, leaf: Any) -> bool:
    if op == "numeric":
        return _is_number(leaf) and all(_compare(arg[i], leaf, arg[i + 1]) for i in range(0, len(arg), 2))
    if op == "cidr":
        try:
            return isinstance(leaf, str) and ipaddress.ip_address(leaf) in ipaddress.ip_network(arg, strict=False)
        except ValueError:
            return False
    if not isinstance(leaf, str):
        return False
    if op in ("prefix", "suffix"):
        ignore_case = isinstance(arg, dict)
        text = arg["equals-ignore-case"] if ignore_case else arg
        subject, text = (leaf.casefold(), text.casefold()) if ignore_case else (leaf, text)
        return subject.startswith(text) if op == "prefix" else subject.endswith(text)
    if op == "equals-ignore-case":
        return leaf.casefold() == arg.casefold()
    if op == "wildcard":
        return _wildcard(arg, leaf)
    return False


def _anything_but(arg: Any, leaf: Any) -> bool:
    if isinstance(arg, dict):
        inner_op, inner = next(iter(arg.items()))
        values = inner if isinstance(inner, list) else [inner]
        return not any(_operator(inner_op, v, leaf) for v in values)
    values = arg if isinstance(arg, list) else [arg]
    return not any(_equal(v, leaf) for v in values)


def _compare(op: str, leaf: float, bound: float) -> bool:
    return {"<": leaf < bound, "<=": leaf <= bound, "=": leaf == bound, ">=": leaf >= bound, ">": leaf > bound}[op]


def _wildcard(pattern: str, text: str) -> bool:
    regex = "".join(".*" if part == "*" else re.escape(part.replace("\\*", "*").replace("\\\\", "\\"))
                    for part in re.split(r"(?<!\\)(\*)", pattern))
    return re.fullmatch(regex, text, flags=re.DOTALL) is not None


# ---------------------------------------------------------------------------------------------------- target input


class InputError(ValueError):
    """The target input cannot be built (the delivery fails, as the target would refuse it)."""


def json_path(document: Any, path: str) -> tuple[bool, Any]:
    """EventBridge JSONPath: `$`, `$.a.b`, `$.a[0]`, keys with hyphens. (found, value)."""
    if path == "$":
        return True, document
    if not path.startswith("$"):
        raise InputError(f"{path!r} is not a JSONPath starting with $")
    tokens = re.findall(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]", path[1:])
    if "".join(f".{a}" if a else f"[{b}]" if b else f"['{c}']" for a, b, c in tokens) != path[1:]:
        raise InputError(f"{path!r} is not a JSONPath EventBridge understands (dot notation and [n] indices)")
    current = document
    for name, index, quoted in tokens:
        key = name or quoted
        if key:
            if not isinstance(current, dict) or key not in current:
                return False, None
            current = current[key]
        else:
            if not isinstance(current, list) or int(index) >= len(current):
                return False, None
            current = current[int(index)]
    return True, current


def target_input(target: Mapping[str, Any], event: Mapping[str, Any], rule_name: str, rule_arn: str,
                 ingestion_time: str) -> str:
    """The input a target receives for `event`: Input, InputPath, InputTransformer, or the whole event."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath"):
        found, value = json_path(event, str(target["InputPath"]))
        return json.dumps(value if found else None)
    transformer = target.get("InputTransformer")
    if transformer:
        return transform(transformer, event, rule_name, rule_arn, ingestion_time)
    return json.dumps(event)


def transform(transformer: Mapping[str, Any], event: Mapping[str, Any], rule_name: str, rule_arn: str,
              ingestion_time: str) -> str:
    values: dict[str, Any] = {}
    for name, path in (transformer.get("InputPathsMap") or {}).items():
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", name) or name.startswith("AWS."):
            raise InputError(f"InputPathsMap key {name!r}: letters, digits, - and _ only, not starting with AWS.")
        found, value = json_path(event, str(path))
        if found:
            values[name] = value
    envelope = {k: v for k, v in event.items() if k != "detail"}
    values.update({"aws.events.rule-arn": rule_arn, "aws.events.rule-name": rule_name,
                   "aws.events.event.ingestion-time": ingestion_time, "aws.events.event": envelope,
                   "aws.events.event.json": dict(event)})
    template = str(transformer.get("InputTemplate", ""))
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        char = template[i]
        if char == "\\" and in_string:
            out.append(template[i:i + 2])
            i += 2
            continue
        if char == '"':
            in_string = not in_string
        if char == "<":
            end = template.find(">", i)
            name = template[i + 1:end] if end > i else ""
            if end > i and (name in values or name in (transformer.get("InputPathsMap") or {})):
                value = values.get(name, "")  # a path absent from the event gives an empty value
                if in_string:
                    out.append(value if isinstance(value, str) else json.dumps(value))
                else:
                    out.append(json.dumps(value))
                i = end + 1
                continue
        out.append(char)
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------------- schedules


class InvalidSchedule(ValueError):
    pass


_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")


def parse_schedule(expression: str) -> Any:
    """A callable next_fire(after: datetime) -> datetime for `rate(...)` / `cron(...)` (AWS syntax, UTC)."""
    expression = expression.strip()
    match = _RATE.fullmatch(expression)
    if match:
        value, unit = int(match.group(1)), match.group(2)
        if value < 1:
            raise InvalidSchedule(f"{expression}: the rate value must be a positive integer")
        if (value == 1) != (not unit.endswith("s")):
            raise InvalidSchedule(f"{expression}: use the singular unit for 1 and the plural for more "
                                  f"(rate(1 hour), rate(2 hours))")
        step = dt.timedelta(**{unit.rstrip("s") + "s": value})
        return lambda after: after + step
    if expression.startswith("cron(") and expression.endswith(")"):
        from aws_croniter import AwsCroniter

        body = expression[5:-1]
        try:
            cron = AwsCroniter(body)
        except Exception as exc:  # the library raises its own error classes
            raise InvalidSchedule(f"{expression}: {exc}") from None

        def next_fire(after: dt.datetime) -> dt.datetime:
            upcoming = cron.get_next(after.replace(second=0, microsecond=0), n=2)
            return next(t for t in upcoming if t > after)

        return next_fire
    if expression.startswith("at(") and expression.endswith(")"):
        when = dt.datetime.fromisoformat(expression[3:-1]).replace(tzinfo=dt.timezone.utc)
        return lambda after: when if when > after else None
    raise InvalidSchedule(f"{expression!r}: a schedule is rate(value unit), cron(min hour day month weekday year) or at(...)")


# ---------------------------------------------------------------------------------------------------- rules


@dataclass
class Target:
    arn: str
    id: str
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None
    retry_policy: dict[str, Any] = field(default_factory=dict)
    dead_letter_arn: str | None = None

    def as_mapping(self) -> dict[str, Any]:
        return {"Input": self.input, "InputPath": self.input_path, "InputTransformer": self.input_transformer}


@dataclass
class Rule:
    name: str
    logical_id: str
    arn: str
    enabled: bool
    targets: list[Target]
    pattern: dict[str, Any] | None = None
    schedule: str | None = None
    scheduler: bool = False  # EventBridge Scheduler (ScheduleV2): the target gets Input only, never an event
    source: str = ""  # where in template.yaml it is declared


def rules_from_template(resolver: Any, stack: Any) -> list[Rule]:
    """Every rule and schedule template.yaml declares, resolved (parameters, !Sub, !Ref, !GetAtt)."""
    rules: list[Rule] = []
    for logical_id, resource in resolver.resources.items():
        if not resolver.resource_enabled(logical_id):
            continue
        rtype = resource.get("Type")
        props = resolver.resolve(resource.get("Properties") or {})
        if rtype == "AWS::Events::Rule":
            name = str(props.get("Name") or f"{stack.stack_name}-{logical_id}")
            targets = [_target(t) for t in props.get("Targets") or []]
            rules.append(Rule(name, logical_id, stack.arn("events", f"rule/{name}"), props.get("State", "ENABLED") != "DISABLED",
                              targets, _pattern(props.get("EventPattern"), logical_id), props.get("ScheduleExpression"),
                              source=f"{logical_id}"))
        elif rtype == "AWS::Scheduler::Schedule":
            name = str(props.get("Name") or f"{stack.stack_name}-{logical_id}")
            target = props.get("Target") or {}
            rules.append(Rule(name, logical_id, stack.arn("scheduler", f"schedule/default/{name}"),
                              props.get("State", "ENABLED") != "DISABLED",
                              [Target(arn=str(target.get("Arn")), id="0", input=target.get("Input"),
                                      retry_policy=target.get("RetryPolicy") or {},
                                      dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"))],
                              schedule=props.get("ScheduleExpression"), scheduler=True, source=logical_id))
        elif rtype == "AWS::Serverless::StateMachine":
            machine_arn = stack.arn("states", f"stateMachine:{resolver.physical_name(logical_id)}")
            for event_name, event in (props.get("Events") or {}).items():
                rules.append(_sam_rule(logical_id, event_name, event, machine_arn, stack))
    return rules


def _pattern(pattern: Any, where: str) -> dict[str, Any] | None:
    return parse_pattern(pattern, f"{where}.EventPattern") if pattern is not None else None


def _target(target: Mapping[str, Any]) -> Target:
    return Target(arn=str(target.get("Arn")), id=str(target.get("Id", "0")), input=target.get("Input"),
                  input_path=target.get("InputPath"), input_transformer=target.get("InputTransformer"),
                  retry_policy=target.get("RetryPolicy") or {},
                  dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"))


def _sam_rule(logical_id: str, event_name: str, event: Mapping[str, Any], machine_arn: str, stack: Any) -> Rule:
    kind = event.get("Type")
    props = event.get("Properties") or {}
    rule_logical = f"{logical_id}{event_name}"
    name = str(props.get("Name") or f"{stack.stack_name}-{rule_logical}")
    where = f"{logical_id}.Events.{event_name}"
    target = Target(arn=machine_arn, id=str((props.get("Target") or {}).get("Id") or f"{rule_logical}StepFunctionsTarget"),
                    input=props.get("Input"), input_path=props.get("InputPath"),
                    input_transformer=props.get("InputTransformer"), retry_policy=props.get("RetryPolicy") or {},
                    dead_letter_arn=(props.get("DeadLetterConfig") or {}).get("Arn"))
    state = props.get("State")
    enabled = state != "DISABLED" if state is not None else props.get("Enabled", True) is not False
    if kind == "Schedule":
        return Rule(name, rule_logical, stack.arn("events", f"rule/{name}"), enabled, [target], schedule=props.get("Schedule"),
                    source=where)
    if kind == "ScheduleV2":
        return Rule(name, rule_logical, stack.arn("scheduler", f"schedule/default/{name}"), enabled, [target],
                    schedule=props.get("ScheduleExpression"), scheduler=True, source=where)
    if kind in ("EventBridgeRule", "CloudWatchEvent"):
        return Rule(name, rule_logical, stack.arn("events", f"rule/{name}"), enabled, [target],
                    _pattern(props.get("Pattern"), where), source=where)
    raise InvalidEventPattern(f"template.yaml {where}: event type {kind!r} has no local EventBridge equivalent")


def matching_rules(rules: list[Rule], event: Mapping[str, Any]) -> Iterator[Rule]:
    for rule in rules:
        if rule.pattern is not None and matches(rule.pattern, event):
            yield rule


def aws_time(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
