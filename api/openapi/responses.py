"""The answer schemas: what each route answers, for the OpenAPI document.

No handler uses these schemas: the handlers build their answers, and the tests check
the API's real answers against these (tests/test_openapi.py). Each is published as a
named component (`RESPONSE_SCHEMAS`), so that client generators make one type of each.
"""

from __future__ import annotations

from typing import Any

import marshmallow
from eventsourcing.domain import AggregateEvent
from marshmallow import Schema, fields

from phantomflow.adapters.render.look import PREVIEW_MAX_SIDE
from phantomflow.api.openapi.converter import COMPONENTS
from phantomflow.api.schemas import COMPONENT, EXPORT_TARGET_SCHEMAS
from phantomflow.domain.jobs import CANCELLED, STATUSES, WEBHOOK_TRIGGERS, RenderJob
from phantomflow.domain.keys import PREFIXES
from phantomflow.domain.plans import PLANS
from phantomflow.domain.previews import SCENE, TRANSITION
from phantomflow.domain.previews import STATUSES as PREVIEW_STATUSES
from phantomflow.domain.templates import FIELDS as TEMPLATE_FIELDS
from phantomflow.projections.ledger import COLUMNS, ENTRY_TYPES


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
    metadata = fields.Dict(
        required=True,
        metadata={"description": "The metadata the job was submitted with ({} if none)."},
    )
    exports = fields.List(
        fields.Nested(JobExportSchema), required=True, metadata={"description": "docs/api.md"}
    )
    output_deleted_at = _instant("When DELETE …/output deleted the files.", allow_none=True)
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


def _stored_event_names() -> list[str]:
    """The names of the events a job records (not the base classes they share)."""
    classes = [
        cls
        for cls in vars(RenderJob).values()
        if isinstance(cls, type) and issubclass(cls, AggregateEvent)
    ]
    return [
        cls.__name__
        for cls in classes
        if not any(other is not cls and issubclass(other, cls) for other in classes)
    ]


class StoredJobEventSchema(ResponseSchema):
    type = fields.String(required=True, metadata={"enum": _stored_event_names()})
    at = _instant(required=True)
    version = fields.Integer(
        required=True,
        metadata={"minimum": 1, "description": "Its position in the job's own history."},
    )
    data = fields.Dict(
        required=True,
        metadata={
            "description": "The event's own fields, as stored; they vary by `type`."
            " ProgressReported has `progress`, `stage` and `media_cache` ({hits, misses}"
            " on the report that ends `downloading`, null otherwise and absent from"
            " events recorded before the media cache)."
        },
    )


class JobEventsSchema(ResponseSchema):
    job_id = fields.UUID(required=True)
    events = fields.List(
        fields.Nested(StoredJobEventSchema),
        required=True,
        metadata={"description": "Every event of the job, oldest first."},
    )


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


class LedgerEntrySchema(ResponseSchema):
    seq = fields.Integer(
        required=True, metadata={"description": "The position of its event in the store."}
    )
    at = _instant(required=True)
    type = fields.String(required=True, metadata={"enum": list(ENTRY_TYPES)})
    amount = fields.Integer(required=True, metadata={"description": "Signed: a charge is < 0."})
    balance_after = fields.Integer(required=True)
    job_id = fields.String(
        required=True, allow_none=True, metadata={"format": "uuid", "description": "Not on grants."}
    )
    reason = fields.String(required=True, allow_none=True)


LedgerTotalsSchema = ResponseSchema.from_dict(
    {
        entry_type: fields.Integer(
            required=True, metadata={"description": "The sum of the period's amounts."}
        )
        for entry_type in ENTRY_TYPES
    },
    name="LedgerTotalsSchema",
)


# The CSV download: a string schema, so that client generators hand it over as text.
LEDGER_CSV = {
    "type": "string",
    "contentMediaType": "text/csv",
    "description": f"RFC 4180 CSV: a header line ({','.join(COLUMNS)}), then one line per"
    " entry, oldest first, with the fields of LedgerEntry (an empty field for a null).",
}


