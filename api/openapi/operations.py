"""The operations: every route the app serves, with its parameters, body and answers.

`OPERATIONS` maps (method, path) to its OpenAPI operation; tests/test_openapi.py checks
that the app serves exactly these routes. Request bodies are the marshmallow schemas
the handlers validate with (`REQUEST_SCHEMAS`); answers are named components of
api/openapi/responses.py; error answers come from the error table (api/errors.py).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema

from phantomflow.api.assets import MAX_FILES
from phantomflow.api.dashboard import OPERATIONS as DASHBOARD_OPERATIONS
from phantomflow.api.errors import ERROR_CODES
from phantomflow.api.keys import NewKeySchema
from phantomflow.api.openapi.converter import COMPONENTS
from phantomflow.api.openapi.responses import STREAM_EVENTS
from phantomflow.api.previews import PreviewRenderRequestSchema
from phantomflow.api.requests import MAX_PAGE
from phantomflow.api.schemas import RenderRequestSchema
from phantomflow.api.submissions import IDEMPOTENCY_KEY
from phantomflow.api.template_schemas import (
    NewTemplateSchema,
    TemplateChangesSchema,
    TemplateRenderRequestSchema,
)
from phantomflow.domain.assets import REF_PATTERN
from phantomflow.domain.assets import TYPES as ASSET_TYPES
from phantomflow.domain.idempotency import MAX_KEY_LENGTH
from phantomflow.domain.jobs import STATUSES
from phantomflow.projections.ledger import ENTRY_TYPES


def _ref(name: str) -> dict[str, str]:
    return {"$ref": COMPONENTS + name}


def _query(name: str, kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "in": "query",
        "name": name,
        "required": False,
        "description": description,
        "schema": {"type": kind, **extra},
    }


def _limit(
    description: str = "Items per page.", maximum: int = 100, default: int = 20
) -> dict[str, Any]:
    """A list's `limit`, bounded as api/requests.py query_page reads it."""
    return _query("limit", "integer", description, minimum=1, maximum=maximum, default=default)


def _instant_query(name: str, description: str) -> dict[str, Any]:
    """An instant in the query string: RFC 3339 (`format: date-time`), which is what
    clients should send. The server is more lenient, as its description says."""
    return _query(
        name,
        "string",
        f"{description} An RFC 3339 date-time, e.g. 2026-01-15T10:30:00Z. Also accepted:"
        " any ISO 8601 form Python's datetime.fromisoformat reads, such as a date alone or"
        " a date-time without an offset, both taken as UTC.",
        format="date-time",
    )


def _path(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "in": "path",
        "name": name,
        "required": True,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


# A route names the error codes it can answer (ERROR_CODES, in api/errors.py, gives
# each its status and meaning); `_errors` groups them by status, each status with the
# shared Error schema.
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


def _served_file(gone: str) -> dict[str, Any]:
    """The answers of a route that serves a stored MP4 or JPEG as a CDN would
    (api/outputs.py); `gone` is the code of a file deleted or expired."""
    return {
        "200": {
            "description": "The file",
            "content": {
                "video/mp4": {"schema": {"type": "string", "contentMediaType": "video/mp4"}},
                "image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg"}},
            },
        },
        "206": {"description": "The bytes of a single Range (Content-Range)"},
        "302": {
            "description": "With S3 storage (PHANTOMFLOW_S3_SERVE=redirect): to a"
            " presigned URL of the object, valid for an hour"
        },
        "304": {"description": "If-None-Match or If-Modified-Since: unchanged"},
        **_errors("NOT_FOUND", gone, "RANGE_NOT_SATISFIABLE", public=True),
    }


def _links(parameter: str, field: str, *operation_ids: str) -> dict[str, Any]:
    """OpenAPI links: the operations that take this answer's `field` as `parameter`."""
    return {
        operation_id[0].upper() + operation_id[1:]: {
            "operationId": operation_id,
            "parameters": {parameter: f"$response.body#/{field}"},
        }
        for operation_id in operation_ids
    }


