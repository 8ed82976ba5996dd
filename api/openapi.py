"""The published schemas, generated from the marshmallow schemas that validate requests.

- `render_json_schema()`: the JSON Schema (draft 2020-12) of the render request body,
  served by `GET /api/render/schema`.
- `openapi_document()`: the OpenAPI 3.1 document of every route, served by
  `GET /api/openapi.json`.

Both come out of apispec's MarshmallowPlugin run over the schemas that validate the
requests (`api/schemas.py`, `api/template_schemas.py`, `api/keys.py`), so there is no
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
from marshmallow import Schema, fields, validate

from phantomflow.adapters.render.look import PREVIEW_MAX_SIDE
from phantomflow.api.dashboard import OPERATIONS as DASHBOARD_OPERATIONS
from phantomflow.api.integration_schemas import NewIntegrationSchema
from phantomflow.api.keys import NewKeySchema
from phantomflow.api.previews import PreviewRenderRequestSchema
from phantomflow.api.schemas import (
    COLOUR_PATTERN,
    CROSS_FIELD_RULES,
    ELEMENT_SCHEMAS,
    END,
    EXPORT_TARGET_SCHEMAS,
    Background,
    Boolean,
    Element,
    ExportTarget,
    Integer,
    MediaBackgroundSchema,
    Metadata,
    MultipleOf,
    Number,
    RenderRequestSchema,
)
from phantomflow.api.template_schemas import (
    NewTemplateSchema,
    TemplateChangesSchema,
    TemplateRenderRequestSchema,
    VariableValues,
)
from phantomflow.domain import metadata as job_metadata
from phantomflow.domain.idempotency import MAX_KEY_LENGTH
from phantomflow.domain.jobs import CANCELLED, STATUSES, WEBHOOK_TRIGGERS
from phantomflow.domain.keys import PREFIXES
from phantomflow.domain.plans import PLANS
from phantomflow.domain.previews import SCENE, TRANSITION
from phantomflow.domain.previews import STATUSES as PREVIEW_STATUSES
from phantomflow.domain.templates import FIELDS as TEMPLATE_FIELDS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "PhantomFlow"
VERSION = "1.0.0"


def _schema_name(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name.removesuffix("Schema") or name


def _strict_fields(converter: OpenAPIConverter, field: fields.Field, **kwargs: Any) -> dict:
    """Our field classes and validators: the element union, the background union,
    multipleOf, exclusive bounds, the types of a template's variables."""
    ret: dict[str, Any] = kwargs["ret"]
    if isinstance(field, Element):
        ret.pop("type", None)
        return {
            "oneOf": [
                converter.resolve_nested_schema(schema) for schema in ELEMENT_SCHEMAS.values()
            ]
        }
    if isinstance(field, ExportTarget):
        ret.pop("type", None)
        return {
            "oneOf": [
                converter.resolve_nested_schema(schema) for schema in EXPORT_TARGET_SCHEMAS.values()
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
    if isinstance(field, Metadata):
        return {
            "maxProperties": job_metadata.MAX_KEYS,
            "propertyNames": {"pattern": f"^{job_metadata.KEY_PATTERN}{END}"},
            "additionalProperties": {"maxLength": job_metadata.MAX_STRING},
        }
    extra: dict[str, Any] = {}
    for validator in field.validators:
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
    converter.map_to_openapi_type(ExportTarget, "object", None)
    converter.map_to_openapi_type(Background, None, None)
    converter.map_to_openapi_type(Metadata, "object", None)
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
#
# Request bodies are the marshmallow schemas that validate them (REQUEST_SCHEMAS).
# Response bodies are described by the schemas below, which no handler uses: the
# tests validate the API's real answers against them (tests/test_openapi.py).


class ResponseSchema(Schema):
    """Responses may gain fields; clients should ignore the ones they do not know."""

    class Meta:
        unknown = marshmallow.INCLUDE


def _instant(description: str | None = None, **kwargs: Any) -> fields.String:
    """An ISO 8601 instant, as the API writes them (UTC, with a Z)."""
    metadata = {"format": "date-time"} | ({"description": description} if description else {})
    return fields.String(metadata=metadata, **kwargs)


# --- errors


class ErrorDetailSchema(ResponseSchema):
    code = fields.String(required=True, metadata={"example": "NOT_FOUND"})
    message = fields.String(required=True)
    path = fields.String(metadata={"description": "The failing field or parameter, dotted."})
    required = fields.Integer(metadata={"description": "INSUFFICIENT_CREDITS"})
    balance = fields.Integer(metadata={"description": "INSUFFICIENT_CREDITS"})
    limit = fields.Integer(metadata={"description": "CONCURRENCY_LIMIT_EXCEEDED"})
    missing = fields.List(
        fields.String(),
        metadata={"description": "VALIDATION_ERROR: the variables a template needs and lacks"},
    )
    request_id = fields.String(metadata={"description": "INTERNAL_ERROR"})


class ErrorSchema(ResponseSchema):
    error = fields.Nested(ErrorDetailSchema, required=True)


# --- renders and jobs


class SubmittedSchema(ResponseSchema):
    job_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"enum": ["queued"]})
    estimated_credits = fields.Integer(required=True)
    credits_remaining = fields.Integer(required=True)


class JobErrorSchema(ResponseSchema):
    code = fields.String(required=True)
    message = fields.String(required=True)


class JobExportSchema(ResponseSchema):
    type = fields.String(required=True, metadata={"enum": list(EXPORT_TARGET_SCHEMAS)})
    integration_id = fields.String(required=True)
    status = fields.String(
        required=True,
        metadata={"enum": ["pending", "running", "succeeded", "failed", "skipped"]},
    )
    location = fields.String(
        allow_none=True, metadata={"description": "Where the file landed (s3://…, sftp://…)."}
    )
    attempts = fields.Integer(required=True)
    error = fields.Nested(JobErrorSchema, allow_none=True)
    next_attempt_at = _instant(allow_none=True)


class JobSchema(ResponseSchema):
    job_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    progress = fields.Float(required=True, metadata={"minimum": 0, "maximum": 1})
    stage = fields.String(
        allow_none=True,
        metadata={
            "description": "starting, downloading, rendering_scene_N, stitching, encoding,"
            " complete or failed"
        },
    )
    output_uri = fields.String(allow_none=True)
    poster_uri = fields.String(
        allow_none=True, metadata={"description": "A JPEG frame of the video."}
    )
    duration_seconds = fields.Float(allow_none=True)
    file_size_bytes = fields.Integer(allow_none=True)
    estimated_credits = fields.Integer(required=True)
    credits_used = fields.Integer(allow_none=True)
    error = fields.Nested(JobErrorSchema, allow_none=True)
    webhook_uri = fields.String(allow_none=True)
    exports = fields.List(
        fields.Nested(JobExportSchema), required=True, metadata={"description": "docs/api.md"}
    )
    output_deleted_at = _instant("When DELETE …/output deleted the files.", allow_none=True)
    metadata = fields.Dict(
        required=True,
        metadata={"description": "The metadata the job was submitted with ({} if none)."},
    )
    sandbox = fields.Boolean(
        metadata={"description": "Submitted with a ve_test_ key: not rendered, not charged."}
    )
    created_at = _instant(required=True)
    started_at = _instant(allow_none=True)
    updated_at = _instant(allow_none=True)
    completed_at = _instant(allow_none=True)


