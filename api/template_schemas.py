"""Request bodies of the template routes, and the check of a template's script.

The bodies are marshmallow schemas (`NewTemplateSchema`, `TemplateChangesSchema`,
`TemplateRenderRequestSchema`): they validate the requests and are what the OpenAPI
document publishes (`api/openapi/`), so the two cannot drift.

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
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate

from phantomflow.api.errors import ApiError, invalid_request, schema_error
from phantomflow.api.schemas import (
    COMPONENT,
    Boolean,
    Integer,
    Metadata,
    StrictSchema,
    String,
    first_error,
    json_type,
    load_render_request,
)
from phantomflow.domain.substitution import Value, has_placeholder, is_value
from phantomflow.domain.templates import MAX_NAME_LENGTH

Path = tuple[str | int, ...]


def validation_error(message: str, path: str, **details: Any) -> ApiError:
    return ApiError.of("VALIDATION_ERROR", message, path=path, **details)


# --- fields --------------------------------------------------------------------------


class JsonObject(fields.Dict):
    """A JSON object, strictly (not any mapping), kept as it came."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "required": "Required field is missing",
        "null": "Expected object, received null",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError(f"Expected object, received {json_type(value)}")
        return value


class VariableValues(validate.Validator):
    """Each variable's value is a string, a number or a boolean (`is_value`); published
    as the object's `additionalProperties`."""

    json_types = ("string", "number", "boolean")

    def __call__(self, value: dict[str, Any]) -> dict[str, Any]:
        for name, item in value.items():
            if not is_value(item):
                # Keyed by the variable, so the error's path is `variables.<name>`.
                raise ValidationError(
                    {
                        name: [
                            "A variable's value must be a string, a number or a boolean;"
                            f" received {json_type(item)}."
                        ]
                    }
                )
        return value


# Exactly the characters str.isspace() is true of (str.strip() removes these).
STRIPPED = r"[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


def _name(**kwargs: Any) -> String:
    return String(
        # The domain strips the name (str.strip()) and limits what is left
        # (domain/templates.py). What str.strip() removes is spelled out: Python's `\s`
        # and the published pattern's (ECMA-262) disagree on a few characters (U+0085,
        # U+001C to U+001F), so a name of them alone passed the one and not the other.
        validate=validate.Regexp(
            f"^{STRIPPED}*[^{STRIPPED[1:-1]}]", error="Template name must not be empty."
        ),
        metadata={
            "description": "Surrounding spaces are removed; what is left must be 1 to"
            f" {MAX_NAME_LENGTH} characters (VALIDATION_ERROR otherwise)."
        },
        **kwargs,
    )


def _script(**kwargs: Any) -> JsonObject:
    return JsonObject(
        metadata={
            COMPONENT: "TemplateScript",
            "description": "A movie script: the body of POST /api/render (RenderRequest),"
            " where any value may hold {{variable}} placeholders. Checked with the render"
            " schema except where a value holds a placeholder (SCHEMA_VALIDATION_ERROR,"
            " path `script.…`); the substituted script is checked in full when rendered.",
        },
        **kwargs,
    )


# --- request bodies --------------------------------------------------------------------


class NewTemplateSchema(StrictSchema):
    """The body of POST /api/templates."""

    name = _name(required=True)
    script = _script(required=True)
    is_public = Boolean(
        load_default=False,
        metadata={"description": "Whether other accounts may read and render it."},
    )


class TemplateChangesSchema(StrictSchema):
    """The body of PUT and PATCH /api/templates/{template_id}: only the fields given
    change."""

    name = _name()
    script = _script()
    is_public = Boolean()


