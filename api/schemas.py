"""Request schemas (marshmallow): the one place a movie script is validated.

Fields are strict about JSON types: "5" is not a number and true is not 1, and the
message says what was expected and what arrived ("Expected number, received
string"). Loading fills in every default, so the dict that comes out is the
normalised script that the job records and the renderer renders.

Errors are reported as the first failing path in the contract's dotted form
(`scenes.0.duration`), see `first_error`.

The published JSON Schema (`GET /api/render/schema`) is generated from these same
classes (`api/openapi/converter.py`); the few rules that relate two fields to each other, which
JSON Schema cannot say, are listed in `CROSS_FIELD_RULES` and published with it.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any, ClassVar, NamedTuple

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from phantomflow.domain import metadata as job_metadata
from phantomflow.domain.assets import REF_PATTERN as ASSET_REF_PATTERN
from phantomflow.domain.exports import MAX_EXPORTS
from phantomflow.domain.script import (
    ALIGNMENTS,
    BACKGROUND_MEDIA,
    DEFAULTS,
    FITS,
    FONT_FAMILIES,
    FONT_WEIGHTS,
    LIMITS,
    POSITIONS,
    QUALITIES,
    TRANSITIONS,
    AudioElement,
    ImageElement,
    MediaBackground,
    Soundtrack,
    TextElement,
    Transition,
    VideoElement,
)

# Patterns end in `(?![\s\S])` (nothing follows) rather than `$`: in Python `$` also
# matches before a trailing newline, in JSON Schema (ECMA-262) it does not, and the
# published schema must accept exactly what we accept.
END = r"(?![\s\S])"
COLOUR_PATTERN = r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})" + END
COLOUR_MESSAGE = "Expected a hex colour like #RRGGBB"
# An absolute http(s) URL: a host part without spaces, control characters or
# credentials (`@`), then anything printable. Where it may lead (public addresses
# only, size and time limits) is checked when it is fetched; see adapters/media.py.
HTTP_URL_PATTERN = r"^https?://[^\x00-\x20\x7f/?#@\\]+(?:[/?#][^\x00-\x20\x7f]*)?" + END
HTTP_URL_MESSAGE = "Expected an absolute http(s) URL"
# Where a script names media: a URL as above, or an uploaded asset's id (docs/api.md
# "Assets"); whether the asset may be used there is checked at submission.
MEDIA_SRC_PATTERN = (
    f"^(?:{HTTP_URL_PATTERN.removeprefix('^').removesuffix(END)}|{ASSET_REF_PATTERN})" + END
)
MEDIA_SRC_MESSAGE = "Expected an absolute http(s) URL or an asset id (asset_…)"
ASSET_FONT_PATTERN = "^" + ASSET_REF_PATTERN + END


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
        # Only floats can be infinite; an int too large for a float is still finite.
        if isinstance(value, float) and not math.isfinite(value):
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


class Boolean(fields.Field):
    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("boolean")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError(f"Expected boolean, received {json_type(value)}")
        return value


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
        # The cheap limit first: marshmallow checks a list's length only after loading
        # every item, so 24,000 scenes took most of a second to refuse for being more
        # than 50. Checked here, on the raw list, it costs nothing (same message).
        for validator in self.validators:
            if isinstance(validator, validate.Length):
                validator(value)
        return super()._deserialize(value, attr, data, **kwargs)


class Nested(fields.Nested):
    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("object")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, dict):
            raise ValidationError(f"Expected object, received {json_type(value)}")
        return super()._deserialize(value, attr, data, **kwargs)


class Metadata(fields.Field):
    """The client's own JSON object, within domain/metadata.py's limits. Errors about one
    top-level key are reported at `metadata.<key>`."""

    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("object")

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError(f"Expected object, received {json_type(value)}")
        found = job_metadata.problems(value)
        if found:
            key, message = found[0]
            raise ValidationError({key: [message]} if key else message)
        return value


class StrictSchema(Schema):
    class Meta:
        # A misspelt field is an error, not something silently ignored.
        unknown = "raise"


class MultipleOf(validate.Validator):
    """The value is a whole multiple of `base` (JSON Schema's `multipleOf`)."""

    def __init__(self, base: int, error: str) -> None:
        self.base = base
        self.error = error

    def __call__(self, value: Any) -> Any:
        if value % self.base:
            raise ValidationError(self.error)
        return value


def _colour(**kwargs: Any) -> String:
    return String(validate=validate.Regexp(COLOUR_PATTERN, error=COLOUR_MESSAGE), **kwargs)


def _url(**kwargs: Any) -> String:
    return String(
        validate=[
            validate.Regexp(HTTP_URL_PATTERN, error=HTTP_URL_MESSAGE),
            validate.Length(
                max=LIMITS.max_url_length,
                error=f"URLs are limited to {LIMITS.max_url_length} characters",
            ),
        ],
        **kwargs,
    )


def _media_src() -> String:
    return String(
        required=True,
        validate=[
            validate.Regexp(MEDIA_SRC_PATTERN, error=MEDIA_SRC_MESSAGE),
            validate.Length(
                max=LIMITS.max_url_length,
                error=f"URLs are limited to {LIMITS.max_url_length} characters",
            ),
        ],
    )


class FontFamily(validate.Validator):
    """One of the bundled font families, or an uploaded font asset's id (published as
    `anyOf` an enum and a pattern)."""

    families = FONT_FAMILIES
    pattern = ASSET_FONT_PATTERN

    def __call__(self, value: Any) -> Any:
        if value in self.families or re.match(self.pattern, value):
            return value
        raise ValidationError(
            f"Expected one of: {', '.join(self.families)}, or a font asset's id (asset_…)"
        )


def _between(low: float, high: float) -> validate.Range:
    return validate.Range(min=low, max=high, error=f"Must be between {low:g} and {high:g}")


def _positive(high: float, unit: str = "seconds") -> validate.Range:
    return validate.Range(
        min=0,
        min_inclusive=False,
        max=high,
        error=f"Must be more than 0 and at most {high:g} {unit}",
    )


def _one_of(choices: tuple[str, ...]) -> validate.OneOf:
    return validate.OneOf(choices, error=f"Expected one of: {', '.join(choices)}")


def _seconds(**kwargs: Any) -> Number:
    """A time offset in seconds: 0 up to the longest scene."""
    return Number(validate=_between(0, LIMITS.max_scene_duration), **kwargs)


def _fade(**kwargs: Any) -> Number:
    return Number(load_default=0, validate=_between(0, LIMITS.max_fade), **kwargs)


def _volume() -> Number:
    return Number(load_default=1, validate=_between(0, LIMITS.max_volume))


def _offset(default: int | None) -> Integer:
    return Integer(
        load_default=default,
        allow_none=default is None,
        validate=_between(-LIMITS.max_offset, LIMITS.max_offset),
    )


def _box_size() -> Integer:
    return Integer(load_default=None, allow_none=True, validate=_between(1, LIMITS.max_box_size))


def _type(name: str) -> String:
    return String(required=True, validate=validate.Equal(name, error=f"Expected {name!r}"))


class TimedSchema(StrictSchema):
    """When an element shows inside its scene (cut at the scene's end), and its fades."""

    start = _seconds(load_default=0)
    duration = Number(
        load_default=None, allow_none=True, validate=_positive(LIMITS.max_scene_duration)
    )
    fade_in = _fade()
    fade_out = _fade()


class TextElementSchema(TimedSchema):
    type = _type("text")
    text = String(
        required=True,
        validate=validate.Length(
            min=1,
            max=LIMITS.max_text_length,
            error=f"Must be 1 to {LIMITS.max_text_length} characters",
        ),
    )
    font_family = String(load_default=TextElement.font_family, validate=FontFamily())
    font_weight = String(load_default=TextElement.font_weight, validate=_one_of(FONT_WEIGHTS))
    font_size = Integer(
        load_default=DEFAULTS["font_size"],
        validate=_between(LIMITS.min_font_size, LIMITS.max_font_size),
    )
    color = _colour(load_default=DEFAULTS["color"])
    background_color = _colour(load_default=None, allow_none=True)
    padding = Integer(load_default=TextElement.padding, validate=_between(0, LIMITS.max_padding))
    align = String(load_default=TextElement.align, validate=_one_of(ALIGNMENTS))
    position = String(load_default=DEFAULTS["position"], validate=_one_of(POSITIONS))
    x = _offset(None)
    y = _offset(None)
    max_width = _box_size()


class _TrimmedSchema(TimedSchema):
    trim_start = Number(load_default=0, validate=_between(0, LIMITS.max_trim))
    trim_end = Number(load_default=None, allow_none=True, validate=_positive(LIMITS.max_trim))

    @validates_schema(skip_on_field_errors=True)
    def trim_ends_after_it_starts(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["trim_end"] is not None and data["trim_end"] <= data["trim_start"]:
            raise ValidationError("Must be more than trim_start", field_name="trim_end")


class ImageElementSchema(TimedSchema):
    type = _type("image")
    src = _media_src()
    x = _offset(ImageElement.x)
    y = _offset(ImageElement.y)
    width = _box_size()
    height = _box_size()
    fit = String(load_default=ImageElement.fit, validate=_one_of(FITS))
    opacity = Number(load_default=1, validate=_between(0, 1))


class VideoElementSchema(_TrimmedSchema):
    type = _type("video")
    src = _media_src()
    x = _offset(VideoElement.x)
    y = _offset(VideoElement.y)
    width = _box_size()
    height = _box_size()
    fit = String(load_default=VideoElement.fit, validate=_one_of(FITS))
    opacity = Number(load_default=1, validate=_between(0, 1))
    volume = _volume()
    muted = Boolean(load_default=VideoElement.muted)
    loop = Boolean(load_default=VideoElement.loop)


class AudioElementSchema(_TrimmedSchema):
    type = _type("audio")
    src = _media_src()
    volume = _volume()


ELEMENT_SCHEMAS: dict[str, type[Schema]] = {
    "text": TextElementSchema,
    "image": ImageElementSchema,
    "video": VideoElementSchema,
    "audio": AudioElementSchema,
}
assert (
    set(ELEMENT_SCHEMAS)
    == {"text", "image", "video", "audio"}
    == {cls.type for cls in (TextElement, ImageElement, VideoElement, AudioElement)}
)


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    """One shared instance per schema class. A marshmallow schema holds no per-load
    state, and building one (copying every field) costs more than the load itself."""
    return schema()


class TypedObject(fields.Field):
    """An object validated by the schema its `type` names, from `schemas` (a table that
    may be filled after the class is made)."""

    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("object")
    schemas: ClassVar[dict[str, type[Schema]]] = {}
    noun: ClassVar[str] = "object"

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValidationError(f"Expected object, received {json_type(value)}")
        kind = value.get("type")
        if kind is None:
            raise ValidationError({"type": ["Required field is missing"]})
        schema = self.schemas.get(kind) if isinstance(kind, str) else None
        if schema is None:
            supported = ", ".join(self.schemas)
            message = f"Unsupported {self.noun} type; expected one of: {supported}"
            raise ValidationError({"type": [message]})
        loaded: dict[str, Any] = _instance(schema).load(value)
        return loaded


class Element(TypedObject):
    """One scene element, validated by the schema its `type` names."""

    schemas = ELEMENT_SCHEMAS
    noun = "element"


class MediaBackgroundSchema(StrictSchema):
    type = String(required=True, validate=_one_of(BACKGROUND_MEDIA))
    src = _media_src()
    fit = String(load_default=MediaBackground.fit, validate=_one_of(FITS))
    color = _colour(load_default=MediaBackground.color)
    loop = Boolean(load_default=MediaBackground.loop)


class Background(fields.Field):
    """A scene's background: a hex colour, or an image or video object."""

    default_error_messages: ClassVar[dict[str, str]] = _typed_messages("string or object")
    colour = _colour()

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return self.colour.deserialize(value)
        if isinstance(value, dict):
            return _instance(MediaBackgroundSchema).load(value)
        raise ValidationError(
            f"Expected a hex colour string or a media object, received {json_type(value)}"
        )


class TransitionSchema(StrictSchema):
    type = String(load_default=Transition.type, validate=_one_of(TRANSITIONS))
    duration = Number(
        load_default=Transition.duration, validate=_positive(LIMITS.max_transition_duration)
    )


class SoundtrackSchema(StrictSchema):
    src = _media_src()
    volume = _volume()
    fade_in = _fade()
    fade_out = _fade()


assert Soundtrack.volume == 1 and AudioElement.volume == 1  # _volume()'s default


class SceneSchema(StrictSchema):
    duration = Number(required=True, validate=_positive(LIMITS.max_scene_duration))
    background = Background(load_default=DEFAULTS["background"])
    elements = List(
        Element(),
        load_default=list,
        validate=validate.Length(
            max=LIMITS.max_elements_per_scene,
            error=f"At most {LIMITS.max_elements_per_scene} elements per scene",
        ),
    )
    transition = Nested(TransitionSchema, load_default=None, allow_none=True)


class MovieScriptSchema(StrictSchema):
    width = Integer(
        load_default=DEFAULTS["width"],
        validate=[
            _between(LIMITS.min_dimension, LIMITS.max_width),
            MultipleOf(2, "Must be an even number (H.264 video needs even dimensions)"),
        ],
    )
    height = Integer(
        load_default=DEFAULTS["height"],
        validate=[
            _between(LIMITS.min_dimension, LIMITS.max_height),
            MultipleOf(2, "Must be an even number (H.264 video needs even dimensions)"),
        ],
    )
    fps = Number(load_default=DEFAULTS["fps"], validate=_between(LIMITS.min_fps, LIMITS.max_fps))
    quality = String(load_default=DEFAULTS["quality"], validate=_one_of(QUALITIES))
    scenes = List(
        Nested(SceneSchema),
        required=True,
        validate=validate.Length(
            min=1,
            max=LIMITS.max_scenes,
            error=f"Must contain 1 to {LIMITS.max_scenes} scenes",
        ),
    )
    soundtrack = Nested(SoundtrackSchema, load_default=None, allow_none=True)

    @validates_schema(skip_on_field_errors=True)
    def cross_field_rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        """The rules of CROSS_FIELD_RULES, each reported at the field it names."""
        scenes = data["scenes"]
        for number, scene in enumerate(scenes):
            transition = scene["transition"]
            if transition is None:
                continue
            if number == len(scenes) - 1:
                raise ValidationError(
                    _nest(
                        f"scenes.{number}.transition",
                        "The last scene has no next scene to transition into",
                    )
                )
            shortest = min(scene["duration"], scenes[number + 1]["duration"])
            if transition["duration"] >= shortest:
                raise ValidationError(
                    _nest(
                        f"scenes.{number}.transition.duration",
                        f"Must be shorter than this scene and the next one ({shortest:g} s)",
                    )
                )
        total = sum(scene["duration"] for scene in scenes) - sum(
            scene["transition"]["duration"] for scene in scenes if scene["transition"]
        )
        if total > LIMITS.max_total_duration:
            raise ValidationError(
                f"Total duration {total:g} s is over the limit of {LIMITS.max_total_duration:g} s",
                field_name="scenes",
            )
        seen: set[str] = set()
        for path_, url in _media_urls(data):
            seen.add(url)
            if len(seen) > LIMITS.max_media_sources:
                raise ValidationError(
                    _nest(
                        path_,
                        f"More than {LIMITS.max_media_sources} different media URLs in one script",
                    )
                )


CROSS_FIELD_RULES: tuple[str, ...] = (
    "A scene's transition must be shorter than that scene and the next one;"
    " the last scene has no transition.",
    f"Total duration (scene durations minus transition durations) is at most"
    f" {LIMITS.max_total_duration:g} s.",
    "trim_end, when given, is more than trim_start.",
    f"At most {LIMITS.max_media_sources} different media URLs in one script.",
    f"metadata is at most {job_metadata.MAX_BYTES} bytes as compact UTF-8 JSON.",
)


def _media_urls(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted path, url) of every media URL in a loaded script, in document order."""
    found: list[tuple[str, str]] = []
    for number, scene in enumerate(data["scenes"]):
        background = scene["background"]
        if isinstance(background, dict):
            found.append((f"scenes.{number}.background.src", background["src"]))
        for index, element in enumerate(scene["elements"]):
            if "src" in element:
                found.append((f"scenes.{number}.elements.{index}.src", element["src"]))
    if data.get("soundtrack"):
        found.append(("soundtrack.src", data["soundtrack"]["src"]))
    return found


def _nest(path: str, message: str) -> dict[str, Any]:
    """marshmallow's nested error dict for a dotted path."""
    nested: Any = [message]
    for part in reversed(path.split(".")):
        nested = {int(part) if part.isdigit() else part: nested}
    return nested


# The rule of a webhook URL, wherever a request may give one. Published once, as the
# `WebhookUri` component; the fields that hold one say so with `COMPONENT`.
WEBHOOK_URI = _url(
    allow_none=True,
    metadata={
        "description": "Where to POST the job's outcome when it ends: an absolute http(s)"
        " URL to a public address (see docs/webhooks.md)."
    },
)
# Field metadata: publish the field as a reference to this named component.
COMPONENT = "component"


# Export targets: each `type`'s schema is in api/export_schemas.py, which fills this
# table when it loads (at the end of this module).
EXPORT_TARGET_SCHEMAS: dict[str, type[Schema]] = {}


class ExportTarget(TypedObject):
    """One export target, validated by the schema its `type` names."""

    schemas = EXPORT_TARGET_SCHEMAS
    noun = "export"


def exports_field(**metadata: Any) -> List:
    return List(
        ExportTarget(),
        load_default=list,
        validate=validate.Length(max=MAX_EXPORTS, error=f"At most {MAX_EXPORTS} export targets"),
        metadata={
            "description": "Where the finished MP4 is delivered besides output_uri: one "
            "target per entry, each naming an integration of its type (docs/api.md).",
            **metadata,
        },
    )


class RenderRequestSchema(MovieScriptSchema):
    webhook_uri = _url(load_default=None, allow_none=True, metadata={COMPONENT: "WebhookUri"})
    metadata = Metadata(
        load_default=dict,
        metadata={
            "description": "Your own JSON object, kept with the job and returned with it"
            " (reads, live progress, webhooks)."
        },
    )
    exports = exports_field(**{COMPONENT: "Exports"})


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


class RenderRequest(NamedTuple):
    script: dict[str, Any]  # normalised
    webhook_uri: str | None
    exports: list[dict[str, Any]]
    metadata: dict[str, Any]


def load_render_request(body: Any) -> RenderRequest:
    """Validate a render request; return (normalised script, webhook_uri, exports,
    metadata).

    Raises ValidationError; `first_error(error.messages)` names the failing path.
    """
    if not isinstance(body, dict):
        raise ValidationError({"": [f"Expected object, received {json_type(body)}"]})
    loaded = _instance(RenderRequestSchema).load(body)
    webhook_uri = loaded.pop("webhook_uri")
    exports = loaded.pop("exports")
    given = loaded.pop("metadata")
    return RenderRequest(loaded, webhook_uri, exports, given)


# Fills EXPORT_TARGET_SCHEMAS; last, because it imports from this module.
from phantomflow.api import export_schemas as _export_schemas  # noqa: E402, F401