JOB_LINKS = _links(
    "job_id",
    "job_id",
    "getJob",
    "getJobEvents",
    "cancelJob",
    "streamJobProgress",
    "getJobWebhooks",
    "redeliverJobWebhook",
    "deleteJobOutput",
)


def _submitted(description: str) -> dict[str, Any]:
    """The 202 of a submission, replayed as it was for a repeated Idempotency-Key."""
    return {
        **_json("Submitted", description),
        "links": JOB_LINKS,
        "headers": {
            "Idempotent-Replayed": {
                "description": "true when this answers a repeat of an earlier request.",
                "schema": {"type": "string", "enum": ["true"]},
            }
        },
    }


def _event_stream(description: str, stream: str) -> dict[str, Any]:
    """The 200 of a Server-Sent Events route. As OpenAPI 3.1 reads `text/event-stream`,
    the schema is that of each event (the `stream` component: one of its events)."""
    listed = ", ".join(f"`{name}` ({schema})" for name, schema in STREAM_EVENTS[stream].items())
    return {
        "description": f"{description} Events, with their data's schema: {listed}.",
        "content": {"text/event-stream": {"schema": _ref(stream)}},
    }


JOB_ID = _path("job_id", "The job's UUID.", format="uuid")
TEMPLATE_ID = _path("template_id", "`tpl_` and 32 hex digits; anything else is NOT_FOUND.")
KEY_ID = _path("key_id", "The key's id (from GET /api/keys).", format="uuid")
PAGE = _query("page", "integer", "Page number, 1-based.", minimum=1, maximum=MAX_PAGE, default=1)
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "The same key with the same body within 24 h answers the first response"
    " and charges once; with another body, IDEMPOTENCY_KEY_REUSED.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": f"^{IDEMPOTENCY_KEY.pattern}$",
    },
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
    " with every event missed. Empty: the same as no header (an EventSource never sends"
    " it empty). Anything but up to 18 digits: INVALID_REQUEST.",
    "schema": {"type": "string", "pattern": "^[0-9]*$", "maxLength": 18},
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
        "operationId": "submitRender",
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
        "operationId": "renderTemplate",
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
                INVALID_REQUEST=ERROR_CODES["INVALID_REQUEST"].meaning
                + ", or a malformed Idempotency-Key header",
                VALIDATION_ERROR="a variable's value is not a string, number or boolean"
                " (`variables.<name>`), variables are missing (`missing`), or template_version"
                " is below 1",
                SCHEMA_VALIDATION_ERROR="the substituted script breaks the render schema"
                " (`path` into the script)",
            ),
        },
    },
}

DOCUMENT_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/render/schema"): {
        "operationId": "getRenderSchema",
        "summary": "The JSON Schema (draft 2020-12) of the render request body",
        "security": [],
        "responses": {
            "200": {
                "description": "JSON Schema",
                "content": {"application/schema+json": {"schema": _ref("JsonSchemaDocument")}},
            },
            **_errors(public=True),
        },
    },
    ("get", "/api/openapi.json"): {
        "operationId": "getOpenApiDocument",
        "summary": "This OpenAPI document",
        "security": [],
        "responses": {
            "200": _json("OpenApiDocument", "OpenAPI 3.1 document"),
            **_errors(public=True),
        },
    },
}