class JobListSchema(ResponseSchema):
    jobs = fields.List(fields.Nested(JobSchema), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    limit = fields.Integer(required=True)


class JobEventsSchema(ResponseSchema):
    job_id = fields.UUID(required=True)
    events = fields.List(fields.Dict(), required=True, metadata={"description": "As stored."})


class CancelledSchema(ResponseSchema):
    job_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"enum": [CANCELLED]})
    credits_used = fields.Integer(
        required=True, metadata={"description": "The share of the video rendered so far."}
    )
    credits_refunded = fields.Integer(required=True)


# --- credits


class CreditsSchema(ResponseSchema):
    credits = fields.Integer(required=True)
    currency = fields.String(required=True, metadata={"enum": ["credits"]})


class PlanLimitsSchema(ResponseSchema):
    requests_per_minute = fields.Integer(required=True)
    concurrent_jobs = fields.Integer(
        required=True, metadata={"description": "Queued and processing jobs at once."}
    )
    previews_per_minute = fields.Integer(
        required=True,
        metadata={"description": "POST /api/previews a minute (counted apart from requests)."},
    )


class CallingKeySchema(ResponseSchema):
    prefix = fields.String(required=True)
    mode = fields.String(required=True, metadata={"enum": list(PREFIXES)})


class AccountSchema(ResponseSchema):
    account_id = fields.UUID(required=True)
    plan = fields.String(required=True, metadata={"enum": list(PLANS)})
    limits = fields.Nested(PlanLimitsSchema, required=True)
    active_jobs = fields.Integer(
        required=True, metadata={"description": "Live jobs counting against the limit now."}
    )
    credits = fields.Integer(required=True)
    key = fields.Nested(
        CallingKeySchema, required=True, metadata={"description": "The key of this request."}
    )


class QuoteSchema(ResponseSchema):
    valid = fields.Boolean(required=True, metadata={"enum": [True]})
    estimated_credits = fields.Integer(required=True)
    credits_remaining = fields.Integer(
        required=True, metadata={"description": "The balance the submission would leave."}
    )
    duration_seconds = fields.Float(
        required=True, metadata={"description": "The movie's length (transitions overlap)."}
    )


class BalanceAtSchema(CreditsSchema):
    at = fields.String(required=True)
    account_version = fields.Integer(required=True)


class LedgerSchema(ResponseSchema):
    entries = fields.List(fields.Dict(), required=True)
    totals = fields.Dict(required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    limit = fields.Integer(required=True)


# --- API keys

KEY_MODES = list(PREFIXES)


class KeySchema(ResponseSchema):
    id = fields.UUID(required=True)
    prefix = fields.String(
        required=True, metadata={"description": "The key's first characters, to recognise it."}
    )
    mode = fields.String(required=True, metadata={"enum": KEY_MODES})
    revoked = fields.Boolean(required=True)


class KeyListSchema(ResponseSchema):
    keys = fields.List(fields.Nested(KeySchema), required=True)


class CreatedKeySchema(ResponseSchema):
    id = fields.UUID(required=True)
    api_key = fields.String(
        required=True, metadata={"description": "The secret: shown in this answer only, ever."}
    )
    prefix = fields.String(required=True)
    mode = fields.String(required=True, metadata={"enum": KEY_MODES})


class RevokedKeySchema(ResponseSchema):
    id = fields.UUID(required=True)
    revoked = fields.Boolean(required=True, metadata={"enum": [True]})


# --- templates


def _template_id(**kwargs: Any) -> fields.String:
    return fields.String(metadata={"description": "`tpl_` and 32 hex digits."}, **kwargs)


class _TemplateHeadSchema(ResponseSchema):
    """What every answer about one template starts with."""

    id = _template_id(required=True)
    name = fields.String(required=True)
    is_public = fields.Boolean(required=True)
    version = fields.Integer(required=True, metadata={"minimum": 1})


class CreatedTemplateSchema(_TemplateHeadSchema):
    created_at = _instant(required=True)


class TemplateSummarySchema(CreatedTemplateSchema):
    updated_at = _instant(required=True)


class TemplateListSchema(ResponseSchema):
    templates = fields.List(
        fields.Nested(TemplateSummarySchema),
        required=True,
        metadata={"description": "Your own templates, newest first, without their scripts."},
    )


class TemplateSchema(TemplateSummarySchema):
    script = fields.Dict(required=True, metadata={"description": "With its {{placeholders}}."})
    variables = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "The placeholders' names, in order of first use."},
    )


class ChangedTemplateSchema(_TemplateHeadSchema):
    updated_at = _instant(required=True)


class IntegrationSecretSchema(ResponseSchema):
    set = fields.Boolean(required=True, metadata={"enum": [True]})
    last4 = fields.String(
        allow_none=True, metadata={"description": "Shown for secrets of 12 characters or more."}
    )


class IntegrationSchema(ResponseSchema):
    id = fields.String(required=True, metadata={"pattern": "^int_[0-9a-f]{32}$"})
    type = fields.String(required=True, metadata={"enum": list(EXPORT_TARGET_SCHEMAS)})
    name = fields.String(required=True)
    settings = fields.Dict(required=True)
    secrets = fields.Dict(
        keys=fields.String(), values=fields.Nested(IntegrationSecretSchema), required=True
    )
    created_at = _instant(required=True)


class IntegrationListSchema(ResponseSchema):
    integrations = fields.List(fields.Nested(IntegrationSchema), required=True)


class DeletedIntegrationSchema(ResponseSchema):
    id = fields.String(required=True)
    deleted = fields.Boolean(required=True, metadata={"enum": [True]})


class DeletedOutputSchema(ResponseSchema):
    job_id = fields.UUID(required=True)
    deleted = fields.Boolean(required=True, metadata={"enum": [True]})
    output_deleted_at = _instant(required=True)


class DeletedTemplateSchema(ResponseSchema):
    deleted = fields.Boolean(required=True, metadata={"enum": [True]})


