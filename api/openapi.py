"""The published schemas, generated from the marshmallow schemas that validate requests.

- `render_json_schema()`: the JSON Schema (draft 2020-12) of the render request body,
  served by `GET /api/render/schema`.
- `openapi_document()`: the OpenAPI 3.1 document of every route, served by
  `GET /api/openapi.json`.

Both come out of apispec's MarshmallowPlugin run over `api/schemas.py`, so there is no
second, hand-written copy of a rule to drift. Our own field classes (strict JSON types,
the element union, the colour-or-media background, `multipleOf`, exclusive minimums)
are taught to the converter below. What JSON Schema cannot say (rules relating two
fields) is published as text in the schema's description and in
`x-phantomflow-cross-field-rules`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import marshmallow
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import Schema, validate

from api.schemas import (
    COLOUR_PATTERN,
    CROSS_FIELD_RULES,
    ELEMENT_SCHEMAS,
    Background,
    Boolean,
    Element,
    Integer,
    MediaBackgroundSchema,
    MultipleOf,
    Number,
    RenderRequestSchema,
)

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "PhantomFlow"
VERSION = "1.0.0"


def _schema_name(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name.removesuffix("Schema") or name


def _strict_fields(
    converter: OpenAPIConverter, field: marshmallow.fields.Field, **kwargs: Any
) -> dict:
    """Our field classes: the element union, the background union, multipleOf, exclusive bounds."""
    ret: dict[str, Any] = kwargs["ret"]
    if isinstance(field, Element):
        ret.pop("type", None)
        return {
            "oneOf": [
                converter.resolve_nested_schema(schema) for schema in ELEMENT_SCHEMAS.values()
            ]
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
        if isinstance(validator, MultipleOf):
            extra["multipleOf"] = validator.base
        if not isinstance(validator, validate.Range):
            continue
        if validator.min is not None and not validator.min_inclusive:
            ret.pop("minimum", None)
            extra["exclusiveMinimum"] = validator.min
        if validator.max is not None and not validator.max_inclusive:
            ret.pop("maximum", None)
            extra["exclusiveMaximum"] = validator.max
    return extra


def _spec() -> tuple[APISpec, MarshmallowPlugin]:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
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
    converter.map_to_openapi_type(Background, None, None)
    converter.add_attribute_function(_strict_fields)
    return spec, plugin


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
    spec, _ = _spec()
    spec.components.schema("RenderRequest", schema=RenderRequestSchema)
    components = spec.to_dict()["components"]["schemas"]
    definitions = _rewrite_refs(components, "#/components/schemas/", "#/$defs/")
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


# ---------------------------------------------------------------- OpenAPI 3.1


class ResponseSchema(Schema):
    """Responses may gain fields; clients should ignore the ones they do not know."""

    class Meta:
        unknown = marshmallow.INCLUDE


class ErrorDetailSchema(ResponseSchema):
    code = marshmallow.fields.String(required=True, metadata={"example": "NOT_FOUND"})
    message = marshmallow.fields.String(required=True)
    path = marshmallow.fields.String(
        metadata={"description": "The failing field, dotted (validation errors)."}
    )
    required = marshmallow.fields.Integer(metadata={"description": "INSUFFICIENT_CREDITS"})
    balance = marshmallow.fields.Integer(metadata={"description": "INSUFFICIENT_CREDITS"})
    request_id = marshmallow.fields.String(metadata={"description": "INTERNAL_ERROR"})


class ErrorSchema(ResponseSchema):
    error = marshmallow.fields.Nested(ErrorDetailSchema, required=True)


class SubmittedSchema(ResponseSchema):
    job_id = marshmallow.fields.UUID(required=True)
    status = marshmallow.fields.String(required=True, metadata={"enum": ["queued"]})
    estimated_credits = marshmallow.fields.Integer(required=True)
    credits_remaining = marshmallow.fields.Integer(required=True)


class JobErrorSchema(ResponseSchema):
    code = marshmallow.fields.String(required=True)
    message = marshmallow.fields.String(required=True)


class JobSchema(ResponseSchema):
    job_id = marshmallow.fields.UUID(required=True)
    status = marshmallow.fields.String(
        required=True, metadata={"enum": ["queued", "processing", "completed", "failed"]}
    )
    progress = marshmallow.fields.Float(required=True, metadata={"minimum": 0, "maximum": 1})
    stage = marshmallow.fields.String(
        allow_none=True,
        metadata={
            "description": "starting, downloading, rendering_scene_N, stitching, encoding,"
            " complete or failed"
        },
    )
    output_uri = marshmallow.fields.String(allow_none=True)
    poster_uri = marshmallow.fields.String(
        allow_none=True, metadata={"description": "A JPEG frame of the video."}
    )
    duration_seconds = marshmallow.fields.Float(allow_none=True)
    file_size_bytes = marshmallow.fields.Integer(allow_none=True)
    estimated_credits = marshmallow.fields.Integer(required=True)
    credits_used = marshmallow.fields.Integer(allow_none=True)
    error = marshmallow.fields.Nested(JobErrorSchema, allow_none=True)
    webhook_uri = marshmallow.fields.String(allow_none=True)
    sandbox = marshmallow.fields.Boolean(
        metadata={"description": "Submitted with a ve_test_ key: not rendered, not charged."}
    )
    created_at = marshmallow.fields.String(required=True, metadata={"format": "date-time"})
    started_at = marshmallow.fields.String(allow_none=True, metadata={"format": "date-time"})
    updated_at = marshmallow.fields.String(allow_none=True, metadata={"format": "date-time"})
    completed_at = marshmallow.fields.String(allow_none=True, metadata={"format": "date-time"})


class JobListSchema(ResponseSchema):
    jobs = marshmallow.fields.List(marshmallow.fields.Nested(JobSchema), required=True)
    total = marshmallow.fields.Integer(required=True)
    page = marshmallow.fields.Integer(required=True)
    limit = marshmallow.fields.Integer(required=True)


class JobEventsSchema(ResponseSchema):
    job_id = marshmallow.fields.UUID(required=True)
    events = marshmallow.fields.List(
        marshmallow.fields.Dict(), required=True, metadata={"description": "As stored."}
    )


class CreditsSchema(ResponseSchema):
    credits = marshmallow.fields.Integer(required=True)
    currency = marshmallow.fields.String(required=True, metadata={"enum": ["credits"]})


class BalanceAtSchema(CreditsSchema):
    at = marshmallow.fields.String(required=True)
    account_version = marshmallow.fields.Integer(required=True)


class LedgerSchema(ResponseSchema):
    entries = marshmallow.fields.List(marshmallow.fields.Dict(), required=True)
    totals = marshmallow.fields.Dict(required=True)
    total = marshmallow.fields.Integer(required=True)
    page = marshmallow.fields.Integer(required=True)
    limit = marshmallow.fields.Integer(required=True)


def _query(name: str, kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "in": "query",
        "name": name,
        "required": False,
        "description": description,
        "schema": {"type": kind, **extra},
    }


def _json(schema: str | dict[str, Any], description: str) -> dict[str, Any]:
    body = {"$ref": f"#/components/schemas/{schema}"} if isinstance(schema, str) else schema
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _errors(*statuses: int) -> dict[str, Any]:
    described = {
        400: "Invalid request (INVALID_JSON, SCHEMA_VALIDATION_ERROR, INVALID_REQUEST)",
        401: "UNAUTHORIZED: missing or invalid API key",
        402: "INSUFFICIENT_CREDITS",
        403: "FORBIDDEN",
        404: "NOT_FOUND",
        413: "Request body larger than 2 MiB",
        500: "INTERNAL_ERROR",
    }
    return {str(status): _json("Error", described[status]) for status in statuses}


JOB_ID = {
    "in": "path",
    "name": "job_id",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
PAGE = _query("page", "integer", "Page number, 1-based.", minimum=1, default=1)

# Every route the app serves: (method, path) -> operation. tests/test_openapi.py checks
# that the app has no route missing from here.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/render"): {
        "summary": "Submit a render job with a full movie script",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RenderRequest"}}
            },
        },
        "responses": {
            "202": _json("Submitted", "Queued; the estimate is charged"),
            **_errors(400, 401, 402, 403, 413, 500),
        },
    },
    ("get", "/api/render/schema"): {
        "summary": "The JSON Schema (draft 2020-12) of the render request body",
        "security": [],
        "responses": {
            "200": {
                "description": "JSON Schema",
                "content": {"application/schema+json": {"schema": {"type": "object"}}},
            }
        },
    },
    ("get", "/api/openapi.json"): {
        "summary": "This OpenAPI document",
        "security": [],
        "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document")},
    },
    ("get", "/api/jobs"): {
        "summary": "List your render jobs, newest first",
        "parameters": [
            PAGE,
            _query("limit", "integer", "Items per page.", minimum=1, maximum=100, default=20),
            _query(
                "status",
                "string",
                "Only jobs in this status.",
                enum=["queued", "processing", "completed", "failed"],
            ),
        ],
        "responses": {"200": _json("JobList", "A page of jobs"), **_errors(400, 401, 500)},
    },
    ("get", "/api/jobs/{job_id}"): {
        "summary": "One job's status",
        "parameters": [JOB_ID],
        "responses": {"200": _json("Job", "The job"), **_errors(401, 404, 500)},
    },
    ("get", "/api/jobs/{job_id}/events"): {
        "summary": "One job's whole event history, as stored",
        "parameters": [JOB_ID],
        "responses": {"200": _json("JobEvents", "The events"), **_errors(401, 404, 500)},
    },
    ("get", "/api/credits"): {
        "summary": "Your credit balance",
        "responses": {"200": _json("Credits", "The balance"), **_errors(401, 500)},
    },
    ("get", "/api/credits/balance"): {
        "summary": "Your credit balance at an instant",
        "parameters": [{**_query("at", "string", "ISO 8601 instant."), "required": True}],
        "responses": {
            "200": _json("BalanceAt", "The balance then"),
            **_errors(400, 401, 500),
        },
    },
    ("get", "/api/credits/ledger"): {
        "summary": "Your credit ledger (JSON pages or a CSV download)",
        "parameters": [
            _query("from", "string", "ISO 8601 instant, inclusive."),
            _query("to", "string", "ISO 8601 instant."),
            _query("job_id", "string", "Only entries for this job."),
            _query("type", "string", "Only entries of this type."),
            _query("format", "string", "json (default) or csv.", enum=["json", "csv"]),
            PAGE,
            _query("limit", "integer", "Items per page.", minimum=1, maximum=1000, default=50),
        ],
        "responses": {
            "200": {
                "description": "Ledger entries",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Ledger"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            **_errors(400, 401, 500),
        },
    },
    ("get", "/outputs/{name}"): {
        "summary": "A rendered MP4 or its JPEG poster (no key: the name is unguessable)",
        "security": [],
        "parameters": [
            {"in": "path", "name": "name", "required": True, "schema": {"type": "string"}}
        ],
        "responses": {
            "200": {
                "description": "The file",
                "content": {
                    "video/mp4": {"schema": {"type": "string", "contentMediaType": "video/mp4"}},
                    "image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg"}},
                },
            },
            **_errors(404),
        },
    },
}

RESPONSE_SCHEMAS: dict[str, type[Schema]] = {
    "Error": ErrorSchema,
    "Submitted": SubmittedSchema,
    "Job": JobSchema,
    "JobList": JobListSchema,
    "JobEvents": JobEventsSchema,
    "Credits": CreditsSchema,
    "BalanceAt": BalanceAtSchema,
    "Ledger": LedgerSchema,
}


@functools.cache
def _openapi_document() -> dict[str, Any]:
    spec, _ = _spec()
    spec.components.security_scheme(
        "ApiKey", {"type": "apiKey", "in": "header", "name": "x-api-key"}
    )
    spec.components.schema("RenderRequest", schema=RenderRequestSchema)
    for name, schema in RESPONSE_SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    for (method, path), operation in OPERATIONS.items():
        spec.path(path=path, operations={method: operation})
    document = spec.to_dict()
    document["security"] = [{"ApiKey": []}]
    document["jsonSchemaDialect"] = JSON_SCHEMA_DIALECT
    return document


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route. A fresh copy each call."""
    return copy.deepcopy(_openapi_document())