JOB_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/jobs"): {
        "operationId": "listJobs",
        "summary": "List your render jobs, newest first",
        "description": "`metadata.<key>=<value>` (one at most) lists only the jobs whose"
        " metadata has that top-level key with that value: a string as it is, a number or"
        " boolean as JSON writes it (`42`, `true`). A malformed key, or a second one:"
        " INVALID_REQUEST.",
        "parameters": [
            PAGE,
            _limit(),
            _query("status", "string", "Only jobs in this status.", enum=list(STATUSES)),
        ],
        "responses": {
            "200": _json("JobList", "A page of jobs"),
            **_errors("INVALID_REQUEST", INVALID_REQUEST=BAD_QUERY),
        },
    },
    ("get", "/api/jobs/{job_id}"): {
        "operationId": "getJob",
        "summary": "One job's status",
        "parameters": [JOB_ID],
        "responses": {"200": _json("Job", "The job"), **_errors("NOT_FOUND")},
    },
    ("get", "/api/jobs/{job_id}/events"): {
        "operationId": "getJobEvents",
        "summary": "One job's whole event history, as stored",
        "parameters": [JOB_ID],
        "responses": {"200": _json("JobEvents", "The events"), **_errors("NOT_FOUND")},
    },
    ("post", "/api/jobs/{job_id}/cancel"): {
        "operationId": "cancelJob",
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
        "operationId": "getOutput",
        "summary": "A rendered MP4 or its JPEG poster (no key: the name is unguessable)",
        "security": [],
        "parameters": [_path("name", "The file name in the job's output_uri or poster_uri.")],
        "responses": _served_file("OUTPUT_DELETED"),
    },
    ("delete", "/api/jobs/{job_id}/output"): {
        "operationId": "deleteJobOutput",
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
        "operationId": "createIntegration",
        "summary": "Store credentials for an export destination (secrets are sealed and"
        " never shown again)",
        "requestBody": _body("NewIntegration"),
        "responses": {
            "201": {
                **_json("Integration", "Stored"),
                "links": _links("integration_id", "id", "getIntegration", "deleteIntegration"),
            },
            **_errors("INVALID_REQUEST", "VALIDATION_ERROR", "SECRETS_KEY_MISSING", body=True),
        },
    },
    ("get", "/api/integrations"): {
        "operationId": "listIntegrations",
        "summary": "Your integrations (of this key's mode), newest first",
        "responses": {"200": _json("IntegrationList", "Your integrations"), **_errors()},
    },
    ("get", "/api/integrations/{integration_id}"): {
        "operationId": "getIntegration",
        "summary": "One integration",
        "parameters": [INTEGRATION_ID],
        "responses": {"200": _json("Integration", "The integration"), **_errors("NOT_FOUND")},
    },
    ("delete", "/api/integrations/{integration_id}"): {
        "operationId": "deleteIntegration",
        "summary": "Delete an integration: its secret's key is destroyed, so the secret"
        " can never be recovered",
        "parameters": [INTEGRATION_ID],
        "responses": {
            "200": _json("DeletedIntegration", "Deleted"),
            **_errors("NOT_FOUND"),
        },
    },
}