class TemplateVersionSchema(ResponseSchema):
    version = fields.Integer(required=True, metadata={"minimum": 1})
    name = fields.String(required=True)
    is_public = fields.Boolean(required=True)
    changed = fields.List(
        fields.String(metadata={"enum": list(TEMPLATE_FIELDS)}),
        required=True,
        metadata={"description": "The fields this version set."},
    )
    created_at = _instant(required=True)


class TemplateVersionsSchema(ResponseSchema):
    id = _template_id(required=True)
    versions = fields.List(
        fields.Nested(TemplateVersionSchema),
        required=True,
        metadata={"description": "Newest first."},
    )


# --- webhooks


class WebhookAttemptSchema(ResponseSchema):
    attempt = fields.Integer(required=True)
    trigger = fields.String(required=True, metadata={"enum": list(WEBHOOK_TRIGGERS)})
    url = fields.String(required=True)
    status_code = fields.Integer(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    duration_ms = fields.Integer(required=True)
    delivered = fields.Boolean(required=True)
    response_excerpt = fields.String(required=True)
    attempted_at = _instant(required=True)
    next_attempt_at = _instant(
        "When the next automatic retry is due, if one is.", required=True, allow_none=True
    )


class WebhookLogSchema(ResponseSchema):
    job_id = fields.UUID(required=True)
    webhook_uri = fields.String(required=True, allow_none=True)
    webhook_id = fields.String(
        required=True, metadata={"description": "The webhook-id header of every delivery."}
    )
    status = fields.String(
        required=True,
        metadata={
            "enum": ["none", "waiting_for_job", "pending", "retrying", "delivered", "failed"],
            "description": "none: the job has no webhook_uri; waiting_for_job: it has not"
            " ended yet.",
        },
    )
    attempts = fields.List(fields.Nested(WebhookAttemptSchema), required=True)


class RedeliverySchema(ResponseSchema):
    job_id = fields.UUID(required=True)
    redelivery = fields.Integer(
        required=True, metadata={"description": "This request's number, from 1."}
    )
    status = fields.String(required=True, metadata={"enum": ["queued"]})


class WebhookSecretSchema(ResponseSchema):
    secret = fields.String(required=True)


class RotatedWebhookSecretSchema(WebhookSecretSchema):
    previous_secret_expires_at = _instant(
        "Until then, deliveries are signed with both secrets.", required=True
    )


# --- previews


class StoryboardFrameSchema(ResponseSchema):
    scene = fields.Integer(
        required=True,
        metadata={
            "description": "Index in the script's scenes (a transition's: the scene it leaves)."
        },
    )
    kind = fields.String(
        required=True,
        metadata={
            "enum": [SCENE, TRANSITION],
            "description": "A scene at its middle, drawn alone, or a transition at its midpoint.",
        },
    )
    time = fields.Float(required=True, metadata={"description": "Seconds into the movie."})
    image_uri = fields.String(
        required=True, metadata={"description": "A JPEG at the proxy's size (no key needed)."}
    )


class PreviewProxySchema(ResponseSchema):
    duration_seconds = fields.Float(required=True)
    width = fields.Integer(required=True, metadata={"maximum": PREVIEW_MAX_SIDE})
    height = fields.Integer(required=True, metadata={"maximum": PREVIEW_MAX_SIDE})
    fps = fields.Float(required=True)
    file_size_bytes = fields.Integer(required=True)


class PreviewSchema(ResponseSchema):
    preview_id = fields.String(required=True, metadata={"pattern": "^prv_[0-9a-f]{32}$"})
    status = fields.String(required=True, metadata={"enum": list(PREVIEW_STATUSES)})
    progress = fields.Float(required=True, metadata={"minimum": 0, "maximum": 1})
    stage = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "starting, downloading, storyboard, storyboard_ready,"
            " rendering_scene_N, stitching, encoding, complete or failed"
        },
    )
    storyboard = fields.List(
        fields.Nested(StoryboardFrameSchema),
        required=True,
        metadata={"description": "Empty until drawn (before the proxy), and once expired."},
    )
    proxy_uri = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The watermarked MP4, once drawn (no key needed)."},
    )
    proxy = fields.Nested(PreviewProxySchema, required=True, allow_none=True)
    viewer_url = fields.String(
        required=True,
        metadata={
            "description": "A page playing the proxy and showing the storyboard:"
            " no key needed, unguessable."
        },
    )
    duration_seconds = fields.Float(required=True, metadata={"description": "The script's."})
    estimated_credits = fields.Integer(
        required=True,
        metadata={"description": "What rendering it would cost (the preview is free)."},
    )
    error = fields.Nested(JobErrorSchema, required=True, allow_none=True)
    metadata = fields.Dict(
        required=True, metadata={"description": "What its render's job will carry."}
    )
    sandbox = fields.Boolean(required=True)
    origin = fields.Dict(
        required=True,
        metadata={
            "description": "`channel` (api or template), and a template's"
            " `template_id` and `template_version`."
        },
    )
    created_at = _instant(required=True)
    expires_at = _instant("7 days after creation; then its files are deleted.", required=True)


class DeletedPreviewSchema(ResponseSchema):
    preview_id = fields.String(required=True)
    deleted = fields.Boolean(required=True, metadata={"enum": [True]})


# --- Server-Sent Events: the `data` of each event


class ProgressEventSchema(ResponseSchema):
    progress = fields.Float(required=True, metadata={"minimum": 0, "maximum": 1})
    stage = fields.String(
        required=True,
        metadata={
            "description": "queued, starting, downloading, rendering_scene_N, stitching, encoding"
        },
    )
    timestamp = _instant(required=True)


class CompleteEventSchema(ResponseSchema):
    outputUri = fields.String(required=True)
    creditsUsed = fields.Integer(required=True)
    durationSeconds = fields.Float(required=True)
    fileSizeBytes = fields.Integer(required=True)
    metadata = fields.Dict(required=True, metadata={"description": "The job's metadata."})


class ErrorEventSchema(ResponseSchema):
    code = fields.String(
        required=True, metadata={"description": "CANCELLED when the job was cancelled."}
    )
    message = fields.String(required=True)
    metadata = fields.Dict(
        metadata={"description": "A job's metadata (on a job's streams, not a preview's)."}
    )


class StoryboardEventFrameSchema(ResponseSchema):
    scene = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"enum": [SCENE, TRANSITION]})
    time = fields.Float(required=True)
    imageUri = fields.String(required=True)


class StoryboardEventSchema(ResponseSchema):
    storyboard = fields.List(fields.Nested(StoryboardEventFrameSchema), required=True)
    timestamp = _instant(required=True)


