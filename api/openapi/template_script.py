"""The schema of a template's script: a render request in which any value may instead
be a string holding a `{{placeholder}}`.

This is what the server accepts (api/template_schemas.py: the render schema, forgiving
errors at values that hold a placeholder, never unknown or missing fields), so it is
generated from the render request's JSON Schema rather than written again: every
property value and array item may also be a placeholder string, and a union told
apart by its `type` (a scene element) may be any object whose `type` is a placeholder,
since the server cannot tell which it will be. Each object of the render schema gets
its template twin as a named component (`Scene` -> `TemplateScene`), and so does each
list (`Exports` -> `TemplateExports`).
"""

from __future__ import annotations

from typing import Any

from phantomflow.api.openapi.converter import COMPONENTS, render_json_schema
from phantomflow.domain.substitution import PLACEHOLDER

PLACEHOLDER_STRING = {
    "type": "string",
    "pattern": PLACEHOLDER.pattern,
    "description": "Holds a {{placeholder}}: judged once its variable has a value.",
}
PLACEHOLDER_REF = {"$ref": COMPONENTS + "Placeholder"}
DEFINITIONS = "#/$defs/"
_ANNOTATIONS = ("$schema", "$id", "title", "description", "x-phantomflow-cross-field-rules")


class _Loosener:
    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions
        # Objects and arrays get a template twin; other named rules (WebhookUri) are
        # kept as they are, since the property that holds one may be a placeholder.
        self.twins = {
            name: f"Template{name}"
            for name, node in definitions.items()
            if node.get("type") in ("object", "array")
        }

    def ref(self, node: dict[str, Any]) -> dict[str, Any]:
        name = node["$ref"].removeprefix(DEFINITIONS)
        return {**node, "$ref": COMPONENTS + self.twins.get(name, name)}

    def loosen(self, schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in schema:
            return self.ref(schema)
        loose = dict(schema)
        if "properties" in loose:
            loose["properties"] = {
                name: self.or_placeholder(value) for name, value in loose["properties"].items()
            }
        if isinstance(loose.get("items"), dict):
            loose["items"] = self.or_placeholder(loose["items"])
        for combined in ("anyOf", "allOf"):
            if combined in loose:
                loose[combined] = [self.loosen(branch) for branch in loose[combined]]
        if "oneOf" in loose:
            branches = loose.pop("oneOf")
            # A value that matches two branches once placeholders are allowed is valid.
            loose["anyOf"] = [self.loosen(branch) for branch in branches]
            if self.tagged_by_type(branches):
                loose["anyOf"].append(
                    {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": PLACEHOLDER_REF},
                    }
                )
        return loose

    def or_placeholder(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [self.loosen(schema), PLACEHOLDER_REF]}

    def tagged_by_type(self, branches: list[Any]) -> bool:
        """A union of objects, each with its own one `type` value."""
        resolved = [
            self.definitions[branch["$ref"].removeprefix(DEFINITIONS)]
            if "$ref" in branch
            else branch
            for branch in branches
        ]
        return all(
            len(branch.get("properties", {}).get("type", {}).get("enum", ())) == 1
            for branch in resolved
        )


def template_script_components() -> dict[str, dict[str, Any]]:
    """`TemplateScript`, the template twins of the objects it holds, and `Placeholder`."""
    render = render_json_schema()
    definitions = render.pop("$defs")
    loosener = _Loosener(definitions)
    root = {key: value for key, value in render.items() if key not in _ANNOTATIONS}
    components = {
        "TemplateScript": {
            "description": "A movie script (the body of POST /api/render) where any value"
            " may instead be a string holding {{variable}} placeholders. The substituted"
            " script is checked in full, cross-field rules included, when the template is"
            " rendered.",
            **loosener.loosen(root),
        }
    }
    for name, twin in loosener.twins.items():
        components[twin] = loosener.loosen(definitions[name])
    components["Placeholder"] = PLACEHOLDER_STRING
    return components
