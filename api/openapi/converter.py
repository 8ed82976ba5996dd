"""marshmallow to JSON Schema: the converter, and the render request's JSON Schema.

`new_spec()` is apispec's MarshmallowPlugin taught our own field classes (strict JSON
types, the element union, the colour-or-media background, `multipleOf`, exclusive
minimums, the types of a template's variables), so the schemas that validate requests
are what we publish: there is no second, hand-written copy of a rule to drift. What
JSON Schema cannot say (rules relating two fields) is published as text in the
schema's description and in `x-phantomflow-cross-field-rules`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import Schema, fields, validate

from phantomflow.api.schemas import (
    COLOUR_PATTERN,
    COMPONENT,
    CROSS_FIELD_RULES,
    END,
    WEBHOOK_URI,
    Background,
    Boolean,
    Element,
    ExportTarget,
    FontFamily,
    Integer,
    MediaBackgroundSchema,
    Metadata,
    MultipleOf,
    Number,
    RenderRequestSchema,
    TypedObject,
    exports_field,
)
from phantomflow.api.template_schemas import VariableValues
from phantomflow.domain import metadata as job_metadata

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "PhantomFlow"
VERSION = "1.0.0"
COMPONENTS = "#/components/schemas/"


def schema_name(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name.removesuffix("Schema") or name


def _strict_fields(converter: OpenAPIConverter, field: fields.Field, **kwargs: Any) -> dict:
    """Our field classes and validators: references to named components (COMPONENT),
    the unions told apart by `type` (elements, export targets), the background union,
    multipleOf, exclusive bounds, the types of a template's variables."""
    ret: dict[str, Any] = kwargs["ret"]
    if COMPONENT in field.metadata:
        # A reference, with what is said of this use of it (not the component's rule),
        # and null if this use allows it and the component does not.
        name = field.metadata[COMPONENT]
        kept = {key: ret[key] for key in ("description", "default") if key in ret}
        ret.clear()
        ref = {"$ref": COMPONENTS + name}
        rule = converter.spec.components.schemas[name]
        if field.allow_none and "null" not in rule.get("type", ()):
            return {"anyOf": [ref, {"type": "null"}], **kept}
        return {**ref, **kept}
    if isinstance(field, TypedObject):  # scene elements, export targets
        ret.pop("type", None)
        return {
            "oneOf": [converter.resolve_nested_schema(schema) for schema in field.schemas.values()]
        }
    if isinstance(field, Metadata):
        return {
            "maxProperties": job_metadata.MAX_KEYS,
            "propertyNames": {"pattern": f"^{job_metadata.KEY_PATTERN}{END}"},
            "additionalProperties": {"maxLength": job_metadata.MAX_STRING},
        }
    if isinstance(field, Background):
        ret.pop("type", None)
        return {
            "oneOf": [
                {"type": "string", "pattern": COLOUR_PATTERN},
                converter.resolve_nested_schema(MediaBackgroundSchema),
            ]
        }
    extra: dict[str, Any] = {}
    for validator in field.validators:
        if isinstance(validator, FontFamily):
            extra["anyOf"] = [{"enum": list(validator.families)}, {"pattern": validator.pattern}]
        if isinstance(validator, MultipleOf):
            extra["multipleOf"] = validator.base
        if isinstance(validator, VariableValues):
            extra["additionalProperties"] = {"type": list(validator.json_types)}
        if not isinstance(validator, validate.Range):
            continue
        if validator.min is not None and not validator.min_inclusive:
            ret.pop("minimum", None)
            extra["exclusiveMinimum"] = validator.min
        if validator.max is not None and not validator.max_inclusive:
            ret.pop("maximum", None)
            extra["exclusiveMaximum"] = validator.max
    return extra


def new_spec() -> APISpec:
    """An empty OpenAPI 3.1 document whose converter knows our field classes."""
    plugin = MarshmallowPlugin(schema_name_resolver=schema_name)
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={
            "description": "Video rendering API: JSON movie scripts in, MP4s out.",
        },
    )
    converter = plugin.converter
    assert converter is not None
    converter.map_to_openapi_type(Number, "number", None)
    converter.map_to_openapi_type(Integer, "integer", None)
    converter.map_to_openapi_type(Boolean, "boolean", None)
    converter.map_to_openapi_type(Element, "object", None)
    converter.map_to_openapi_type(ExportTarget, "object", None)
    converter.map_to_openapi_type(Background, None, None)
    converter.map_to_openapi_type(Metadata, "object", None)
    converter.add_attribute_function(_strict_fields)
    # Components that fields name (COMPONENT), before the schemas that use them.
    spec.components.schema("WebhookUri", component=converter.field2property(WEBHOOK_URI))
    spec.components.schema("Exports", component=converter.field2property(exports_field()))
    return spec


def converter_of(spec: APISpec) -> OpenAPIConverter:
    """The marshmallow converter of a spec made by `new_spec`."""
    (plugin,) = (plugin for plugin in spec.plugins if isinstance(plugin, MarshmallowPlugin))
    assert plugin.converter is not None
    return plugin.converter


def _rewrite_refs(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {
            key: (value.replace(old, new, 1) if key == "$ref" else _rewrite_refs(value, old, new))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item, old, new) for item in node]
    return node


@functools.cache
def _render_json_schema() -> dict[str, Any]:
    spec = new_spec()
    spec.components.schema("RenderRequest", schema=RenderRequestSchema)
    components = spec.to_dict()["components"]["schemas"]
    definitions = _rewrite_refs(components, COMPONENTS, "#/$defs/")
    root = definitions.pop("RenderRequest")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": "https://phantomflow.dev/schemas/render-request.json",
        "title": "PhantomFlow render request (movie script)",
        "description": (
            "The body of POST /api/render. Beyond this schema, the server also checks: "
            + " ".join(CROSS_FIELD_RULES)
        ),
        "x-phantomflow-cross-field-rules": list(CROSS_FIELD_RULES),
        **root,
        "$defs": definitions,
    }


def render_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a render request. A fresh copy each call."""
    return copy.deepcopy(_render_json_schema())