class PreviewCompleteEventSchema(ResponseSchema):
    proxyUri = fields.String(required=True)
    viewerUrl = fields.String(required=True)
    durationSeconds = fields.Float(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    fps = fields.Float(required=True)
    fileSizeBytes = fields.Integer(required=True)


class _OnTheAccountStream(ResponseSchema):
    """What GET /api/events adds to each job event."""

    jobId = fields.UUID(required=True)
    timestamp = _instant(required=True)


class AccountProgressEventSchema(ProgressEventSchema, _OnTheAccountStream):
    pass


class AccountCompleteEventSchema(CompleteEventSchema, _OnTheAccountStream):
    pass


class AccountErrorEventSchema(ErrorEventSchema, _OnTheAccountStream):
    pass


class WebhookEventSchema(_OnTheAccountStream):
    attempt = fields.Integer(required=True)
    trigger = fields.String(required=True, metadata={"enum": list(WEBHOOK_TRIGGERS)})
    statusCode = fields.Integer(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    durationMs = fields.Integer(required=True)
    delivered = fields.Boolean(required=True)


# --------------------------------------------------------------- operations


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "in": "query",
        "name": name,
        "required": False,
        "description": description,
        "schema": {"type": kind, **extra},
    }


def _path(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "in": "path",
        "name": name,
        "required": True,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def _json(schema: str | dict[str, Any], description: str) -> dict[str, Any]:
    body = _ref(schema) if isinstance(schema, str) else schema
    return {"description": description, "content": {"application/json": {"schema": body}}}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


# What each error code means, and its HTTP status. A route names the codes it can
# answer; `_errors` groups them by status, each status with the shared Error schema.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "INVALID_JSON": (400, "the body is empty or is not JSON"),
    "INVALID_REQUEST": (
        400,
        "the body is not a JSON object, or a field is missing, unknown or of the wrong JSON"
        " type (`path` names it)",
    ),
    "SCHEMA_VALIDATION_ERROR": (400, "the movie script breaks the render schema (`path`)"),
    "VALIDATION_ERROR": (400, "a field of the right type has a value we refuse (`path`)"),
    "UNAUTHORIZED": (401, "missing, invalid or revoked API key"),
    "INSUFFICIENT_CREDITS": (402, "the balance cannot cover the estimate (`required`, `balance`)"),
    "FORBIDDEN": (403, "not allowed"),
    "NOT_FOUND": (404, "no such resource for you (unknown, malformed or another account's)"),
    "TEMPLATE_NOT_FOUND": (404, "no such template (or version) that you may render"),
    "JOB_ALREADY_FINISHED": (409, "the job has already ended"),
    "JOB_NOT_COMPLETED": (409, "the job has no output (it has not completed)"),
    "OUTPUT_DELETED": (410, "the job's output was deleted (DELETE /api/jobs/{job_id}/output)"),
    "RANGE_NOT_SATISFIABLE": (416, "the Range starts past the end of the file"),
    "SECRETS_KEY_MISSING": (503, "the server has no PHANTOMFLOW_SECRETS_KEY to seal secrets"),
    "IDEMPOTENCY_KEY_REUSED": (422, "this Idempotency-Key came with a different request"),
    "RATE_LIMIT_EXCEEDED": (429, "too many requests this minute for your plan (Retry-After)"),
    "CONCURRENCY_LIMIT_EXCEEDED": (429, "your plan's queued and processing jobs (`limit`)"),
    "PREVIEW_EXPIRED": (410, "the preview has expired and its files are deleted"),
    "INTERNAL_ERROR": (500, "unexpected failure (`request_id`, also in X-Request-Id)"),
    "SERVICE_UNAVAILABLE": (503, "the database is unreachable for a moment (Retry-After)"),
}
# Every route behind the API key can answer these.
AUTHENTICATED = ("UNAUTHORIZED", "RATE_LIMIT_EXCEEDED", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE")
TOO_LARGE = "INVALID_REQUEST: the body is larger than 2 MiB"
NOT_JSON = "INVALID_REQUEST: the body is not sent as application/json (`path`: Content-Type)"
LIVE_ONLY = "a sandbox (ve_test_) key: the ledger is read with a live key"
BAD_QUERY = "a query parameter is malformed, unknown or out of range (`path` names it)"
RETRY_AFTER = {
    "Retry-After": {
        "description": "RATE_LIMIT_EXCEEDED: seconds until the window resets.",
        "schema": {"type": "integer"},
    }
}


UNAVAILABLE_RETRY_AFTER = {
    "Retry-After": {
        "description": "SERVICE_UNAVAILABLE: seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}


def _errors(
    *codes: str, public: bool = False, body: bool = False, **meanings: str
) -> dict[str, Any]:
    """The error responses of a route that answers `codes` (besides AUTHENTICATED's,
    unless `public`; and a body's INVALID_JSON and 413, if it takes a `body`).
    `meanings` says what a code means on this route, where the general text is vague."""
    answered = [*(("INVALID_JSON",) if body else ()), *codes, *(() if public else AUTHENTICATED)]
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(answered):  # in order, once each
        status, meaning = ERROR_CODES[code]
        by_status.setdefault(status, []).append(f"{code}: {meanings.get(code, meaning)}")
    if body:
        by_status[413] = [TOO_LARGE]
        by_status[415] = [NOT_JSON]
    responses = {
        str(status): _json("Error", "; ".join(by_status[status])) for status in sorted(by_status)
    }
    if "429" in responses and "RATE_LIMIT_EXCEEDED" in answered:
        responses["429"]["headers"] = RETRY_AFTER
    if "503" in responses:
        responses["503"]["headers"] = UNAVAILABLE_RETRY_AFTER
    return responses


def _submitted(description: str) -> dict[str, Any]:
    """The 202 of a submission, replayed as it was for a repeated Idempotency-Key."""
    return {
        **_json("Submitted", description),
        "headers": {
            "Idempotent-Replayed": {
                "description": "true when this answers a repeat of an earlier request.",
                "schema": {"type": "string", "enum": ["true"]},
            }
        },
    }


def _event_stream(description: str, events: dict[str, str]) -> dict[str, Any]:
    """The 200 of a Server-Sent Events route. OpenAPI 3.1 has no way to type the events
    of a stream, so each event name's `data` schema is listed in `x-phantomflow-events`
    (and in the description)."""
    listed = ", ".join(f"`{name}` ({schema})" for name, schema in events.items())
    return {
        "description": f"{description} Events, with their data's schema: {listed}.",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "string",
                    "description": "Frames of `id: <position>`, `event: <name>` and `data:"
                    " <JSON>`, and `: keep-alive` comments every 15 s.",
                },
                "x-phantomflow-events": {name: _ref(schema) for name, schema in events.items()},
            }
        },
    }


JOB_ID = _path("job_id", "The job's UUID.", format="uuid")
TEMPLATE_ID = _path("template_id", "`tpl_` and 32 hex digits; anything else is NOT_FOUND.")
KEY_ID = _path("key_id", "The key's id (from GET /api/keys).", format="uuid")
PAGE = _query("page", "integer", "Page number, 1-based.", minimum=1, default=1)
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "The same key with the same body within 24 h answers the first response"
    " and charges once; with another body, IDEMPOTENCY_KEY_REUSED.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}
DRY_RUN = _query(
    "dry_run",
    "string",
    "true: validate, price and check the limits exactly as a submission would, and answer"
    " 200 with the quote (or the same error); nothing is recorded or charged.",
    enum=["true", "false"],
    default="false",
)
DRY_RUN_ANSWER = "dry_run=true: the submission would be accepted at this price"
LAST_EVENT_ID = {
    "in": "header",
    "name": "Last-Event-ID",
    "required": False,
    "description": "The `id` of the last event received: the stream resumes after it,"
    " with every event missed. Not a non-negative integer: INVALID_REQUEST.",
    "schema": {"type": "string", "pattern": r"^\s*[0-9]+\s*$"},
}
API_KEY_QUERY = _query(
    "apiKey",
    "string",
    "The API key, for browsers' EventSource, which cannot send the x-api-key header."
    " Accepted on the two event streams only.",
)
# The event streams take the key in the header or in `apiKey` (the ApiKeyQuery scheme).
STREAM_SECURITY = [{"ApiKey": []}, {"ApiKeyQuery": []}]

RENDER_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/render"): {
        "summary": "Submit a render job with a full movie script",
        "parameters": [IDEMPOTENCY_KEY, DRY_RUN],
        "requestBody": _body("RenderRequest"),
        "responses": {
            "200": _json("Quote", DRY_RUN_ANSWER),
            "202": _submitted("Queued; the estimate is charged"),
            **_errors(
                "SCHEMA_VALIDATION_ERROR",
                "INVALID_REQUEST",
                "INSUFFICIENT_CREDITS",
                "IDEMPOTENCY_KEY_REUSED",
                "CONCURRENCY_LIMIT_EXCEEDED",
                body=True,
                SCHEMA_VALIDATION_ERROR="the body breaks the render schema, or its webhook_uri"
                " leads to an address we refuse (`path` names the field)",
                INVALID_REQUEST="a malformed Idempotency-Key header",
            ),
        },
    },
    ("post", "/api/render/template"): {
        "summary": "Render a saved template with values for its {{variables}}",
        "description": "The variables are substituted, then the script is validated and"
        " priced exactly as by POST /api/render, and answered the same way.",
        "parameters": [IDEMPOTENCY_KEY, DRY_RUN],
        "requestBody": _body("TemplateRenderRequest"),
        "responses": {
            "200": _json("Quote", DRY_RUN_ANSWER),
            "202": _submitted("Queued; the estimate is charged"),
            **_errors(
                "INVALID_REQUEST",
                "VALIDATION_ERROR",
                "SCHEMA_VALIDATION_ERROR",
                "INSUFFICIENT_CREDITS",
                "TEMPLATE_NOT_FOUND",
                "IDEMPOTENCY_KEY_REUSED",
                "CONCURRENCY_LIMIT_EXCEEDED",
                body=True,
                INVALID_REQUEST=ERROR_CODES["INVALID_REQUEST"][1]
                + ", or a malformed Idempotency-Key header",
                VALIDATION_ERROR="a variable's value is not a string, number or boolean"
                " (`variables.<name>`), variables are missing (`missing`), or template_version"
                " is below 1",
                SCHEMA_VALIDATION_ERROR="the substituted script breaks the render schema"
                " (`path` into the script)",
            ),
        },
    },
    ("get", "/api/render/schema"): {
        "summary": "The JSON Schema (draft 2020-12) of the render request body",
        "security": [],
        "responses": {
            "200": {
                "description": "JSON Schema",
                "content": {"application/schema+json": {"schema": {"type": "object"}}},
            },
            **_errors(public=True),
        },
    },
    ("get", "/api/openapi.json"): {
        "summary": "This OpenAPI document",
        "security": [],
        "responses": {
            "200": _json({"type": "object"}, "OpenAPI 3.1 document"),
            **_errors(public=True),
        },
    },
}

