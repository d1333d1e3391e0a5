"""Evaluate ASL data flow statically: JSONPath, intrinsic functions, JSONata, and a walk through every state.

The walk follows every transition (all Choice branches, every Catch) from StartAt, carrying a best-effort input:
the sample execution input at the start, then what each state would output. What the service would return is built
from botocore's output shape of the call (`.sync` SageMaker jobs: the Describe* output); a Lambda payload is
unknown. Unknown values are markers (see `values`), so what depends on them stays visibly unknown. Each state is
visited with at most `MAX_INPUTS_PER_STATE` distinct inputs, which bounds loops.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import jsonata
from jsonata import functions as jsonata_functions
from jsonata import utils as jsonata_utils

from sagestep.aws import service_model as awsmodel
from sagestep.validate.values import UnknownMap, describe, is_unknown, unknown, whole_marker, worst_length

MAX_INPUTS_PER_STATE = 6
MAX_SHAPE_DEPTH = 7


class EvalError(ValueError):
    """The expression itself is wrong (a syntax error, an unknown intrinsic): reported as a finding."""


class Missing(LookupError):
    """A JSONPath that does not exist in a known input: Step Functions fails the state with States.Runtime."""


# ---------------------------------------------------------------------------------------------- JSONPath

_TOKEN = re.compile(r"\.([A-Za-z0-9_\-@:$&/ ]+|\*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]|\[(\*)\]")


def _path_tokens(path: str) -> list[Any] | None:
    """`$.a.b[0]['c d']` → ['a', 'b', 0, 'c d']; None for what this evaluator does not handle (filters, `..`)."""
    rest = path[1:]
    tokens: list[Any] = []
    pos = 0
    while pos < len(rest):
        if rest.startswith("..", pos):
            return None
        match = _TOKEN.match(rest, pos)
        if not match:
            return None
        name, index, quoted, dquoted, star = match.groups()
        if index is not None:
            tokens.append(int(index))
        elif star or name == "*":
            tokens.append("*")
        else:
            tokens.append(name if name is not None else (quoted if quoted is not None else dquoted))
        pos = match.end()
    return tokens


def get_path(path: str, data: Any, context: dict[str, Any], variables: dict[str, Any]) -> Any:
    path = path.strip()
    if path.startswith("$$"):
        root, expr = context, path[1:]
    elif path.startswith("$") and len(path) > 1 and (path[1].isalpha() or path[1] == "_"):
        name = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", path).group(1)  # type: ignore[union-attr]
        if name not in variables:
            raise Missing(f"variable ${name} is not assigned before this state")
        root, expr = variables[name], "$" + path[1 + len(name):]
    elif path.startswith("$"):
        root, expr = data, path
    else:
        raise EvalError(f"{path!r} is not a JSONPath (it must start with $)")
    tokens = _path_tokens(expr)
    if tokens is None:
        return unknown("any", path)
    return _walk_tokens(root, tokens, path)


def _walk_tokens(value: Any, tokens: list[Any], path: str) -> Any:
    for position, token in enumerate(tokens):
        if whole_marker(value) is not None or (isinstance(value, UnknownMap) and token not in value):
            return unknown("any", path)
        if token == "*":
            if isinstance(value, list):
                return [_walk_tokens(v, tokens[position + 1:], path) for v in value]
            if isinstance(value, dict):
                return [_walk_tokens(v, tokens[position + 1:], path) for v in value.values()]
            raise Missing(f"{path}: [*] applied to a {type(value).__name__}")
        if isinstance(token, int):
            if not isinstance(value, list):
                raise Missing(f"{path}: index [{token}] applied to a {type(value).__name__}, not a list")
            if token >= len(value):
                raise Missing(f"{path}: index [{token}] is past the end of a list of {len(value)}")
            value = value[token]
        else:
            if not isinstance(value, dict):
                raise Missing(f"{path}: field {token!r} looked up in a {type(value).__name__}, not an object")
            if token not in value:
                raise Missing(f"{path}: field {token!r} is not in the input (fields: {', '.join(sorted(map(str, value))) or 'none'})")
            value = value[token]
    return value


def set_path(data: Any, path: str | None, value: Any) -> Any:
    """ResultPath semantics: `$` replaces, `$.a.b` sets (creating objects), None discards the result."""
    if path is None:
        return data
    tokens = _path_tokens(path)
    if not tokens:
        return value
    if whole_marker(data) is not None:
        data = UnknownMap()  # the unknown input keeps its other (unknown) fields
    out = copy.deepcopy(data) if isinstance(data, dict) else {}
    cursor = out
    for token in tokens[:-1]:
        nxt = cursor.get(token) if isinstance(cursor, dict) else None
        if whole_marker(nxt) is not None or (nxt is None and isinstance(cursor, UnknownMap)):
            nxt = UnknownMap()
            cursor[token] = nxt
        elif not isinstance(nxt, dict):
            nxt = {}
            cursor[token] = nxt
        cursor = nxt
    cursor[tokens[-1]] = value
    return out


# ---------------------------------------------------------------------------------------------- intrinsics


@dataclasses.dataclass
class Call:
    name: str
    args: list[Any]  # Literal | PathRef | Call


@dataclasses.dataclass
class Literal:
    value: Any


@dataclasses.dataclass
class PathRef:
    path: str


def parse_intrinsic(text: str) -> Call:
    parser = _IntrinsicParser(text)
    call = parser.call()
    parser.skip_space()
    if parser.pos != len(text):
        raise EvalError(f"{text!r}: unexpected text after the call at position {parser.pos}")
    return call


class _IntrinsicParser:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def call(self) -> Call:
        self.skip_space()
        match = re.compile(r"States\.[A-Za-z0-9]+").match(self.text, self.pos)
        if not match:
            raise EvalError(f"{self.text!r}: expected an intrinsic function (States.Name) at position {self.pos}")
        name = match.group(0)
        self.pos = match.end()
        self.skip_space()
        if self.pos >= len(self.text) or self.text[self.pos] != "(":
            raise EvalError(f"{self.text!r}: {name} needs '('")
        self.pos += 1
        args: list[Any] = []
        self.skip_space()
        if self.pos < len(self.text) and self.text[self.pos] == ")":
            self.pos += 1
            return Call(name, args)
        while True:
            args.append(self.argument())
            self.skip_space()
            if self.pos >= len(self.text):
                raise EvalError(f"{self.text!r}: unclosed call to {name}")
            if self.text[self.pos] == ",":
                self.pos += 1
                continue
            if self.text[self.pos] == ")":
                self.pos += 1
                return Call(name, args)
            raise EvalError(f"{self.text!r}: expected ',' or ')' at position {self.pos}")

    def argument(self) -> Any:
        self.skip_space()
        text, pos = self.text, self.pos
        if text.startswith("States.", pos):
            return self.call()
        if pos < len(text) and text[pos] == "'":
            out, pos = [], pos + 1
            while pos < len(text) and text[pos] != "'":
                if text[pos] == "\\" and pos + 1 < len(text):
                    out.append(text[pos:pos + 2])  # keep escapes: States.Format gives \{ \} their meaning
                    pos += 2
                else:
                    out.append(text[pos])
                    pos += 1
            if pos >= len(text):
                raise EvalError(f"{text!r}: unterminated string")
            self.pos = pos + 1
            return Literal("".join(out))
        if pos < len(text) and text[pos] == "$":
            depth, quote, start = 0, None, pos
            while pos < len(text):
                ch = text[pos]
                if quote:
                    quote = None if ch == quote else quote
                elif ch in "'\"":
                    quote = ch
                elif ch in "[(":
                    depth += 1
                elif ch in "])":
                    if depth == 0:
                        break
                    depth -= 1
                elif ch == "," and depth == 0:
                    break
                pos += 1
            self.pos = pos
            return PathRef(text[start:pos].strip())
        match = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null").match(text, pos)
        if match:
            self.pos = match.end()
            return Literal(json.loads(match.group(0)))
        raise EvalError(f"{text!r}: cannot read an argument at position {pos}")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _format(template: str, values: list[Any]) -> str:
    out, index, pos = [], 0, 0
    while pos < len(template):
        if template[pos] == "\\" and pos + 1 < len(template):
            out.append(template[pos + 1])
            pos += 2
        elif template.startswith("{}", pos):
            if index >= len(values):
                raise EvalError(f"States.Format: more {{}} than arguments in {template!r}")
            value = values[index]
            if isinstance(value, (dict, list)) and not isinstance(value, UnknownMap):
                raise EvalError("States.Format: arguments must be strings, numbers, booleans or null, not objects or arrays")
            out.append(value if isinstance(value, str) else json.dumps(value))
            index += 1
            pos += 2
        else:
            out.append(template[pos])
            pos += 1
    if index != len(values):
        raise EvalError(f"States.Format: {len(values)} arguments for {index} {{}} in {template!r}")
    return "".join(out)


_HASH_LENGTH = {"MD5": 32, "SHA-1": 40, "SHA-256": 64, "SHA-384": 96, "SHA-512": 128}


def _hash(data: Any, algorithm: Any) -> Any:
    if algorithm not in _HASH_LENGTH:
        raise EvalError(f"States.Hash: algorithm {algorithm!r} is not one of {', '.join(_HASH_LENGTH)}")
    if is_unknown(data):
        return unknown("string", "States.Hash", _HASH_LENGTH[algorithm])
    text = data if isinstance(data, str) else json.dumps(data)
    return hashlib.new(algorithm.replace("-", "").lower(), text.encode()).hexdigest()


def _string_to_json(text: Any) -> Any:
    if is_unknown(text):
        return unknown("any", "States.StringToJson")
    if not isinstance(text, str):
        raise EvalError("States.StringToJson: the argument must be a string")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise EvalError(f"States.StringToJson: {text!r} is not JSON ({exc})") from None


def _array_range(start: Any, end: Any, step: Any) -> list[int]:
    if not all(isinstance(v, int) for v in (start, end, step)) or step == 0:
        raise EvalError("States.ArrayRange: start, end and a non-zero step must be integers")
    out = list(range(start, end + (1 if step > 0 else -1), step))
    if len(out) > 1000:
        raise EvalError("States.ArrayRange: more than 1000 items")
    return out


def _partition(items: Any, size: Any) -> Any:
    if not isinstance(items, list) or not isinstance(size, int) or size < 1:
        raise EvalError("States.ArrayPartition: needs an array and a positive integer")
    return [items[i:i + size] for i in range(0, len(items), size)]


def _get_item(items: Any, index: Any) -> Any:
    if not isinstance(items, list) or not isinstance(index, int):
        raise EvalError("States.ArrayGetItem: needs an array and an integer index")
    return items[index] if 0 <= index < len(items) else unknown("any", "States.ArrayGetItem out of range")


def _merge(a: Any, b: Any, deep: Any = False) -> Any:
    if not isinstance(a, dict) or not isinstance(b, dict):
        raise EvalError("States.JsonMerge: both arguments must be objects")
    if deep:
        raise EvalError("States.JsonMerge: only shallow merges (false) are supported by Step Functions")
    return {**a, **b}


def _math_add(a: Any, b: Any) -> Any:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int) or not isinstance(b, int):
        raise EvalError("States.MathAdd: both arguments must be integers")
    return a + b


INTRINSICS: dict[str, Callable[..., Any]] = {
    "States.Format": lambda template, *values: _format(template, list(values)),
    "States.StringToJson": _string_to_json,
    "States.JsonToString": lambda value: json.dumps(value, separators=(",", ":")),
    "States.Array": lambda *values: list(values),
    "States.ArrayPartition": _partition,
    "States.ArrayContains": lambda items, value: value in items,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _get_item,
    "States.ArrayLength": lambda items: len(items),
    "States.ArrayUnique": lambda items: [v for i, v in enumerate(items) if v not in items[:i]],
    "States.Base64Encode": lambda text: base64.b64encode(str(text).encode()).decode(),
    "States.Base64Decode": lambda text: base64.b64decode(str(text)).decode(errors="replace"),
    "States.Hash": _hash,
    "States.JsonMerge": _merge,
    "States.MathRandom": lambda start, end, seed=None: start,
    "States.MathAdd": _math_add,
    "States.StringSplit": lambda text, delimiters: [p for p in re.split("|".join(map(re.escape, delimiters)), text) if p],
    "States.UUID": lambda: "0f8e8d7c-6b5a-4e3d-9c2b-1a0f9e8d7c6b",
}

# Results whose shape is known even when an argument is not.
_UNKNOWN_RESULT = {"States.UUID": ("string", 36), "States.ArrayLength": ("integer", None), "States.ArrayContains": ("boolean", None)}


def eval_intrinsic(call: Call, data: Any, context: dict[str, Any], variables: dict[str, Any]) -> Any:
    if call.name not in INTRINSICS:
        raise EvalError(f"{call.name} is not an intrinsic function (known: {', '.join(sorted(INTRINSICS))})")
    args = []
    for arg in call.args:
        if isinstance(arg, Literal):
            args.append(_unescape(arg.value) if isinstance(arg.value, str) and call.name != "States.Format" else arg.value)
        elif isinstance(arg, PathRef):
            args.append(get_path(arg.path, data, context, variables))
        else:
            args.append(eval_intrinsic(arg, data, context, variables))
    if call.name == "States.Format" and args and isinstance(args[0], str):
        return _format(args[0], args[1:])  # unknown parts stay embedded as markers
    if call.name in ("States.Hash", "States.StringToJson"):
        return INTRINSICS[call.name](*args)
    if any(is_unknown(a) for a in args):
        kind, length = _UNKNOWN_RESULT.get(call.name, ("any", None))
        return unknown(kind, call.name, length)
    try:
        return INTRINSICS[call.name](*args)
    except EvalError:
        raise
    except Exception as exc:  # wrong argument types or counts
        raise EvalError(f"{call.name}: {type(exc).__name__}: {exc}") from None


def eval_dynamic(expr: Any, data: Any, context: dict[str, Any], variables: dict[str, Any]) -> Any:
    """The value of an `X.$` field: a JSONPath or an intrinsic function call."""
    if not isinstance(expr, str):
        raise EvalError(f"a field ending in .$ needs a string (JSONPath or intrinsic), got {expr!r}")
    if expr.strip().startswith("States."):
        return eval_intrinsic(parse_intrinsic(expr.strip()), data, context, variables)
    return get_path(expr, data, context, variables)


def eval_template(template: Any, data: Any, context: dict[str, Any], variables: dict[str, Any], missing: list[str], where: str) -> Any:
    """Evaluate a Parameters / ResultSelector / ItemSelector object (JSONPath language)."""
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                try:
                    out[key[:-2]] = eval_dynamic(value, data, context, variables)
                except Missing as exc:
                    missing.append(f"{where}.{key}: {exc}")
                    out[key[:-2]] = unknown("any", str(value))
            else:
                out[key] = eval_template(value, data, context, variables, missing, f"{where}.{key}")
        return out
    if isinstance(template, list):
        return [eval_template(v, data, context, variables, missing, f"{where}[{i}]") for i, v in enumerate(template)]
    return template


# ---------------------------------------------------------------------------------------------- JSONata

_JSONATA = re.compile(r"^\s*\{%(.*)%\}\s*$", re.DOTALL)


def _plain(value: Any) -> Any:
    """A JSON copy of the value that keeps UnknownMap (its missing fields are unknown, not absent)."""
    if isinstance(value, dict):
        return (UnknownMap if isinstance(value, UnknownMap) else dict)((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_FORKED = ("evaluate_equality_expression", "evaluate_comparison_expression", "evaluate_includes_expression", "evaluate_name")
if not all(hasattr(jsonata.Jsonata, name) for name in _FORKED) or not hasattr(jsonata_functions.Functions, "lookup"):
    raise ImportError(f"jsonata-python no longer has {', '.join(_FORKED)}: sagestep.validate forks them "
                      "(pinned jsonata-python==0.7.1)")


class _ForkingJsonata(jsonata.Jsonata):
    """JSONata that takes a side wherever an unknown value would decide: with `world` True every comparison with an
    unknown holds and every field of an unknown exists (and is unknown); with False none does. A part of the result
    that differs between the two worlds depends on an unknown. (`$exists`, `$count`, `$length` of an unknown are not
    forked: they see the marker's own shape.)"""

    world: bool | None = None

    def evaluate_equality_expression(self, lhs: Any, rhs: Any, op: Any) -> Any:
        if self.world is not None and (is_unknown(lhs) or is_unknown(rhs)):
            return self.world
        return super().evaluate_equality_expression(lhs, rhs, op)

    def evaluate_comparison_expression(self, lhs: Any, rhs: Any, op: Any) -> Any:
        if self.world is not None and (is_unknown(lhs) or is_unknown(rhs)):
            return self.world
        return super().evaluate_comparison_expression(lhs, rhs, op)

    def evaluate_includes_expression(self, lhs: Any, rhs: Any) -> Any:
        if self.world is not None and (is_unknown(lhs) or is_unknown(rhs)):
            return self.world
        return super().evaluate_includes_expression(lhs, rhs)

    def evaluate_name(self, expr: Any, input: Any, environment: Any) -> Any:
        return self._lookup(input, str(expr.value)) if self.world is not None else super().evaluate_name(expr, input, environment)

    def _lookup(self, value: Any, key: str) -> Any:
        if isinstance(value, list):  # a path step maps over a sequence and flattens, as jsonata's own lookup does
            found = jsonata_utils.Utils.create_sequence()
            for item in value:
                result = self._lookup(item, key)
                if isinstance(result, list):
                    found.extend(result)
                elif result is not None:
                    found.append(result)
            return found
        if whole_marker(value) is not None or (isinstance(value, UnknownMap) and key not in value):
            return unknown("any", key) if self.world else None
        return jsonata_functions.Functions.lookup(value, key)


def _agree(one: Any, other: Any, label: str) -> Any:
    """What two worlds' results share; where they differ, an unknown."""
    if type(one) is type(other) and one == other:
        return one
    if isinstance(one, dict) and isinstance(other, dict):
        merged = {k: _agree(one[k], other[k], label) if k in other else unknown("any", label)
                  for k in one} | {k: unknown("any", label) for k in other if k not in one}
        return UnknownMap(merged) if isinstance(one, UnknownMap) or isinstance(other, UnknownMap) else merged
    if isinstance(one, list) and isinstance(other, list) and len(one) == len(other):
        return [_agree(a, b, label) for a, b in zip(one, other)]
    if isinstance(one, str) and isinstance(other, str):  # keep what both worlds bound: the longer of the two
        (a, _), (b, _) = worst_length(one), worst_length(other)
        return unknown("string", label, None if a is None or b is None else max(a, b))
    return unknown("any", label)


class _Substring(jsonata.Jsonata.JFunctionCallable):
    """JSONata's $substring, except that a substring of an unknown value is an unknown value no longer than the
    requested length (so `$substring($name, 0, 50) & '-' & $hash` has a known bound)."""

    def call(self, input: Any, args: Any) -> Any:
        from jsonata.functions import Functions

        string, start, length = (list(args or []) + [None, None, None])[:3]
        if isinstance(string, str) and is_unknown(string):
            bound = int(length) if isinstance(length, int | float) and length >= 0 else None
            return unknown("string", f"$substring of {describe(string)[:80]}", bound)
        return Functions.substring(string, start, length)


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> _ForkingJsonata:
    """An expression parsed once: the walks evaluate the same few hundred expressions many times over."""
    expression = _ForkingJsonata(text)
    expression.register_function("substring", jsonata.Jsonata.JFunction(_Substring(), "<s-nn?:s>"))
    return expression


def _fresh(text: str) -> _ForkingJsonata:
    """A parsed expression with its own world and evaluation state. jsonata-python evaluates every expression through
    the instance last constructed on the thread (`Jsonata.CURRENT`, which `$now()` also reads): this one, as
    constructing it would have made it."""
    expression = copy.copy(_parsed(text))
    jsonata.Jsonata.CURRENT.jsonata = expression
    return expression


def eval_jsonata(template: Any, bindings: dict[str, Any], errors: list[str], where: str) -> Any:
    if isinstance(template, dict):
        return {k: eval_jsonata(v, bindings, errors, f"{where}.{k}") for k, v in template.items()}
    if isinstance(template, list):
        return [eval_jsonata(v, bindings, errors, f"{where}[{i}]") for i, v in enumerate(template)]
    if isinstance(template, str):
        match = _JSONATA.match(template)
        if match:
            try:
                expression = _fresh(match.group(1))
            except Exception as exc:
                raise EvalError(f"{where}: JSONata does not parse: {exc}") from None
            plain = _plain(bindings)
            worlds = (True, False) if is_unknown(plain) else (None,)
            results = []
            for world in worlds:
                expression.world = world
                try:
                    results.append(_plain(expression.evaluate(None, plain)))
                except Exception:
                    return unknown("any", f"JSONata {where}")
            result = results[0] if len(results) == 1 else _agree(results[0], results[1], f"JSONata {where} (depends on an unknown)")
            state_input = (bindings.get("states") or {}).get("input")
            if isinstance(state_input, UnknownMap) and isinstance(result, dict):
                result = UnknownMap(result)  # e.g. $merge([$states.input, {...}]) of a partly unknown input
            return result
    return template


# ---------------------------------------------------------------------------------------------- Choice rules

_NO_VALUE = object()


def choice_rule(rule: dict[str, Any], data: Any, ctx: dict[str, Any], variables: dict[str, Any], language: str) -> bool | None:
    """True / False when the known input decides the rule, None when it does not."""
    if language == "JSONata" or "Condition" in rule:
        if is_unknown(data) or not isinstance(rule.get("Condition"), str):
            return None
        result = eval_jsonata(rule["Condition"], {**variables, "states": {"input": data, "context": ctx}}, [], "Condition")
        return result if isinstance(result, bool) else None
    if "And" in rule or "Or" in rule:
        verdicts = [choice_rule(r, data, ctx, variables, language) for r in rule.get("And", rule.get("Or")) or []]
        if "And" in rule:
            return False if False in verdicts else (True if all(v is True for v in verdicts) else None)
        return True if True in verdicts else (False if all(v is False for v in verdicts) else None)
    if isinstance(rule.get("Not"), dict):
        verdict = choice_rule(rule["Not"], data, ctx, variables, language)
        return None if verdict is None else not verdict
    try:
        value = get_path(rule.get("Variable", "$"), data, ctx, variables)
    except (Missing, EvalError):
        value = _NO_VALUE
    if "IsPresent" in rule:
        return None if is_unknown(value) else (value is not _NO_VALUE) == bool(rule["IsPresent"])
    if value is _NO_VALUE or is_unknown(value):
        return None
    for key, expected in rule.items():
        if key in ("Variable", "Next", "Comment"):
            continue
        if key.endswith("Path"):
            try:
                expected = get_path(expected, data, ctx, variables)
            except (Missing, EvalError):
                return None
            if is_unknown(expected):
                return None
            key = key[:-4]
        return _compare(key, value, expected)
    return None


def _string_matches(value: str, pattern: str) -> bool:
    parts, pos = [], 0
    while pos < len(pattern):
        if pattern[pos] == "\\" and pos + 1 < len(pattern):
            parts.append(re.escape(pattern[pos + 1]))
            pos += 2
        else:
            parts.append(".*" if pattern[pos] == "*" else re.escape(pattern[pos]))
            pos += 1
    return re.fullmatch("".join(parts), value, re.DOTALL) is not None


def _compare(key: str, value: Any, expected: Any) -> bool | None:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key == "IsNull":
        return (value is None) == bool(expected)
    if key == "IsString":
        return isinstance(value, str) == bool(expected)
    if key == "IsNumeric":
        return is_number == bool(expected)
    if key == "IsBoolean":
        return isinstance(value, bool) == bool(expected)
    if key.startswith("String"):
        if not isinstance(value, str) or not isinstance(expected, str):
            return False
        if key == "StringMatches":
            return _string_matches(value, expected)
        ops = {"StringEquals": value == expected, "StringLessThan": value < expected, "StringGreaterThan": value > expected,
               "StringLessThanEquals": value <= expected, "StringGreaterThanEquals": value >= expected}
        return ops.get(key)
    if key.startswith("Numeric"):
        if not is_number or not isinstance(expected, (int, float)):
            return False
        ops = {"NumericEquals": value == expected, "NumericLessThan": value < expected, "NumericGreaterThan": value > expected,
               "NumericLessThanEquals": value <= expected, "NumericGreaterThanEquals": value >= expected}
        return ops.get(key)
    if key == "BooleanEquals":
        return isinstance(value, bool) and value == expected
    return None  # timestamps and anything else: not decided here


# ---------------------------------------------------------------------------------------------- services


@dataclasses.dataclass(frozen=True)
class Integration:
    """What a Task's Resource calls."""

    kind: str  # "optimized", "aws-sdk", "lambda-arn", "activity", "other"
    service: str = ""  # as written in the ASL (sagemaker, states, aws-sdk service name)
    action: str = ""  # camelCase as in the ASL
    pattern: str = ""  # "", ".sync", ".sync:2", ".waitForTaskToken"


def integration(resource: Any) -> Integration:
    if not isinstance(resource, str):
        return Integration("other")
    match = re.match(r"^arn:[^:]*:states:::(.+)$", resource)
    if match:
        rest = match.group(1)
        pattern = ""
        for suffix in (".sync:2", ".sync", ".waitForTaskToken"):
            if rest.endswith(suffix):
                rest, pattern = rest[: -len(suffix)], suffix
                break
        parts = rest.split(":")
        if parts[0] == "aws-sdk" and len(parts) == 3:
            return Integration("aws-sdk", parts[1], parts[2], pattern)
        if len(parts) == 2:
            return Integration("optimized", parts[0], parts[1], pattern)
        return Integration("other", pattern=pattern)
    if re.match(r"^arn:[^:]*:lambda:", resource):
        return Integration("lambda-arn")
    if re.match(r"^arn:[^:]*:states:[^:]*:[^:]*:activity:", resource):
        return Integration("activity")
    return Integration("other")


# aws-sdk service names (AWS SDK for Java v2 ids) that differ from botocore's.
SDK_TO_BOTO = {"sfn": "stepfunctions", "cloudwatchlogs": "logs", "eventbridge": "events", "efs": "efs",
               "sagemakerruntime": "sagemaker-runtime", "elasticloadbalancingv2": "elbv2", "applicationautoscaling": "application-autoscaling"}


def boto_service(service: str) -> str:
    return awsmodel.SFN_TO_BOTO_SERVICE.get(service, SDK_TO_BOTO.get(service, service))


def describe_action(integ: Integration) -> tuple[str, str] | None:
    """The (service, operation) whose output a `.sync` task returns."""
    if integ.service == "states" and integ.action == "startExecution":
        return "stepfunctions", "DescribeExecution"
    if integ.service == "sagemaker" and integ.action.startswith("create"):
        return "sagemaker", "Describe" + integ.action[len("create"):]
    return None


def shape_instance(shape: Any, label: str, depth: int = 0) -> Any:
    """A value of the shape in which every scalar is a typed marker (all members present, one list item)."""
    if shape is None:
        return {}
    kind = shape.type_name
    if depth > MAX_SHAPE_DEPTH:
        return unknown("any", label)
    if kind == "structure":
        return {name: shape_instance(member, f"{label}.{name}", depth + 1) for name, member in shape.members.items()}
    if kind == "list":
        return [shape_instance(shape.member, f"{label}[0]", depth + 1)]
    if kind == "map":
        return UnknownMap()
    return unknown(kind, label, shape.metadata.get("max") if kind == "string" else None)


def service_result(integ: Integration) -> Any:
    """What the task hands to ResultSelector: the call's output as Step Functions returns it."""
    if integ.pattern == ".waitForTaskToken" or integ.kind in ("lambda-arn", "activity", "other"):
        return unknown("any", "task result")
    service, action = boto_service(integ.service), integ.action
    if integ.pattern.startswith(".sync"):
        described = describe_action(integ)
        if described:
            service, action = described
    try:
        op = awsmodel.operation_model(service, action)
    except Exception:
        return unknown("any", f"{integ.service}:{integ.action} result")
    result = shape_instance(op.output_shape, f"{op.name} output")
    if service == "stepfunctions" and isinstance(result, dict):
        # Step Functions answers its own API in PascalCase (ExecutionArn, StartDate, Output), nested lists included
        result = _pascal(result)
    if integ.kind == "optimized" and integ.service == "lambda" and isinstance(result, dict):
        result["Payload"] = unknown("any", "Lambda payload")
    if integ.pattern == ".sync:2" and isinstance(result, dict) and "Output" in result:
        result["Output"] = unknown("any", "child execution output")
    return result


def _pascal(value: Any) -> Any:
    if isinstance(value, dict):
        return type(value)((key[:1].upper() + key[1:], _pascal(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_pascal(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------- the walk


def _map_result(items: Any, outputs: list[Any]) -> list[Any]:
    """A Map's output: the first item's (the one the walk follows), one unknown per other item of a known list."""
    first = outputs[0] if outputs else unknown("any", "Map iteration output")
    others = len(items) - 1 if isinstance(items, list) and whole_marker(items) is None else 0
    return [first] + [unknown("any", f"Map iteration {index} output") for index in range(1, others + 1)]


@dataclasses.dataclass
class Visit:
    path: tuple[str, ...]
    state: dict[str, Any]
    language: str
    input: Any
    params: Any = None  # evaluated Parameters / Arguments (None when the state has none)
    has_params: bool = False
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    certain: bool = True  # False on a Choice branch the known input does not take: values there are not checked
    # the visits it was reached from, one per arrival with this input (None: the start of the execution)
    parents: list[Visit | None] = dataclasses.field(default_factory=list, repr=False, compare=False)

    @property
    def name(self) -> str:
        return " > ".join(self.path)


@dataclasses.dataclass
class Problem:
    """A path or expression that fails in a known input (reported only when the input is a real sample)."""

    path: tuple[str, ...]
    message: str
    kind: str = "missing"  # "missing": a path absent from a known input; "syntax": the expression is wrong


@dataclasses.dataclass
class WalkSettings:
    execution_name: str
    state_machine_name: str
    state_machine_arn: str
    role_arn: str
    retry_count: int = 0
    start_time: str = "2024-05-01T12:00:00.000Z"  # $$.Execution.StartTime
    entered_time: str = "2024-05-01T12:00:01.000Z"  # $$.State.EnteredTime of every state
    max_inputs_per_state: int = MAX_INPUTS_PER_STATE
    # (from state, to state) -> whether the walk takes that transition; None: every one (to follow one execution)
    follow: Callable[[str, str], bool] | None = None


class Walker:
    def __init__(self, settings: WalkSettings) -> None:
        self.settings = settings
        self.visits: list[Visit] = []
        self.problems: list[Problem] = []
        self._seen: dict[tuple[str, ...], dict[str, Visit]] = {}
        self._certain = True

    def context(self, execution_input: Any, state_name: str, map_item: Any = None) -> dict[str, Any]:
        s = self.settings
        region_account = s.state_machine_arn.split(":")[3:5]
        execution_arn = f"arn:aws:states:{region_account[0]}:{region_account[1]}:execution:{s.state_machine_name}:{s.execution_name}"
        ctx: dict[str, Any] = {
            "Execution": {"Id": execution_arn, "Input": execution_input, "Name": s.execution_name,
                          "RoleArn": s.role_arn, "StartTime": s.start_time, "RedriveCount": 0},
            "State": {"EnteredTime": s.entered_time, "Name": state_name, "RetryCount": s.retry_count},
            "StateMachine": {"Id": s.state_machine_arn, "Name": s.state_machine_name},
            "Task": {"Token": "AQCEAAAAKgAAAAMAAAAAAAAAAexampletoken"},
        }
        if map_item is not None:
            ctx["Map"] = {"Item": {"Index": 0, "Value": map_item}}
        return ctx

    def run(self, definition: dict[str, Any], execution_input: Any) -> None:
        self._execution_input = execution_input
        self.machine(definition, execution_input, (), definition.get("QueryLanguage", "JSONPath"), {}, None)

    def problem(self, path: tuple[str, ...], message: str, kind: str = "missing") -> None:
        if kind == "missing" and not self._certain:
            kind = "uncertain"
        self.problems.append(Problem(path, message, kind))

    # One (sub-)machine: returns the outputs of its terminal states.
    def machine(self, machine: dict[str, Any], first_input: Any, prefix: tuple[str, ...], language: str,
                variables: dict[str, Any], map_item: Any, parent: Visit | None = None) -> list[Any]:
        states = machine.get("States") or {}
        start = machine.get("StartAt")
        outputs: list[Any] = []
        outer_certain = self._certain
        queue: list[tuple[str, Any, dict[str, Any], bool, Visit | None]] = (
            [(start, first_input, variables, outer_certain, parent)] if start in states else [])
        while queue:
            name, data, variables, certain, came_from = queue.pop(0)
            self._certain = certain
            path = prefix + (name,)
            key = json.dumps([data, variables, certain], sort_keys=True, default=str)
            seen = self._seen.setdefault(path, {})
            if key in seen:
                seen[key].parents.append(came_from)
                continue
            state = states[name]
            if len(seen) >= self.settings.max_inputs_per_state or not isinstance(state, dict):
                continue
            first = len(self.visits)
            try:
                moves, terminal = self.state(state, path, data, state.get("QueryLanguage", language), variables, map_item)
            except EvalError as exc:
                self.problem(path, str(exc), "syntax")
                moves, terminal = [], []
            visit = self.visits[first]  # the state's own visit comes first, before those of its branches
            visit.parents.append(came_from)
            seen[key] = visit
            outputs.extend(terminal)
            follow = self.settings.follow
            for target, value, new_vars, taken in moves:
                if target in states and (follow is None or follow(name, target)):
                    queue.append((target, value, new_vars, certain and taken, visit))
        self._certain = outer_certain
        return outputs

    def state(self, state: dict[str, Any], path: tuple[str, ...], data: Any, language: str,
              variables: dict[str, Any], map_item: Any) -> tuple[list[tuple[str, Any, dict[str, Any]]], list[Any]]:
        kind = state.get("Type")
        ctx = self.context(self._execution_input, path[-1], map_item)
        visit = Visit(path, state, language, data, context=ctx, certain=self._certain)
        self.visits.append(visit)
        if language == "JSONata":
            return self._jsonata_state(state, visit, data, ctx, variables, language)
        missing: list[str] = []
        effective = self._path(state.get("InputPath", "$"), data, ctx, variables, missing, "InputPath")
        result: Any = effective
        if kind in ("Pass", "Task", "Parallel") and "Parameters" in state:  # a Map's Parameters are per item
            visit.params = eval_template(state["Parameters"], effective, ctx, variables, missing, "Parameters")
            visit.has_params = True
        args = visit.params if visit.has_params else effective
        if kind == "Pass":
            result = state["Result"] if "Result" in state else args
        elif kind == "Task":
            result = service_result(integration(state.get("Resource")))
        elif kind == "Parallel":
            result = []
            for index, branch in enumerate(state.get("Branches") or []):
                outs = self.machine(branch, args, path + (f"branch {index + 1}",), branch.get("QueryLanguage", language), variables, map_item, visit)
                result.append(outs[0] if outs else unknown("any", f"branch {index + 1} output"))
        elif kind == "Map":
            result = self._map(state, visit, effective, ctx, variables, missing, language)
        elif kind == "Choice":
            self._choice_paths(state.get("Choices") or [], effective, ctx, variables, missing)
        for where in missing:
            self.problem(path, where)
        if kind in ("Choice", "Wait", "Succeed", "Fail"):
            output = self._output(state, effective, ctx, variables)
        else:
            missing = []
            if "ResultSelector" in state and kind in ("Task", "Parallel", "Map"):
                result = eval_template(state["ResultSelector"], result, ctx, variables, missing, "ResultSelector")
            for where in missing:
                self.problem(path, where)
            merged = set_path(data, state["ResultPath"], result) if "ResultPath" in state else set_path(data, "$", result)
            output = self._output(state, merged, ctx, variables)
        new_vars = self._assign(state, variables, result, data, ctx, path)
        moves = self._catch_moves(state, data, variables, language, ctx, path)
        return self._transitions(state, output, new_vars, moves, effective, ctx, variables, language)

    def _transitions(self, state: dict[str, Any], output: Any, new_vars: dict[str, Any], moves: list[Any], data: Any,
                     ctx: dict[str, Any], variables: dict[str, Any], language: str) -> tuple[list[Any], list[Any]]:
        """Every transition is followed; a Choice branch the known input does not take is followed as uncertain."""
        kind = state.get("Type")
        if kind == "Fail":
            return moves, []
        targets: list[tuple[Any, bool]] = [(state.get("Next"), True)]
        if kind == "Choice":
            decided = False
            for choice in state.get("Choices") or []:
                if not isinstance(choice, dict):
                    continue
                verdict = None if decided else choice_rule(choice, data, ctx, variables, language)
                targets.append((choice.get("Next"), not decided and verdict is not False))
                decided = decided or verdict is True
            targets.append((state.get("Default"), not decided))
        moves = [(t, output, new_vars, taken) for t, taken in targets if isinstance(t, str)] + moves
        terminal = [output] if kind == "Succeed" or state.get("End") is True else []
        return moves, terminal

    def _path(self, path: Any, data: Any, ctx: dict[str, Any], variables: dict[str, Any], missing: list[str], field: str) -> Any:
        if path is None:
            return {}
        try:
            return get_path(path, data, ctx, variables)
        except Missing as exc:
            missing.append(f"{field}: {exc}")
            return unknown("any", str(path))

    def _output(self, state: dict[str, Any], data: Any, ctx: dict[str, Any], variables: dict[str, Any]) -> Any:
        if "OutputPath" not in state:
            return data
        missing: list[str] = []
        out = self._path(state["OutputPath"], data, ctx, variables, missing, "OutputPath")
        return out

    def _choice_paths(self, rules: list[Any], data: Any, ctx: dict[str, Any], variables: dict[str, Any], missing: list[str]) -> None:
        for rule in rules:
            if not isinstance(rule, dict):
                continue
            present_check = "IsPresent" in rule
            for key, value in rule.items():
                if (key == "Variable" or (key.endswith("Path") and key != "IsPresent")) and isinstance(value, str) and not present_check:
                    try:
                        get_path(value, data, ctx, variables)
                    except Missing as exc:
                        missing.append(f"Choices: {key}: {exc}")
            for nested in ("And", "Or"):
                self._choice_paths(rule.get(nested) or [], data, ctx, variables, missing)
            if isinstance(rule.get("Not"), dict):
                self._choice_paths([rule["Not"]], data, ctx, variables, missing)

    def _map(self, state: dict[str, Any], visit: Visit, effective: Any, ctx: dict[str, Any],
             variables: dict[str, Any], missing: list[str], language: str) -> Any:
        path = visit.path
        items = self._path(state.get("ItemsPath", "$"), effective, ctx, variables, missing, "ItemsPath")
        item = items[0] if isinstance(items, list) and items else unknown("any", "Map item")
        item_ctx = self.context(self._execution_input, path[-1], item)
        selector = state.get("ItemSelector", state.get("Parameters"))
        item_input = eval_template(selector, effective, item_ctx, variables, missing, "ItemSelector") if selector is not None else item
        processor = state.get("ItemProcessor") or state.get("Iterator") or {}
        outs = self.machine(processor, item_input, path + ("item",), processor.get("QueryLanguage", language), variables, item, visit)
        return _map_result(items, outs)

    def _assign(self, state: dict[str, Any], variables: dict[str, Any], result: Any, data: Any, ctx: dict[str, Any],
                path: tuple[str, ...]) -> dict[str, Any]:
        assign = state.get("Assign")
        if not isinstance(assign, dict):
            return variables
        missing: list[str] = []
        values = eval_template(assign, result, ctx, variables, missing, "Assign")
        for where in missing:
            self.problem(path, where)
        return {**variables, **values}

    def _catch_moves(self, state: dict[str, Any], data: Any, variables: dict[str, Any], language: str,
                     ctx: dict[str, Any], path: tuple[str, ...]) -> list[tuple[str, Any, dict[str, Any]]]:
        moves = []
        for catcher in state.get("Catch") or []:
            if not isinstance(catcher, dict) or not isinstance(catcher.get("Next"), str):
                continue
            error = {"Error": unknown("string", "error name"), "Cause": unknown("string", "error cause")}
            if language == "JSONata":
                bindings = {**variables, "states": {"input": data, "context": ctx, "errorOutput": error}}
                errors: list[str] = []
                out = eval_jsonata(catcher["Output"], bindings, errors, "Catch.Output") if "Output" in catcher else error
                new_vars = {**variables, **eval_jsonata(catcher.get("Assign") or {}, bindings, errors, "Catch.Assign")}
            else:
                out = set_path(data, catcher.get("ResultPath", "$"), error)
                new_vars = variables
            moves.append((catcher["Next"], out, new_vars, True))
        return moves

    def _jsonata_state(self, state: dict[str, Any], visit: Visit, data: Any, ctx: dict[str, Any], variables: dict[str, Any],
                       language: str) -> tuple[list[tuple[str, Any, dict[str, Any]]], list[Any]]:
        kind = state.get("Type")
        path = visit.path
        errors: list[str] = []
        bindings: dict[str, Any] = {**variables, "states": {"input": data, "context": ctx}}
        result: Any = data
        if "Arguments" in state:
            visit.params = eval_jsonata(state["Arguments"], bindings, errors, "Arguments")
            visit.has_params = True
        args = visit.params if visit.has_params else data
        if kind == "Task":
            result = service_result(integration(state.get("Resource")))
        elif kind == "Parallel":
            result = []
            for index, branch in enumerate(state.get("Branches") or []):
                outs = self.machine(branch, args, path + (f"branch {index + 1}",), branch.get("QueryLanguage", language), variables, None, visit)
                result.append(outs[0] if outs else unknown("any", f"branch {index + 1} output"))
        elif kind == "Map":
            items = eval_jsonata(state.get("Items", "{% $states.input %}"), bindings, errors, "Items")
            item = items[0] if isinstance(items, list) and items else unknown("any", "Map item")
            item_ctx = self.context(self._execution_input, path[-1], item)
            item_bindings = {**variables, "states": {"input": data, "context": item_ctx}}
            item_input = eval_jsonata(state["ItemSelector"], item_bindings, errors, "ItemSelector") if "ItemSelector" in state else item
            processor = state.get("ItemProcessor") or {}
            outs = self.machine(processor, item_input, path + ("item",), processor.get("QueryLanguage", language), variables, item, visit)
            result = _map_result(items, outs)
        elif kind == "Pass" and "Output" not in state:
            result = data
        bindings["states"]["result"] = result
        if "Output" in state:
            output = eval_jsonata(state["Output"], bindings, errors, "Output")
        else:
            output = result if kind in ("Task", "Parallel", "Map") else data
        new_vars = {**variables, **eval_jsonata(state.get("Assign") or {}, bindings, errors, "Assign")} if isinstance(state.get("Assign"), dict) else variables
        for message in errors:
            self.problem(path, message)
        moves = self._catch_moves(state, data, variables, language, ctx, path)
        return self._transitions(state, output, new_vars, moves, data, ctx, variables, language)