ASSET_ID_PATTERN = f"^{REF_PATTERN}$"
ASSET_ID = _path(
    "asset_id", "`asset_` and 32 hex digits; anything else is NOT_FOUND.", pattern=ASSET_ID_PATTERN
)
_UPLOADED_FILE = {"type": "string", "contentMediaType": "application/octet-stream"}
ASSET_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/assets"): {
        "operationId": "uploadAssets",
        "summary": "Upload files to your media library (multipart: one `file` or up to 20 `files`)",
        "description": "Each file is typed by its content (never its name or MIME type):"
        " an image, video, audio or font. The files are kept all or none. The same content"
        " uploaded again is the same asset, stored and counted once. See docs/api.md"
        " (Assets) for the types and limits.",
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": _UPLOADED_FILE,
                            "files": {
                                "type": "array",
                                "items": _UPLOADED_FILE,
                                "minItems": 1,
                                "maxItems": MAX_FILES,
                            },
                        },
                        "anyOf": [{"required": ["file"]}, {"required": ["files"]}],
                        "additionalProperties": False,
                    }
                }
            },
        },
        "responses": {
            "201": {
                **_json("UploadedAssets", "Stored"),
                "links": _links(
                    "asset_id", "assets/0/id", "getAsset", "getAssetContent", "deleteAsset"
                ),
            },
            **_errors(
                "NO_FILES",
                "EMPTY_FILE",
                "TOO_MANY_FILES",
                "UNSUPPORTED_FILE_TYPE",
                "INVALID_REQUEST",
                "STORAGE_LIMIT_EXCEEDED",
                "FILE_TOO_LARGE",
                INVALID_REQUEST="an unknown form field, a malformed multipart body, or an"
                " upload cut short; 415: the body is not multipart/form-data",
            ),
            "415": _json("Error", "INVALID_REQUEST: the body is not multipart/form-data"),
        },
    },
    ("get", "/api/assets"): {
        "operationId": "listAssets",
        "summary": "Your assets (of this key's mode), newest first, and your storage",
        "parameters": [
            PAGE,
            _limit("Assets per page."),
            _query("type", "string", "Only assets of this type.", enum=list(ASSET_TYPES)),
        ],
        "responses": {
            "200": _json("AssetList", "A page of your assets"),
            **_errors("INVALID_REQUEST", INVALID_REQUEST=BAD_QUERY),
        },
    },
    ("get", "/api/assets/{asset_id}"): {
        "operationId": "getAsset",
        "summary": "One asset",
        "parameters": [ASSET_ID],
        "responses": {"200": _json("Asset", "The asset"), **_errors("NOT_FOUND")},
    },
    ("get", "/api/assets/{asset_id}/content"): {
        "operationId": "getAssetContent",
        "summary": "An asset's file (with your key), served like an output",
        "parameters": [ASSET_ID],
        "responses": {
            "200": {
                "description": "The file, with its Content-Type (the asset's mime_type)",
                "content": {"application/octet-stream": {"schema": _UPLOADED_FILE}},
            },
            "206": {"description": "The bytes of a single Range (Content-Range)"},
            "302": {
                "description": "With S3 storage (PHANTOMFLOW_S3_SERVE=redirect): to a"
                " presigned URL of the object, valid for an hour"
            },
            "304": {"description": "If-None-Match or If-Modified-Since: unchanged"},
            **_errors("NOT_FOUND", "RANGE_NOT_SATISFIABLE"),
        },
    },
    ("delete", "/api/assets/{asset_id}"): {
        "operationId": "deleteAsset",
        "summary": "Delete an asset and its file; refused while a queued or processing job uses it",
        "parameters": [ASSET_ID],
        "responses": {
            "200": _json("DeletedAsset", "Deleted"),
            **_errors("NOT_FOUND", "ASSET_IN_USE"),
        },
    },
}

STREAM_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/jobs/{job_id}/progress"): {
        "operationId": "streamJobProgress",
        "summary": "One job's progress, live (Server-Sent Events)",
        "description": "Without Last-Event-ID: the job's events so far, then live ones; a"
        " job that has ended answers its final event alone. The stream closes after"
        " `complete` or `error` (a cancelled job ends with `error`, code CANCELLED).",
        "security": STREAM_SECURITY,
        "parameters": [JOB_ID, API_KEY_QUERY, LAST_EVENT_ID],
        "responses": {
            "200": _event_stream("The job's events.", "JobStreamEvent"),
            "204": {
                "description": "Last-Event-ID is at or past the final event: there is nothing"
                " more (an EventSource stops reconnecting)."
            },
            **_errors("INVALID_REQUEST", "NOT_FOUND", INVALID_REQUEST="a malformed Last-Event-ID"),
        },
    },
    ("get", "/api/events"): {
        "operationId": "streamAccountEvents",
        "summary": "Every job event of your account, live (Server-Sent Events)",
        "description": "Stays open. Without Last-Event-ID it starts from now; with it,"
        " every event after that position comes first.",
        "security": STREAM_SECURITY,
        "parameters": [API_KEY_QUERY, LAST_EVENT_ID],
        "responses": {
            "200": _event_stream(
                "Your jobs' events, each with its jobId and timestamp.", "AccountStreamEvent"
            ),
            **_errors("INVALID_REQUEST", INVALID_REQUEST="a malformed Last-Event-ID"),
        },
    },
}