# The 200 of a route that serves an MP4 or a JPEG.
MEDIA_FILE = {
    "description": "The file",
    "content": {
        "video/mp4": {"schema": {"type": "string", "contentMediaType": "video/mp4"}},
        "image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg"}},
    },
}

JOB_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/jobs"): {
        "summary": "List your render jobs, newest first",
        "description": "`metadata.<key>=<value>` (one at most) lists only the jobs whose"
        " metadata has that top-level key with that value: a string as it is, a number or"
        " boolean as JSON writes it (`42`, `true`). A malformed key, or a second one:"
        " INVALID_REQUEST.",
        "parameters": [
            PAGE,
            _query("limit", "integer", "Items per page.", minimum=1, maximum=100, default=20),
            _query("status", "string", "Only jobs in this status.", enum=list(STATUSES)),
        ],
        "responses": {
            "200": _json("JobList", "A page of jobs"),
            **_errors("INVALID_REQUEST", INVALID_REQUEST=BAD_QUERY),
        },
    },
    ("get", "/api/jobs/{job_id}"): {
        "summary": "One job's status",
        "parameters": [JOB_ID],
        "responses": {"200": _json("Job", "The job"), **_errors("NOT_FOUND")},
    },
    ("get", "/api/jobs/{job_id}/events"): {
        "summary": "One job's whole event history, as stored",
        "parameters": [JOB_ID],
        "responses": {"200": _json("JobEvents", "The events"), **_errors("NOT_FOUND")},
    },
    ("post", "/api/jobs/{job_id}/cancel"): {
        "summary": "Cancel a queued or processing job",
        "description": "A queued job is refunded in full; a processing one is charged for"
        " the share rendered so far. No request body.",
        "parameters": [JOB_ID],
        "responses": {
            "200": _json("Cancelled", "Cancelled, and refunded"),
            **_errors("NOT_FOUND", "JOB_ALREADY_FINISHED"),
        },
    },
    ("get", "/outputs/{name}"): {
        "summary": "A rendered MP4 or its JPEG poster (no key: the name is unguessable)",
        "security": [],
        "parameters": [_path("name", "The file name in the job's output_uri or poster_uri.")],
        "responses": {
            "200": MEDIA_FILE,
            "206": {"description": "The bytes of a single Range (Content-Range)"},
            "302": {
                "description": "With S3 storage (PHANTOMFLOW_S3_SERVE=redirect): to a"
                " presigned URL of the object, valid for an hour"
            },
            "304": {"description": "If-None-Match or If-Modified-Since: unchanged"},
            **_errors("NOT_FOUND", "OUTPUT_DELETED", "RANGE_NOT_SATISFIABLE", public=True),
        },
    },
    ("delete", "/api/jobs/{job_id}/output"): {
        "summary": "Delete a finished job's files (MP4 and poster); the job and its"
        " ledger stay, and its output_uri then answers 410",
        "description": "Exports not yet settled fail with OUTPUT_DELETED. Deleting again"
        " answers the same (the files are removed again if any are left).",
        "parameters": [JOB_ID],
        "responses": {
            "200": _json("DeletedOutput", "Deleted"),
            **_errors("NOT_FOUND", "JOB_NOT_COMPLETED"),
        },
    },
}