class LedgerSchema(ResponseSchema):
    entries = fields.List(fields.Nested(LedgerEntrySchema), required=True)
    totals = fields.Nested(
        LedgerTotalsSchema,
        required=True,
        metadata={"description": "Each type's sum over the whole filtered period."},
    )
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
    script = fields.Dict(
        required=True,
        metadata={COMPONENT: "TemplateScript", "description": "With its {{placeholders}}."},
    )
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
            "description": "A page playing the proxy and showing the storyboard: no key"
            " needed, unguessable."
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
            "description": "`channel` (api or template), and a template's `template_id`"
            " and `template_version`."
        },
    )
    created_at = _instant(required=True)
    expires_at = _instant("7 days after creation; then its files are deleted.", required=True)


class DeletedPreviewSchema(ResponseSchema):
    preview_id = fields.String(required=True)
    deleted = fields.Boolean(required=True, metadata={"enum": [True]})


# --- Server-Sent Events: the `data` of each event (and see STREAM_EVENTS below)


class MediaCacheSchema(ResponseSchema):
    hits = fields.Integer(
        required=True,
        metadata={
            "minimum": 0,
            "description": "Sources whose bytes came from the worker's media cache (the"
            " server answered 304 Not Modified, or another job had just downloaded them).",
        },
    )
    misses = fields.Integer(
        required=True, metadata={"minimum": 0, "description": "Sources downloaded."}
    )


class ProgressEventSchema(ResponseSchema):
    progress = fields.Float(required=True, metadata={"minimum": 0, "maximum": 1})
    stage = fields.String(
        required=True,
        metadata={
            "description": "queued, starting, downloading, rendering_scene_N, stitching, encoding"
        },
    )
    timestamp = _instant(required=True)
    mediaCache = fields.Nested(
        MediaCacheSchema,
        metadata={
            "description": "On a job's last `downloading` event only (once every source is"
            " there): how many sources came from the media cache."
        },
    )


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


class ExportEventSchema(ResponseSchema):
    """One export's change (api/sse.py `export_event`); which fields come with which
    `status` is said on each."""

    index = fields.Integer(
        required=True, metadata={"description": "The export's place in the job's exports."}
    )
    status = fields.String(
        required=True,
        metadata={
            "enum": ["running", "succeeded", "pending", "failed", "skipped"],
            "description": "pending: an attempt failed and another follows (nextAttemptAt).",
        },
    )
    attempt = fields.Integer(metadata={"description": "Not on skipped."})
    location = fields.String(metadata={"description": "On succeeded: where the file landed."})
    bytes = fields.Integer(metadata={"description": "On succeeded."})
    durationMs = fields.Integer(metadata={"description": "On succeeded."})
    error = fields.Nested(JobErrorSchema, metadata={"description": "On pending, failed, skipped."})
    final = fields.Boolean(metadata={"description": "On pending and failed: no attempt follows."})
    nextAttemptAt = _instant(
        "On pending and failed: when the next attempt runs (null: none).", allow_none=True
    )
    timestamp = _instant(required=True)


class StoryboardImageSchema(ResponseSchema):
    scene = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"enum": [SCENE, TRANSITION]})
    time = fields.Float(required=True)
    imageUri = fields.String(required=True)


class StoryboardEventSchema(ResponseSchema):
    storyboard = fields.List(fields.Nested(StoryboardImageSchema), required=True)
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


class AccountExportEventSchema(ExportEventSchema, _OnTheAccountStream):
    pass