def _template_change(operation_id: str, summary: str) -> dict[str, Any]:
    """PUT and PATCH are the same: only the fields given change."""
    return {
        "operationId": operation_id,
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
        "operationId": "createTemplate",
        "summary": "Save a movie script with {{variable}} placeholders as a template",
        "requestBody": _body("NewTemplate"),
        "responses": {
            "201": {
                **_json("CreatedTemplate", "Created, as version 1"),
                "links": {
                    **_links(
                        "template_id",
                        "id",
                        "getTemplate",
                        "listTemplateVersions",
                        "replaceTemplate",
                        "updateTemplate",
                        "deleteTemplate",
                    ),
                    "RenderTemplate": {
                        "operationId": "renderTemplate",
                        "requestBody": {"template_id": "$response.body#/id"},
                    },
                },
            },
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
        "operationId": "listTemplates",
        "summary": "List your templates, newest first",
        "responses": {"200": _json("TemplateList", "Your templates"), **_errors()},
    },
    ("get", "/api/templates/{template_id}"): {
        "operationId": "getTemplate",
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
    ("put", "/api/templates/{template_id}"): _template_change(
        "replaceTemplate", "Change a template"
    ),
    ("patch", "/api/templates/{template_id}"): _template_change(
        "updateTemplate", "Change a template (same as PUT)"
    ),
    ("delete", "/api/templates/{template_id}"): {
        "operationId": "deleteTemplate",
        "summary": "Delete a template, all its versions with it",
        "parameters": [TEMPLATE_ID],
        "responses": {
            "200": _json("DeletedTemplate", "Deleted"),
            **_errors("FORBIDDEN", "NOT_FOUND", FORBIDDEN="a public template of another account"),
        },
    },
    ("get", "/api/templates/{template_id}/versions"): {
        "operationId": "listTemplateVersions",
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
        "operationId": "listKeys",
        "summary": "Your account's API keys (prefixes only)",
        "responses": {"200": _json("KeyList", "The keys"), **_errors()},
    },
    ("post", "/api/keys"): {
        "operationId": "createKey",
        "summary": "Mint an API key; its secret is in this answer only",
        "requestBody": _body("NewKey"),
        "responses": {
            "201": {
                **_json("CreatedKey", "The new key, with its secret"),
                "links": _links("key_id", "id", "revokeKey"),
            },
            **_errors(
                "INVALID_REQUEST",
                "FORBIDDEN",
                body=True,
                FORBIDDEN="a sandbox (ve_test_) key asked for a live key",
            ),
        },
    },
    ("delete", "/api/keys/{key_id}"): {
        "operationId": "revokeKey",
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
        "operationId": "getJobWebhooks",
        "summary": "A job's webhook and every attempt to deliver it",
        "parameters": [JOB_ID],
        "responses": {"200": _json("WebhookLog", "The delivery log"), **_errors("NOT_FOUND")},
    },
    ("post", "/api/jobs/{job_id}/webhooks/redeliver"): {
        "operationId": "redeliverJobWebhook",
        "summary": "Send an ended job's webhook once more (same payload and webhook-id)",
        "description": "No request body.",
        "parameters": [JOB_ID],
        "responses": {
            "202": _json("Redelivery", "Queued for delivery"),
            **_errors("NOT_FOUND", "NOTHING_TO_REDELIVER"),
        },
    },
    ("get", "/api/webhooks/secret"): {
        "operationId": "getWebhookSecret",
        "summary": "The secret your webhooks are signed with (created on first use)",
        "responses": {"200": _json("WebhookSecret", "The secret"), **_errors()},
    },
    ("post", "/api/webhooks/secret/rotate"): {
        "operationId": "rotateWebhookSecret",
        "summary": "A new signing secret; the previous one keeps signing for 24 hours",
        "description": "No request body.",
        "responses": {"200": _json("RotatedWebhookSecret", "The new secret"), **_errors()},
    },
}

LEDGER_FILTERS = [
    _instant_query("from", "From this instant, inclusive."),
    _instant_query("to", "Up to this instant, exclusive."),
    _query("job_id", "string", "Only entries for this job."),
    _query("type", "string", "Only entries of this type.", enum=list(ENTRY_TYPES)),
]

ACCOUNT_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/account"): {
        "operationId": "getAccount",
        "summary": "Your account: plan, its limits, active jobs, balance and the calling key",
        "responses": {"200": _json("Account", "The account"), **_errors()},
    },
}

