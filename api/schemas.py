"""Request schemas (marshmallow): the one place a movie script is validated.

Fields are strict about JSON types: "5" is not a number and true is not 1, and the
message says what was expected and what arrived ("Expected number, received
string"). Loading fills in every default, so the dict that comes out is the
normalised script that the job records and the renderer renders.

Errors are reported as the first failing path in the contract's dotted form
(`scenes.0.duration`), see `first_error`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from domain.script import DEFAULTS, LIMITS, POSITIONS, QUALITIES

COLOUR_PATTERN = r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$"
COLOUR_MESSAGE = "Expected a hex colour like #RRGGBB"


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _typed_messages(expected: str) -> dict[str, str]:
    return {
        "required": "Required field is missing",
        "null": f"Expected {expected}, received null",
    }


class Number(fields.Field):
    expected = "number"
    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("number")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"Expected {self.expected}, received {json_type(value)}")
        if not math.isfinite(value):
            raise ValidationError("Expected a finite number")
        return value


class Integer(Number):
    expected = "integer"
    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("integer")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        number = super()._deserialize(value, attr, data, **kwargs)
        if isinstance(value, float) and not number.is_integer():
            raise ValidationError(f"Expected integer, received {value}")
        return int(number)


class String(fields.String):
    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("string")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError(f"Expected string, received {json_type(value)}")
        return value


class List(fields.List):
    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("array")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, list):
            raise ValidationError(f"Expected array, received {json_type(value)}")
        return super()._deserialize(value, attr, data, **kwargs)


class Nested(fields.Nested):
    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("object")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError(f"Expected object, received {json_type(value)}")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictSchema(Schema):
    class Meta:
        # A misspelt field is an error, not something silently ignored.
        unknown = "raise"


def _colour(**kwargs: Any) -> String:
    return String(validate=validate.Regexp(COLOUR_PATTERN, error=COLOUR_MESSAGE), **kwargs)


def _between(low: float, high: float) -> validate.Range:
    return validate.Range(min=low, max=high, error=f"Must be between {low} and {high}")


class TextElementSchema(StrictSchema):
    type = String(required=True, validate=validate.Equal("text"))
    text = String(
        required=True,
        validate=validate.Length(
            min=1,
            max=LIMITS.max_text_length,
            error=f"Must be 1 to {LIMITS.max_text_length} characters",
        ),
    )
    font_size = Integer(
        load_default=DEFAULTS["font_size"],
        validate=_between(LIMITS.min_font_size, LIMITS.max_font_size),
    )
    color = _colour(load_default=DEFAULTS["color"])
    position = String(
        load_default=DEFAULTS["position"],
        validate=validate.OneOf(POSITIONS, error=f"Expected one of: {', '.join(POSITIONS)}"),
    )


ELEMENT_SCHEMAS: dict[str, type[Schema]] = {"text": TextElementSchema}


class Element(fields.Field):
    """One scene element, validated by the schema its `type` names."""

    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("object")

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError(f"Expected object, received {json_type(value)}")
        kind = value.get("type")
        if kind is None:
            raise ValidationError({"type": ["Required field is missing"]})
        schema = ELEMENT_SCHEMAS.get(kind) if isinstance(kind, str) else None
        if schema is None:
            supported = ", ".join(ELEMENT_SCHEMAS)
            raise ValidationError(
                {"type": [f"Unsupported element type; expected one of: {supported}"]}
            )
        return schema().load(value)


class SceneSchema(StrictSchema):
    duration = Number(
        required=True,
        validate=validate.Range(
            min=0,
            min_inclusive=False,
            max=LIMITS.max_scene_duration,
            error=f"Must be more than 0 and at most {LIMITS.max_scene_duration} seconds",
        ),
    )
    background = _colour(load_default=DEFAULTS["background"])
    elements = List(
        Element(),
        load_default=list,
        validate=validate.Length(
            max=LIMITS.max_elements_per_scene,
            error=f"At most {LIMITS.max_elements_per_scene} elements per scene",
        ),
    )


def _even(value: int) -> None:
    if value % 2:
        raise ValidationError("Must be an even number (H.264 video needs even dimensions)")


class MovieScriptSchema(StrictSchema):
    width = Integer(
        load_default=DEFAULTS["width"],
        validate=[_between(LIMITS.min_dimension, LIMITS.max_width), _even],
    )
    height = Integer(
        load_default=DEFAULTS["height"],
        validate=[_between(LIMITS.min_dimension, LIMITS.max_height), _even],
    )
    fps = Number(load_default=DEFAULTS["fps"], validate=_between(LIMITS.min_fps, LIMITS.max_fps))
    quality = String(
        load_default=DEFAULTS["quality"],
        validate=validate.OneOf(QUALITIES, error=f"Expected one of: {', '.join(QUALITIES)}"),
    )
    scenes = List(
        Nested(SceneSchema),
        required=True,
        validate=validate.Length(
            min=1,
            max=LIMITS.max_scenes,
            error=f"Must contain 1 to {LIMITS.max_scenes} scenes",
        ),
    )

    @validates_schema(skip_on_field_errors=True)
    def total_duration(self, data: dict[str, Any], **kwargs: Any) -> None:
        total = sum(scene["duration"] for scene in data["scenes"])
        if total > LIMITS.max_total_duration:
            raise ValidationError(
                f"Total duration {total:g} s is over the limit of {LIMITS.max_total_duration:g} s",
                field_name="scenes",
            )


class RenderRequestSchema(MovieScriptSchema):
    webhook_uri = String(
        load_default=None,
        allow_none=True,
        validate=validate.URL(
            schemes={"http", "https"},
            require_tld=False,
            error="Expected an absolute http(s) URL",
        ),
    )
    exports = List(
        fields.Raw(),
        load_default=list,
        validate=validate.Length(
            max=0, error="Export targets are not supported by this server yet"
        ),
    )


def first_error(messages: Any, prefix: str = "") -> tuple[str, str]:
    """The first failing (dotted path, message) in marshmallow's nested error dict."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                return first_error(value, prefix)
            path = f"{prefix}.{key}" if prefix else str(key)
            return first_error(value, path)
    if isinstance(messages, list) and messages:
        return first_error(messages[0], prefix)
    return prefix, str(messages)


def load_render_request(body: Any) -> tuple[dict[str, Any], str | None]:
    """Validate a render request; return (normalised script, webhook_uri).

    Raises ValidationError; `first_error(error.messages)` names the failing path.
    """
    if not isinstance(body, dict):
        raise ValidationError({"": [f"Expected object, received {json_type(body)}"]})
    loaded = RenderRequestSchema().load(body)
    webhook_uri = loaded.pop("webhook_uri")
    loaded.pop("exports")
    return loaded, webhook_uri
