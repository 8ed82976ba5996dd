"""The schema of a template's script: a render request in which any value may instead
be a string holding a `{{placeholder}}`.

This is what the server accepts (api/template_schemas.py: the render schema, forgiving
errors at values that hold a placeholder, never unknown or missing fields), so it is
generated from the render request's JSON Schema rather than written again: its
references are inlined, every property value and array item may also be a placeholder
string, and a union told apart by its `type` (a scene element) may be any object
whose `type` is a placeholder, since the server cannot tell which it will be.
"""

from __future__ import annotations

from typing import Any

from phantomflow.api.openapi.converter import render_json_schema
from phantomflow.domain.substitution import PLACEHOLDER

PLACEHOLDER_STRING = {
    "type": "string",
    "pattern": PLACEHOLDER.pattern,
    "description": "Holds a {{placeholder}}: judged once its variable has a value.",
}
_ANNOTATIONS = ("$schema", "$id", "title", "description", "x-phantomflow-cross-field-rules")


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = definitions[node["$ref"].removeprefix("#/$defs/")]
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            return _inline({**target, **siblings}, definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def _or_placeholder(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [_loosen(schema), PLACEHOLDER_STRING]}


def _tagged_by_type(branches: list[Any]) -> bool:
    """A union whose branches are objects each with its own one `type` value."""
    return all(
        isinstance(branch, dict)
        and len(branch.get("properties", {}).get("type", {}).get("enum", ())) == 1
        for branch in branches
    )


def _loosen(schema: dict[str, Any]) -> dict[str, Any]:
    loose = dict(schema)
    if "properties" in loose:
        loose["properties"] = {
            name: _or_placeholder(value) for name, value in loose["properties"].items()
        }
    if isinstance(loose.get("items"), dict):
        loose["items"] = _or_placeholder(loose["items"])
    if "oneOf" in loose:
        branches = loose.pop("oneOf")
        # A value matching two branches once placeholders are allowed is still valid.
        loose["anyOf"] = [_loosen(branch) for branch in branches]
        if _tagged_by_type(branches):
            loose["anyOf"].append(
                {"type": "object", "required": ["type"], "properties": {"type": PLACEHOLDER_STRING}}
            )
    return loose


def template_script_schema() -> dict[str, Any]:
    """The `TemplateScript` component (self-contained: no references)."""
    render = render_json_schema()
    definitions = render.pop("$defs")
    root = {key: value for key, value in render.items() if key not in _ANNOTATIONS}
    return {
        "description": "A movie script (the body of POST /api/render) where any value may"
        " instead be a string holding {{variable}} placeholders. The substituted script is"
        " checked in full, cross-field rules included, when the template is rendered.",
        **_loosen(_inline(root, definitions)),
    }