CREDIT_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/credits"): {
        "operationId": "getCredits",
        "summary": "Your credit balance",
        "responses": {"200": _json("Credits", "The balance"), **_errors()},
    },
    ("get", "/api/credits/balance"): {
        "operationId": "getBalanceAt",
        "summary": "Your credit balance at an instant",
        "parameters": [{**_instant_query("at", "The instant."), "required": True}],
        "responses": {
            "200": _json("BalanceAt", "The balance then"),
            **_errors(
                "INVALID_REQUEST", "FORBIDDEN", INVALID_REQUEST=BAD_QUERY, FORBIDDEN=LIVE_ONLY
            ),
        },
    },
    ("get", "/api/credits/ledger"): {
        "operationId": "getLedger",
        "summary": "Your credit ledger, a page at a time",
        "parameters": [
            *LEDGER_FILTERS,
            {
                **_query(
                    "format",
                    "string",
                    "json (default); csv answers as GET /api/credits/ledger.csv does (kept"
                    " for older clients: use that route, whose answer is always CSV).",
                    enum=["json", "csv"],
                ),
                "deprecated": True,
            },
            PAGE,
            _limit(maximum=1000, default=50),
        ],
        "responses": {
            "200": {
                "description": "A page of ledger entries (format=csv: the CSV download)",
                "content": {
                    "application/json": {"schema": _ref("Ledger")},
                    "text/csv": {"schema": _ref("LedgerCsv")},
                },
            },
            **_errors(
                "INVALID_REQUEST", "FORBIDDEN", INVALID_REQUEST=BAD_QUERY, FORBIDDEN=LIVE_ONLY
            ),
        },
    },
    ("get", "/api/credits/ledger.csv"): {
        "operationId": "downloadLedgerCsv",
        "summary": "Your credit ledger as a CSV download: the whole selected period",
        "parameters": LEDGER_FILTERS,
        "responses": {
            "200": {
                "description": "The entries, oldest first",
                "headers": {
                    "Content-Disposition": {
                        "description": 'attachment; filename="ledger.csv"',
                        "schema": {"type": "string"},
                    }
                },
                "content": {"text/csv": {"schema": _ref("LedgerCsv")}},
            },
            **_errors(
                "INVALID_REQUEST", "FORBIDDEN", INVALID_REQUEST=BAD_QUERY, FORBIDDEN=LIVE_ONLY
            ),
        },
    },
}

PREVIEW_ID = _path(
    "preview_id",
    "`prv_` and 32 hex digits; anything else is NOT_FOUND.",
    pattern="^prv_[0-9a-f]{32}$",
)
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
PREVIEW_LINKS = _links(
    "preview_id",
    "preview_id",
    "getPreview",
    "deletePreview",
    "renderPreview",
    "streamPreviewProgress",
)

