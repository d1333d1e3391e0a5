"""Values the static evaluation cannot know, and how to tell them apart from known ones.

An unknown value is a *marker*: a string `\\ue000KIND|MAXLEN|LABEL\\ue001` (private-use characters that never appear in
a real definition). KIND is the botocore type it is known to have (`any` when nothing is known, e.g. a Lambda
payload), MAXLEN the longest it can be (empty when unbounded) and LABEL where it came from, for messages. Markers are
plain strings, so they pass through JSON, States.Format and JSONata unchanged; a string that *contains* a marker is
partly unknown (e.g. `States.Format('{}-x', <unknown>)`).
"""

from __future__ import annotations

import json
import re
from typing import Any

OPEN, CLOSE = "\ue000", "\ue001"
_MARKER = re.compile("\ue000([a-z]+)\\|(\\d*)\\|([^\ue001]*)\ue001")


def unknown(kind: str = "any", label: str = "", max_length: int | None = None) -> str:
    label = label.replace(OPEN, "").replace(CLOSE, "").replace("|", "/")[:120]
    return f"{OPEN}{kind}|{'' if max_length is None else max_length}|{label}{CLOSE}"


def is_unknown(value: Any) -> bool:
    """True when the value is, or contains, something the evaluation could not know."""
    if isinstance(value, str):
        return OPEN in value or CLOSE in value
    if isinstance(value, dict):
        return isinstance(value, UnknownMap) or any(is_unknown(k) or is_unknown(v) for k, v in value.items())
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    return False


def whole_marker(value: Any) -> tuple[str, int | None, str] | None:
    """(kind, max_length, label) when the value is exactly one marker."""
    if isinstance(value, str):
        match = _MARKER.fullmatch(value)
        if match:
            kind, length, label = match.groups()
            return kind, (int(length) if length else None), label
    return None


def markers(text: str) -> list[tuple[str, int | None, str]]:
    return [(k, int(n) if n else None, label) for k, n, label in _MARKER.findall(text)]


def worst_length(text: str) -> tuple[int | None, list[str]]:
    """Longest the string can be (None if unbounded) and the labels of the unbounded parts."""
    unbounded: list[str] = []
    total = len(_MARKER.sub("", text))
    for _, length, label in markers(text):
        if length is None:
            unbounded.append(label or "an unknown value")
        else:
            total += length
    stray = _MARKER.sub("", text)
    if OPEN in stray or CLOSE in stray:  # a marker cut by a string function: its bound is lost
        unbounded.append("a value cut by a string function")
    return (None if unbounded else total), unbounded


def fill(text: str, char: str = "a") -> str:
    """The string with every unknown part replaced by its longest plausible content (for pattern checks)."""
    out = _MARKER.sub(lambda m: char * (int(m.group(2)) if m.group(2) else 1), text)
    return out.replace(OPEN, "").replace(CLOSE, "")


def describe(value: Any) -> str:
    """A readable rendering for messages: markers become <label>."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = _MARKER.sub(lambda m: f"<{m.group(3) or 'unknown'}>", text)
    return text.replace(OPEN, "<").replace(CLOSE, ">")


class UnknownMap(dict):
    """A map (e.g. an Environment from a Describe* output) whose keys are not known: every lookup is unknown."""