INTEGRATION_ID = _path("integration_id", "int_ and 32 hex digits.", pattern="^int_[0-9a-f]{32}$")

INTEGRATION_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/integrations"): {
        "summary": "Store credentials for an export destination (secrets are sealed and"
        " never shown again)",
        "requestBody": _body("NewIntegration"),
        "responses": {
            "201": _json("Integration", "Stored"),
            **_errors("INVALID_REQUEST", "VALIDATION_ERROR", "SECRETS_KEY_MISSING", body=True),
        },
    },
    ("get", "/api/integrations"): {
        "summary": "Your integrations (of this key's mode), newest first",
        "responses": {"200": _json("IntegrationList", "Your integrations"), **_errors()},
    },
    ("get", "/api/integrations/{integration_id}"): {
        "summary": "One integration",
        "parameters": [INTEGRATION_ID],
        "responses": {"200": _json("Integration", "The integration"), **_errors("NOT_FOUND")},
    },
    ("delete", "/api/integrations/{integration_id}"): {
        "summary": "Delete an integration: its secret's key is destroyed, so the secret"
        " can never be recovered",
        "parameters": [INTEGRATION_ID],
        "responses": {
            "200": _json("DeletedIntegration", "Deleted"),
            **_errors("NOT_FOUND"),
        },
    },
}

STREAM_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/jobs/{job_id}/progress"): {
        "summary": "One job's progress, live (Server-Sent Events)",
        "description": "Without Last-Event-ID: the job's events so far, then live ones; a"
        " job that has ended answers its final event alone. The stream closes after"
        " `complete` or `error` (a cancelled job ends with `error`, code CANCELLED).",
        "security": STREAM_SECURITY,
        "parameters": [JOB_ID, API_KEY_QUERY, LAST_EVENT_ID],
        "responses": {
            "200": _event_stream(
                "The job's events.",
                {"progress": "ProgressEvent", "complete": "CompleteEvent", "error": "ErrorEvent"},
            ),
            "204": {
                "description": "Last-Event-ID is at or past the final event: there is nothing"
                " more (an EventSource stops reconnecting)."
            },
            **_errors("INVALID_REQUEST", "NOT_FOUND", INVALID_REQUEST="a malformed Last-Event-ID"),
        },
    },
    ("get", "/api/events"): {
        "summary": "Every job event of your account, live (Server-Sent Events)",
        "description": "Stays open. Without Last-Event-ID it starts from now; with it,"
        " every event after that position comes first.",
        "security": STREAM_SECURITY,
        "parameters": [API_KEY_QUERY, LAST_EVENT_ID],
        "responses": {
            "200": _event_stream(
                "Your jobs' events, each with its jobId and timestamp.",
                {
                    "progress": "AccountProgressEvent",
                    "complete": "AccountCompleteEvent",
                    "error": "AccountErrorEvent",
                    "webhook": "WebhookEvent",
                },
            ),
            **_errors("INVALID_REQUEST", INVALID_REQUEST="a malformed Last-Event-ID"),
        },
    },
}


def _template_change(summary: str) -> dict[str, Any]:
    """PUT and PATCH are the same: only the fields given change."""
    return {
        "summary": summary,
        "description": "Only the owner may change a template. A request that changes"
        " nothing records nothing and keeps the version.",
        "parameters": [TEMPLATE_ID],
        "requestBody": _body("TemplateChanges"),
        "responses": {
            "200": _json("ChangedTemplate", "The template as changed"),
            **_errors(
                "INVALID_REQUEST",
                "VALIDATION_ERROR",
                "SCHEMA_VALIDATION_ERROR",
                "FORBIDDEN",
                "NOT_FOUND",
                body=True,
                FORBIDDEN="a public template of another account",
                SCHEMA_VALIDATION_ERROR="the script breaks the render schema where no"
                " placeholder excuses it (`path`: `script.…`)",
            ),
        },
    }


TEMPLATE_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/templates"): {
        "summary": "Save a movie script with {{variable}} placeholders as a template",
        "requestBody": _body("NewTemplate"),
        "responses": {
            "201": _json("CreatedTemplate", "Created, as version 1"),
            **_errors(
                "INVALID_REQUEST",
                "VALIDATION_ERROR",
                "SCHEMA_VALIDATION_ERROR",
                body=True,
                SCHEMA_VALIDATION_ERROR="the script breaks the render schema where no"
                " placeholder excuses it (`path`: `script.…`)",
            ),
        },
    },
    ("get", "/api/templates"): {
        "summary": "List your templates, newest first",
        "responses": {"200": _json("TemplateList", "Your templates"), **_errors()},
    },
    ("get", "/api/templates/{template_id}"): {
        "summary": "One template, script included (yours, or a public one)",
        "parameters": [
            TEMPLATE_ID,
            _query("version", "integer", "This version rather than the latest.", minimum=1),
        ],
        "responses": {
            "200": _json("Template", "The template"),
            **_errors(
                "INVALID_REQUEST", "NOT_FOUND", INVALID_REQUEST="version is not a positive integer"
            ),
        },
    },
    ("put", "/api/templates/{template_id}"): _template_change("Change a template"),
    ("patch", "/api/templates/{template_id}"): _template_change("Change a template (same as PUT)"),
    ("delete", "/api/templates/{template_id}"): {
        "summary": "Delete a template, all its versions with it",
        "parameters": [TEMPLATE_ID],
        "responses": {
            "200": _json("DeletedTemplate", "Deleted"),
            **_errors("FORBIDDEN", "NOT_FOUND", FORBIDDEN="a public template of another account"),
        },
    },
    ("get", "/api/templates/{template_id}/versions"): {
        "summary": "A template's versions, newest first",
        "parameters": [TEMPLATE_ID],
        "responses": {
            "200": _json("TemplateVersions", "The versions"),
            **_errors("NOT_FOUND"),
        },
    },
}