class TemplateRenderRequestSchema(StrictSchema):
    """The body of POST /api/render/template."""

    template_id = String(
        required=True,
        validate=validate.Length(min=1, error="template_id must not be empty."),
        metadata={"description": "`tpl_` and 32 hex digits: yours, or a public template."},
    )
    variables = JsonObject(
        load_default=dict,
        validate=VariableValues(),
        metadata={"description": "Values for the script's {{placeholders}}."},
    )
    template_version = Integer(
        validate=validate.Range(min=1, error="template_version must be 1 or more."),
        metadata={"description": "Render this version rather than the latest."},
    )
    # Any value here is put into the substituted script and judged with it by the
    # render schema (SCHEMA_VALIDATION_ERROR), as in POST /api/render.
    webhook_uri = fields.Raw(
        load_default=None,
        allow_none=True,
        metadata={
            COMPONENT: "WebhookUri",
            "description": "Overrides a webhook_uri in the template's script.",
        },
    )
    exports = fields.Raw(
        load_default=None,
        allow_none=True,
        metadata={
            COMPONENT: "Exports",
            "description": "Overrides the exports in the template's script.",
        },
    )
    metadata = Metadata(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "The job's metadata (as in POST /api/render); replaces a metadata"
            " in the template's script."
        },
    )


# --- loading a body ----------------------------------------------------------------------


def load_body(schema: Schema, body: Any, prefix: str = "") -> dict[str, Any]:
    """`body` loaded with `schema`; or the error about its first problem, where a
    missing, unknown or mistyped field (INVALID_REQUEST) comes before a refused value
    (VALIDATION_ERROR). `prefix` is the body's own path in a larger one."""
    if not isinstance(body, dict):
        raise invalid_request(f"Expected a JSON object, received {json_type(body)}.", path=prefix)
    try:
        return schema.load(body)
    except ValidationError as error:
        assert isinstance(error.messages, dict)
        refusals = [
            _refusal(schema, body, name, nested, prefix) for name, nested in error.messages.items()
        ]
        raise next((r for r in refusals if r.code == "INVALID_REQUEST"), refusals[0]) from None


def _refusal(
    schema: Schema, body: dict[str, Any], name: str, messages: Any, prefix: str = ""
) -> ApiError:
    path, message = first_error({name: messages}, prefix)
    field = schema.fields.get(name)
    if field is None:
        return invalid_request(
            f"Unknown field; expected one of: {', '.join(schema.fields)}.", path=path
        )
    if body.get(name) is None or not _has_json_type(field, name, body):
        return invalid_request(message, path=path)
    return validation_error(message, path=path)


def _has_json_type(field: fields.Field, name: str, body: dict[str, Any]) -> bool:
    """Whether the field's value passes its type check (the field's `_deserialize`),
    leaving out its validators: those judge values, not types."""
    try:
        field._deserialize(body[name], name, body)
    except ValidationError:
        return False
    return True


# --- what the handlers get -----------------------------------------------------------


@dataclass(frozen=True)
class TemplateFields:
    """The fields a create or update request gave (None: not given)."""

    name: str | None
    script: dict[str, Any] | None
    is_public: bool | None


@dataclass(frozen=True)
class NewTemplate:
    name: str
    script: dict[str, Any]
    is_public: bool


@dataclass(frozen=True)
class TemplateRenderRequest:
    template_id: str
    variables: dict[str, Value]
    template_version: int | None
    webhook_uri: Any
    metadata: Any  # None: the template's own, if its script has any
    exports: Any = None


def parse_template_changes(body: Any) -> TemplateFields:
    """An update request: any of name, script and is_public."""
    given = load_body(TemplateChangesSchema(), body)
    if given.get("script") is not None:
        check_template_script(given["script"])
    return TemplateFields(
        name=given.get("name"), script=given.get("script"), is_public=given.get("is_public")
    )


def parse_new_template(body: Any) -> NewTemplate:
    """A create request: name and script required, is_public false unless given."""
    given = load_body(NewTemplateSchema(), body)
    check_template_script(given["script"])
    return NewTemplate(**given)


def parse_render_request(body: Any) -> TemplateRenderRequest:
    given = load_body(TemplateRenderRequestSchema(), body)
    return TemplateRenderRequest(
        template_id=given["template_id"],
        variables=given["variables"],
        template_version=given.get("template_version"),  # not given: the latest
        webhook_uri=given["webhook_uri"],
        metadata=given["metadata"],
        exports=given["exports"],
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
