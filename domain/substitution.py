"""`{{variable}}` substitution in a template's script: pure functions, no I/O.

Rules (documented in docs/api.md):

- A placeholder is `{{name}}`, where `name` is a letter or `_` followed by letters,
  digits or `_`; spaces inside the braces are allowed (`{{ name }}`). Anything else
  between double braces is plain text and stays as written.
- Placeholders are found in every string *value* of the script, at any depth (object
  keys are never substituted).
- A string that is exactly one placeholder is replaced by the variable's value with its
  JSON type kept, so `"duration": "{{duration}}"` with `{"duration": 2.5}` becomes the
  number 2.5, and a template can vary timing and colours as well as text.
- A placeholder inside a longer string is replaced by the value's text: a string as is,
  a number or boolean as JSON writes it (`5`, `2.5`, `true`).
- Every placeholder must have a value; `MissingVariables` names all that do not.
  Variables the script does not use are ignored.
- Values are data: a value that itself looks like `{{other}}` is inserted literally and
  never scanned again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from phantomflow.domain.errors import DomainError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# What a variable may be: a JSON scalar other than null.
Value = str | int | float | bool


class MissingVariables(DomainError):
    """The script uses placeholders that were given no value."""

    def __init__(self, names: list[str]) -> None:
        listed = ", ".join(names)
        super().__init__(f"Missing values for template variables: {listed}.")
        self.names = names


def is_value(value: Any) -> bool:
    """Whether `value` may be a variable's value (string, number or boolean)."""
    return isinstance(value, str | int | float | bool)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _strings(item)


def variables_of(script: Any) -> list[str]:
    """The names of the placeholders `script` uses, in order of first appearance."""
    seen: dict[str, None] = {}
    for text in _strings(script):
        for match in PLACEHOLDER.finditer(text):
            seen.setdefault(match.group(1), None)
    return list(seen)


def has_placeholder(value: Any) -> bool:
    return isinstance(value, str) and PLACEHOLDER.search(value) is not None


def _as_text(value: Value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _substitute(node: Any, values: Mapping[str, Value]) -> Any:
    if isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        if whole is not None:
            return values[whole.group(1)]
        # re.sub never rescans what a replacement inserted: values stay data.
        return PLACEHOLDER.sub(lambda match: _as_text(values[match.group(1)]), node)
    if isinstance(node, Mapping):
        return {key: _substitute(value, values) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_substitute(item, values) for item in node]
    return node


def substitute(script: Mapping[str, Any], variables: Mapping[str, Value]) -> dict[str, Any]:
    """A new script with every placeholder replaced; `script` is left unchanged.

    Raises MissingVariables naming every placeholder that has no value."""
    missing = [name for name in variables_of(script) if name not in variables]
    if missing:
        raise MissingVariables(missing)
    return _substitute(script, variables)
