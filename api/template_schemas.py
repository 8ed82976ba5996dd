"""Request bodies of the template routes, and the check of a template's script.

Error codes (see docs/api.md, "Templates"):

- INVALID_REQUEST: the body is not an object, a required field is missing, a field has
  the wrong JSON type, or a field is unknown;
- VALIDATION_ERROR: a field has the right type but a value we refuse (an empty name, a
  variable whose value is an object);
- SCHEMA_VALIDATION_ERROR: the template's script, with `path` into the request body
  (`script.scenes.0.duration`).

A template's script is validated with the render schema itself (`load_render_request`),
forgiving only errors at fields whose value holds a `{{placeholder}}`: such a field can
only be judged once its variable has a value, and the substituted script is validated
again, completely, when it is rendered. Everything else (unknown fields, missing
scenes, a width of 321, a bad colour that has no placeholder) is refused at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError

from api.errors import ApiError, invalid_request, schema_error
from api.schemas import json_type, load_render_request
from domain.substitution import Value, has_placeholder, is_value

Path = tuple[str | int, ...]

CREATE_FIELDS = ("name", "script", "is_public")
RENDER_FIELDS = ("template_id", "variables", "template_version", "webhook_uri")


def validation_error(message: str, path: str, **details: Any) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, path=path, **details)


@dataclass(frozen=True)
class TemplateFields:
    """The fields a create or update request gave (None: not given)."""

    name: str | None
    script: dict[str, Any] | None
    is_public: bool | None


@dataclass(frozen=True)
class TemplateRenderRequest:
    template_id: str
    variables: dict[str, Value]
    template_version: int | None
    webhook_uri: Any


def _object(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid_request(f"Expected a JSON object, received {json_type(body)}.", path="")
    for key in body:
        if key not in allowed:
            raise invalid_request(
                f"Unknown field; expected one of: {', '.join(allowed)}.", path=str(key)
            )
    return body


def _typed(body: dict[str, Any], name: str, kind: type, expected: str) -> Any:
    value = body.get(name)
    if value is None:
        if name in body:
            raise invalid_request(f"{name} must be {expected}, not null.", path=name)
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise invalid_request(f"Expected {expected}, received {json_type(value)}.", path=name)
    return value


@dataclass(frozen=True)
class NewTemplate:
    name: str
    script: dict[str, Any]
    is_public: bool


def parse_template_changes(body: Any) -> TemplateFields:
    """An update request: any of name, script and is_public."""
    fields = _object(body, CREATE_FIELDS)
    name = _typed(fields, "name", str, "string")
    script = _typed(fields, "script", dict, "object")
    is_public = _typed(fields, "is_public", bool, "boolean")
    if name is not None and not name.strip():
        raise validation_error("Template name must not be empty.", path="name")
    if script is not None:
        check_template_script(script)
    return TemplateFields(name=name, script=script, is_public=is_public)


def parse_new_template(body: Any) -> NewTemplate:
    """A create request: name and script required, is_public false unless given."""
    for required in ("name", "script"):
        if isinstance(body, dict) and body.get(required) is None:
            raise invalid_request(f"{required} is required.", path=required)
    fields = parse_template_changes(body)
    assert fields.name is not None and fields.script is not None  # checked above
    return NewTemplate(name=fields.name, script=fields.script, is_public=bool(fields.is_public))


def parse_render_request(body: Any) -> TemplateRenderRequest:
    fields = _object(body, RENDER_FIELDS)
    if fields.get("template_id") in (None, ""):
        raise invalid_request("template_id is required.", path="template_id")
    template_id = _typed(fields, "template_id", str, "string")
    variables = _typed(fields, "variables", dict, "object") or {}
    for name, value in variables.items():
        if not is_value(value):
            raise validation_error(
                "A variable's value must be a string, a number or a boolean;"
                f" received {json_type(value)}.",
                path=f"variables.{name}",
            )
    version = _typed(fields, "template_version", int, "integer")
    if version is not None and version < 1:
        raise validation_error("template_version must be 1 or more.", path="template_version")
    return TemplateRenderRequest(
        template_id=template_id,
        variables=variables,
        template_version=version,
        webhook_uri=fields.get("webhook_uri"),
    )


# --- the script of a template --------------------------------------------------------


def leaf_errors(messages: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every (path, message) in marshmallow's nested error messages, in order."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            yield from leaf_errors(value, path if key == "_schema" else (*path, key))
    elif isinstance(messages, list):
        for item in messages:
            yield from leaf_errors(item, path)
    else:
        yield path, str(messages)


def value_at(script: Any, path: Path) -> Any:
    """The value at `path` in `script`, or None when there is none."""
    node = script
    for key in path:
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and str(key).isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def dotted(path: Path) -> str:
    return ".".join(str(key) for key in path)


def forgivable(script: dict[str, Any], path: Path, message: str) -> bool:
    """An error about a value that a variable will provide (not about a field's name)."""
    return not message.startswith("Unknown field") and has_placeholder(value_at(script, path))


def check_template_script(script: dict[str, Any]) -> None:
    """Raise SCHEMA_VALIDATION_ERROR (path `script.…`) unless the script would be valid
    given suitable values for its placeholders, as far as that can be known now."""
    try:
        load_render_request(script)
    except ValidationError as error:
        for path, message in leaf_errors(error.messages):
            if not forgivable(script, path, message):
                raise schema_error(dotted(("script", *path)), message) from None