KEY_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/keys"): {
        "summary": "Your account's API keys (prefixes only)",
        "responses": {"200": _json("KeyList", "The keys"), **_errors()},
    },
    ("post", "/api/keys"): {
        "summary": "Mint an API key; its secret is in this answer only",
        "requestBody": _body("NewKey"),
        "responses": {
            "201": _json("CreatedKey", "The new key, with its secret"),
            **_errors(
                "INVALID_REQUEST",
                "FORBIDDEN",
                body=True,
                FORBIDDEN="a sandbox (ve_test_) key asked for a live key",
            ),
        },
    },
    ("delete", "/api/keys/{key_id}"): {
        "summary": "Revoke an API key, at once on every API process",
        "parameters": [KEY_ID],
        "responses": {
            "200": _json("RevokedKey", "Revoked"),
            **_errors("NOT_FOUND", NOT_FOUND="no active key of your account with this id"),
        },
    },
}

WEBHOOK_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/jobs/{job_id}/webhooks"): {
        "summary": "A job's webhook and every attempt to deliver it",
        "parameters": [JOB_ID],
        "responses": {"200": _json("WebhookLog", "The delivery log"), **_errors("NOT_FOUND")},
    },
    ("post", "/api/jobs/{job_id}/webhooks/redeliver"): {
        "summary": "Send an ended job's webhook once more (same payload and webhook-id)",
        "description": "No request body.",
        "parameters": [JOB_ID],
        "responses": {
            "202": _json("Redelivery", "Queued for delivery"),
            **_errors(
                "INVALID_REQUEST",
                "NOT_FOUND",
                INVALID_REQUEST="nothing to redeliver: the job has not ended or has no webhook_uri",
            ),
        },
    },
    ("get", "/api/webhooks/secret"): {
        "summary": "The secret your webhooks are signed with (created on first use)",
        "responses": {"200": _json("WebhookSecret", "The secret"), **_errors()},
    },
    ("post", "/api/webhooks/secret/rotate"): {
        "summary": "A new signing secret; the previous one keeps signing for 24 hours",
        "description": "No request body.",
        "responses": {"200": _json("RotatedWebhookSecret", "The new secret"), **_errors()},
    },
}

CREDIT_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/credits"): {
        "summary": "Your credit balance",
        "responses": {"200": _json("Credits", "The balance"), **_errors()},
    },
    ("get", "/api/account"): {
        "summary": "Your account: plan, its limits, active jobs, balance and the calling key",
        "responses": {"200": _json("Account", "The account"), **_errors()},
    },
    ("get", "/api/credits/balance"): {
        "summary": "Your credit balance at an instant",
        "parameters": [{**_query("at", "string", "ISO 8601 instant."), "required": True}],
        "responses": {
            "200": _json("BalanceAt", "The balance then"),
            **_errors(
                "INVALID_REQUEST", "FORBIDDEN", INVALID_REQUEST=BAD_QUERY, FORBIDDEN=LIVE_ONLY
            ),
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
                    "application/json": {"schema": _ref("Ledger")},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            **_errors(
                "INVALID_REQUEST", "FORBIDDEN", INVALID_REQUEST=BAD_QUERY, FORBIDDEN=LIVE_ONLY
            ),
        },
    },
}

PREVIEW_ID = _path("preview_id", "`prv_` and 32 hex digits; anything else is NOT_FOUND.")
PREVIEW_TOKEN = _path("token", "The token in the preview's viewer_url.")
PREVIEW_RATE_HEADERS = {
    f"X-Preview-RateLimit-{name}": {"description": description, "schema": {"type": "integer"}}
    for name, description in (
        ("Limit", "Previews your plan allows a minute."),
        ("Remaining", "Previews left this minute."),
        ("Reset", "Unix time when the minute ends."),
    )
}
PREVIEW_PAGE = {
    "description": "An HTML page (no script; see docs/api.md for its security headers)",
    "content": {"text/html": {"schema": {"type": "string"}}},
}

PREVIEW_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/previews"): {
        "summary": "Preview a script (or a template) for free: a storyboard, then a proxy",
        "description": "The body is POST /api/render's or POST /api/render/template's,"
        " validated exactly as for a render. Nothing is charged; the plan's previews a"
        " minute are counted (X-Preview-RateLimit-*). The preview is drawn on a queue of"
        " its own; follow it with GET /api/previews/{preview_id}/progress.",
        "operationId": "createPreview",
        "tags": ["previews"],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [_ref("RenderRequest"), _ref("TemplateRenderRequest")]}
                }
            },
        },
        "responses": {
            "201": {
                **_json("Preview", "Queued: nothing drawn yet"),
                "headers": {
                    **PREVIEW_RATE_HEADERS,
                    "Location": {
                        "description": "The preview's address.",
                        "schema": {"type": "string"},
                    },
                },
            },
            **_errors(
                "INVALID_REQUEST",
                "VALIDATION_ERROR",
                "SCHEMA_VALIDATION_ERROR",
                "TEMPLATE_NOT_FOUND",
                body=True,
                RATE_LIMIT_EXCEEDED="too many requests, or too many previews, this minute for"
                " your plan (Retry-After)",
            ),
        },
    },
    ("get", "/api/previews/{preview_id}"): {
        "summary": "One preview: its status, storyboard, proxy and viewer link",
        "operationId": "getPreview",
        "tags": ["previews"],
        "parameters": [PREVIEW_ID],
        "responses": {"200": _json("Preview", "The preview"), **_errors("NOT_FOUND")},
    },
    ("delete", "/api/previews/{preview_id}"): {
        "summary": "Delete a preview and its files",
        "operationId": "deletePreview",
        "tags": ["previews"],
        "parameters": [PREVIEW_ID],
        "responses": {
            "200": _json("DeletedPreview", "Deleted"),
            **_errors("NOT_FOUND"),
        },
    },
    ("post", "/api/previews/{preview_id}/render"): {
        "summary": "Render a preview's script for real",
        "description": "The same checks, charge and answer as POST /api/render; the job's"
        " origin names the preview. The body is optional.",
        "operationId": "renderPreview",
        "tags": ["previews"],
        "parameters": [PREVIEW_ID, IDEMPOTENCY_KEY, DRY_RUN],
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _ref("PreviewRenderRequest")}},
        },
        "responses": {
            "200": _json("Quote", DRY_RUN_ANSWER),
            "202": _submitted("Queued; the estimate is charged"),
            **_errors(
                "INVALID_REQUEST",
                "SCHEMA_VALIDATION_ERROR",
                "INSUFFICIENT_CREDITS",
                "NOT_FOUND",
                "PREVIEW_EXPIRED",
                "IDEMPOTENCY_KEY_REUSED",
                "CONCURRENCY_LIMIT_EXCEEDED",
                body=True,
                SCHEMA_VALIDATION_ERROR="the webhook_uri breaks the render schema or leads to"
                " an address we refuse",
                INVALID_REQUEST=ERROR_CODES["INVALID_REQUEST"][1]
                + ", or a malformed Idempotency-Key header",
            ),
        },
    },
    ("get", "/api/previews/{preview_id}/progress"): {
        "summary": "One preview's progress, live (Server-Sent Events)",
        "description": "As a job's stream: without Last-Event-ID, the events so far then"
        " live ones; `storyboard` as soon as it is drawn; closes after `complete` or"
        " `error`.",
        "operationId": "previewProgress",
        "tags": ["previews"],
        "security": STREAM_SECURITY,
        "parameters": [PREVIEW_ID, API_KEY_QUERY, LAST_EVENT_ID],
        "responses": {
            "200": _event_stream(
                "The preview's events.",
                {
                    "progress": "ProgressEvent",
                    "storyboard": "StoryboardEvent",
                    "complete": "PreviewCompleteEvent",
                    "error": "ErrorEvent",
                },
            ),
            "204": {
                "description": "Last-Event-ID is at or past the final event: there is nothing"
                " more (an EventSource stops reconnecting)."
            },
            **_errors("INVALID_REQUEST", "NOT_FOUND", INVALID_REQUEST="a malformed Last-Event-ID"),
        },
    },
    ("get", "/previews/{preview_id}/{token}"): {
        "summary": "The preview's viewer page: the proxy and the storyboard, nothing else",
        "operationId": "previewViewer",
        "tags": ["previews"],
        "security": [],
        "parameters": [PREVIEW_ID, PREVIEW_TOKEN],
        "responses": {
            "200": PREVIEW_PAGE,
            "404": {**PREVIEW_PAGE, "description": "No preview with this id and token"},
            "410": {**PREVIEW_PAGE, "description": "The preview has expired"},
        },
    },
    ("get", "/previews/{preview_id}/{token}/{name}"): {
        "summary": "A preview's file: its proxy or a storyboard frame (Range requests work)",
        "operationId": "previewFile",
        "tags": ["previews"],
        "security": [],
        "parameters": [
            PREVIEW_ID,
            PREVIEW_TOKEN,
            _path("name", "proxy.mp4 or storyboard-NN.jpg, as in the preview's URIs."),
        ],
        "responses": {
            "200": MEDIA_FILE,
            "206": {"description": "The part of the file asked for (Range)"},
            **_errors("NOT_FOUND", "PREVIEW_EXPIRED", public=True),
        },
    },
}