class WebhookEventSchema(_OnTheAccountStream):
    attempt = fields.Integer(required=True)
    trigger = fields.String(required=True, metadata={"enum": list(WEBHOOK_TRIGGERS)})
    statusCode = fields.Integer(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    durationMs = fields.Integer(required=True)
    delivered = fields.Boolean(required=True)


# --- Server-Sent Events: each event, and each stream's union of them

# The events each stream sends: event name -> the schema of its `data`.
STREAM_EVENTS: dict[str, dict[str, str]] = {
    "JobStreamEvent": {
        "progress": "ProgressEvent",
        "complete": "CompleteEvent",
        "error": "ErrorEvent",
        "export": "ExportEvent",
    },
    "PreviewStreamEvent": {
        "progress": "ProgressEvent",
        "storyboard": "StoryboardEvent",
        "complete": "PreviewCompleteEvent",
        "error": "ErrorEvent",
    },
    "AccountStreamEvent": {
        "progress": "AccountProgressEvent",
        "complete": "AccountCompleteEvent",
        "error": "AccountErrorEvent",
        "export": "AccountExportEvent",
        "webhook": "WebhookEvent",
    },
}


def _frame(event: str, data: str) -> dict[str, Any]:
    """One event as an SSE parser reads it (an EventSource's MessageEvent): its `id`,
    its name and its `data`, a JSON text of the `data` schema."""
    return {
        "type": "object",
        "description": f"A `{event}` event; `data` is a JSON text of {data}.",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Its position in the event store: send it back as"
                " Last-Event-ID to resume after it.",
            },
            "event": {"type": "string", "enum": [event]},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": COMPONENTS + data},
            },
        },
    }


def _stream_components() -> dict[str, dict[str, Any]]:
    """Each event (`<Data>Frame`) and each stream (`STREAM_EVENTS`'s names): one of
    its events, told apart by the event name."""
    components: dict[str, dict[str, Any]] = {}
    for stream, events in STREAM_EVENTS.items():
        mapping = {}
        for event, data in events.items():
            components[f"{data}Frame"] = _frame(event, data)
            mapping[event] = COMPONENTS + f"{data}Frame"
        components[stream] = {
            "description": "One event of the stream. Between events, `: keep-alive`"
            " comments every 15 s.",
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "event", "mapping": mapping},
        }
    return components


# Nested schemas come before the schemas that hold them, so they are referenced by
# these names.
RESPONSE_SCHEMAS: dict[str, type[Schema]] = {
    "Error": ErrorSchema,
    "Submitted": SubmittedSchema,
    "JobExport": JobExportSchema,
    "Job": JobSchema,
    "JobList": JobListSchema,
    "StoredJobEvent": StoredJobEventSchema,
    "JobEvents": JobEventsSchema,
    "Cancelled": CancelledSchema,
    "Credits": CreditsSchema,
    "PlanLimits": PlanLimitsSchema,
    "CallingKey": CallingKeySchema,
    "Account": AccountSchema,
    "Quote": QuoteSchema,
    "BalanceAt": BalanceAtSchema,
    "LedgerEntry": LedgerEntrySchema,
    "LedgerTotals": LedgerTotalsSchema,
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
    "MediaCache": MediaCacheSchema,
    "ProgressEvent": ProgressEventSchema,
    "CompleteEvent": CompleteEventSchema,
    "ErrorEvent": ErrorEventSchema,
    "ExportEvent": ExportEventSchema,
    "AccountProgressEvent": AccountProgressEventSchema,
    "AccountCompleteEvent": AccountCompleteEventSchema,
    "AccountErrorEvent": AccountErrorEventSchema,
    "AccountExportEvent": AccountExportEventSchema,
    "WebhookEvent": WebhookEventSchema,
    "StoryboardFrame": StoryboardFrameSchema,
    "PreviewProxy": PreviewProxySchema,
    "Preview": PreviewSchema,
    "DeletedPreview": DeletedPreviewSchema,
    "StoryboardImage": StoryboardImageSchema,
    "StoryboardEvent": StoryboardEventSchema,
    "PreviewCompleteEvent": PreviewCompleteEventSchema,
}


def plain_components() -> dict[str, dict[str, Any]]:
    """The answer schemas written as JSON Schema rather than marshmallow: the event
    streams, the CSV download and the two published documents."""
    return {
        **_stream_components(),
        "LedgerCsv": LEDGER_CSV,
        "JsonSchemaDocument": {
            "type": "object",
            "description": "A JSON Schema (draft 2020-12) document.",
        },
        "OpenApiDocument": {"type": "object", "description": "An OpenAPI 3.1 document."},
    }