PREVIEW_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/previews"): {
        "operationId": "createPreview",
        "summary": "Preview a script (or a template) for free: a storyboard, then a proxy",
        "description": "The body is POST /api/render's or POST /api/render/template's,"
        " validated exactly as for a render. Nothing is charged; the plan's previews a"
        " minute are counted (X-Preview-RateLimit-*). The preview is drawn on a queue of"
        " its own; follow it with GET /api/previews/{preview_id}/progress.",
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
                "links": PREVIEW_LINKS,
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
        "operationId": "getPreview",
        "summary": "One preview: its status, storyboard, proxy and viewer link",
        "parameters": [PREVIEW_ID],
        "responses": {"200": _json("Preview", "The preview"), **_errors("NOT_FOUND")},
    },
    ("delete", "/api/previews/{preview_id}"): {
        "operationId": "deletePreview",
        "summary": "Delete a preview and its files",
        "parameters": [PREVIEW_ID],
        "responses": {"200": _json("DeletedPreview", "Deleted"), **_errors("NOT_FOUND")},
    },
    ("post", "/api/previews/{preview_id}/render"): {
        "operationId": "renderPreview",
        "summary": "Render a preview's script for real",
        "description": "The same checks, charge and answer as POST /api/render; the job's"
        " origin names the preview. The body is optional.",
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
                "VALIDATION_ERROR",
                "SCHEMA_VALIDATION_ERROR",
                "INSUFFICIENT_CREDITS",
                "NOT_FOUND",
                "PREVIEW_EXPIRED",
                "IDEMPOTENCY_KEY_REUSED",
                "CONCURRENCY_LIMIT_EXCEEDED",
                body=True,
                SCHEMA_VALIDATION_ERROR="the webhook_uri or exports break the render schema,"
                " or the webhook leads to an address we refuse",
                INVALID_REQUEST=ERROR_CODES["INVALID_REQUEST"].meaning
                + ", or a malformed Idempotency-Key header",
                VALIDATION_ERROR="the metadata breaks its limits (`metadata.<key>`)",
            ),
        },
    },
    ("get", "/api/previews/{preview_id}/progress"): {
        "operationId": "streamPreviewProgress",
        "summary": "One preview's progress, live (Server-Sent Events)",
        "description": "As a job's stream: without Last-Event-ID, the events so far then"
        " live ones; `storyboard` as soon as it is drawn; closes after `complete` or"
        " `error`.",
        "security": STREAM_SECURITY,
        "parameters": [PREVIEW_ID, API_KEY_QUERY, LAST_EVENT_ID],
        "responses": {
            "200": _event_stream("The preview's events.", "PreviewStreamEvent"),
            "204": {
                "description": "Last-Event-ID is at or past the final event: there is nothing"
                " more (an EventSource stops reconnecting)."
            },
            **_errors("INVALID_REQUEST", "NOT_FOUND", INVALID_REQUEST="a malformed Last-Event-ID"),
        },
    },
    ("get", "/previews/{preview_id}/{token}"): {
        "operationId": "viewPreview",
        "summary": "The preview's viewer page: the proxy and the storyboard, nothing else",
        "security": [],
        "parameters": [PREVIEW_ID, PREVIEW_TOKEN],
        "responses": {
            "200": PREVIEW_PAGE,
            "404": {**PREVIEW_PAGE, "description": "No preview with this id and token"},
            "410": {**PREVIEW_PAGE, "description": "The preview has expired"},
        },
    },
    ("get", "/previews/{preview_id}/{token}/{name}"): {
        "operationId": "getPreviewFile",
        "summary": "A preview's file: its proxy or a storyboard frame (served as outputs are)",
        "security": [],
        "parameters": [
            PREVIEW_ID,
            PREVIEW_TOKEN,
            _path("name", "proxy.mp4 or storyboard-NN.jpg, as in the preview's URIs."),
        ],
        "responses": _served_file("PREVIEW_EXPIRED"),
    },
}

# Every route the app serves: (method, path) -> operation. tests/test_openapi.py checks
# that the app serves no route missing from here, and nothing here that it does not.
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    key: {"tags": [tag], **operation}
    for tag, operations in (
        ("renders", RENDER_OPERATIONS),
        ("documents", DOCUMENT_OPERATIONS),
        ("jobs", JOB_OPERATIONS),
        ("events", STREAM_OPERATIONS),
        ("webhooks", WEBHOOK_OPERATIONS),
        ("templates", TEMPLATE_OPERATIONS),
        ("keys", KEY_OPERATIONS),
        ("account", ACCOUNT_OPERATIONS),
        ("credits", CREDIT_OPERATIONS),
        ("integrations", INTEGRATION_OPERATIONS),
        ("assets", ASSET_OPERATIONS),
        ("previews", PREVIEW_OPERATIONS),
        # Pages for people, not API operations (api/dashboard.py).
        ("dashboard", DASHBOARD_OPERATIONS),
    )
    for key, operation in operations.items()
}

# The request bodies: the very schemas the handlers validate with.
REQUEST_SCHEMAS: dict[str, type[Schema]] = {
    "RenderRequest": RenderRequestSchema,
    "TemplateRenderRequest": TemplateRenderRequestSchema,
    "NewTemplate": NewTemplateSchema,
    "TemplateChanges": TemplateChangesSchema,
    "NewKey": NewKeySchema,
    "PreviewRenderRequest": PreviewRenderRequestSchema,
}