# Every route the app serves: (method, path) -> operation. tests/test_openapi.py checks
# that the app serves no route missing from here, and nothing here that it does not.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    **RENDER_OPERATIONS,
    **JOB_OPERATIONS,
    **STREAM_OPERATIONS,
    **WEBHOOK_OPERATIONS,
    **TEMPLATE_OPERATIONS,
    **KEY_OPERATIONS,
    **CREDIT_OPERATIONS,
    **PREVIEW_OPERATIONS,
    **INTEGRATION_OPERATIONS,
    **DASHBOARD_OPERATIONS,
}

# The request bodies: the very schemas the handlers validate with.
REQUEST_SCHEMAS: dict[str, type[Schema]] = {
    "RenderRequest": RenderRequestSchema,
    "TemplateRenderRequest": TemplateRenderRequestSchema,
    "NewTemplate": NewTemplateSchema,
    "TemplateChanges": TemplateChangesSchema,
    "NewKey": NewKeySchema,
    "PreviewRenderRequest": PreviewRenderRequestSchema,
    "NewIntegration": NewIntegrationSchema,
}

# Nested schemas come before the schemas that hold them, so they are referenced by
# these names.
RESPONSE_SCHEMAS: dict[str, type[Schema]] = {
    "Error": ErrorSchema,
    "Submitted": SubmittedSchema,
    "JobExport": JobExportSchema,
    "Job": JobSchema,
    "JobList": JobListSchema,
    "JobEvents": JobEventsSchema,
    "Cancelled": CancelledSchema,
    "Credits": CreditsSchema,
    "PlanLimits": PlanLimitsSchema,
    "CallingKey": CallingKeySchema,
    "Account": AccountSchema,
    "Quote": QuoteSchema,
    "BalanceAt": BalanceAtSchema,
    "Ledger": LedgerSchema,
    "Key": KeySchema,
    "KeyList": KeyListSchema,
    "CreatedKey": CreatedKeySchema,
    "RevokedKey": RevokedKeySchema,
    "CreatedTemplate": CreatedTemplateSchema,
    "TemplateSummary": TemplateSummarySchema,
    "TemplateList": TemplateListSchema,
    "Template": TemplateSchema,
    "ChangedTemplate": ChangedTemplateSchema,
    "DeletedTemplate": DeletedTemplateSchema,
    "IntegrationSecret": IntegrationSecretSchema,
    "Integration": IntegrationSchema,
    "IntegrationList": IntegrationListSchema,
    "DeletedIntegration": DeletedIntegrationSchema,
    "DeletedOutput": DeletedOutputSchema,
    "TemplateVersion": TemplateVersionSchema,
    "TemplateVersions": TemplateVersionsSchema,
    "WebhookAttempt": WebhookAttemptSchema,
    "WebhookLog": WebhookLogSchema,
    "Redelivery": RedeliverySchema,
    "WebhookSecret": WebhookSecretSchema,
    "RotatedWebhookSecret": RotatedWebhookSecretSchema,
    "ProgressEvent": ProgressEventSchema,
    "CompleteEvent": CompleteEventSchema,
    "ErrorEvent": ErrorEventSchema,
    "AccountProgressEvent": AccountProgressEventSchema,
    "AccountCompleteEvent": AccountCompleteEventSchema,
    "AccountErrorEvent": AccountErrorEventSchema,
    "WebhookEvent": WebhookEventSchema,
    "StoryboardFrame": StoryboardFrameSchema,
    "PreviewProxy": PreviewProxySchema,
    "Preview": PreviewSchema,
    "DeletedPreview": DeletedPreviewSchema,
    "StoryboardEventFrame": StoryboardEventFrameSchema,
    "StoryboardEvent": StoryboardEventSchema,
    "PreviewCompleteEvent": PreviewCompleteEventSchema,
}


@functools.cache
def _openapi_document() -> dict[str, Any]:
    spec, _ = _spec()
    spec.components.security_scheme(
        "ApiKey", {"type": "apiKey", "in": "header", "name": "x-api-key"}
    )
    spec.components.security_scheme(
        "ApiKeyQuery",
        {
            "type": "apiKey",
            "in": "query",
            "name": "apiKey",
            "description": "The event streams only (browsers' EventSource sends no headers).",
        },
    )
    for name, schema in {**REQUEST_SCHEMAS, **RESPONSE_SCHEMAS}.items():
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
