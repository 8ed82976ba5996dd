"""Errors in the contract's shape: `{"error": {"code", "message", ...}}`, whatever went wrong.

Handlers raise `ApiError`; the middleware turns it, aiohttp's own HTTP errors and any
unexpected exception into that body. An unexpected exception is logged with the
request id and answered 500 INTERNAL_ERROR without a stack trace.

`ERROR_CODES` is the one table of error codes: each code's HTTP status, used when an
error is raised (`ApiError.of`), and its meaning, which the OpenAPI document publishes
(api/openapi/operations.py).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from aiohttp import web

from phantomflow.adapters.pg_health import UNAVAILABLE_ERRORS
from phantomflow.api.services import REQUEST_ID
from phantomflow.domain.assets import AssetInUse, AssetReferenceInvalid, StorageLimitExceeded
from phantomflow.domain.errors import ConcurrencyLimitExceeded, InsufficientCredits
from phantomflow.domain.exports import ExportTargetInvalid
from phantomflow.domain.idempotency import IdempotencyKeyReused

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ErrorCode(NamedTuple):
    status: int
    meaning: str  # as the OpenAPI document says it, where a route does not say better


ERROR_CODES: dict[str, ErrorCode] = {
    "INVALID_JSON": ErrorCode(400, "the body is empty or is not JSON"),
    "NO_FILES": ErrorCode(400, "an upload without a `file` or `files` part"),
    "EMPTY_FILE": ErrorCode(400, "an uploaded file has no bytes (`name`)"),
    "TOO_MANY_FILES": ErrorCode(400, "more than 20 files in one upload (`limit`)"),
    "UNSUPPORTED_FILE_TYPE": ErrorCode(
        400,
        "an uploaded file is not an image, video, audio or font we take, by its content"
        " (`name`); nothing was stored",
    ),
    "INVALID_REQUEST": ErrorCode(
        400,
        "the body is not a JSON object, or a field is missing, unknown or of the wrong JSON"
        " type (`path` names it)",
    ),
    "SCHEMA_VALIDATION_ERROR": ErrorCode(400, "the movie script breaks the render schema (`path`)"),
    "VALIDATION_ERROR": ErrorCode(400, "a field of the right type has a value we refuse (`path`)"),
    "UNAUTHORIZED": ErrorCode(401, "missing, invalid or revoked API key"),
    "INSUFFICIENT_CREDITS": ErrorCode(
        402, "the balance cannot cover the estimate (`required`, `balance`)"
    ),
    "STORAGE_LIMIT_EXCEEDED": ErrorCode(
        402,
        "the files do not fit the plan's storage (`used_bytes`, `limit_bytes`,"
        " `required_bytes`); nothing was stored",
    ),
    "FORBIDDEN": ErrorCode(403, "not allowed"),
    "NOT_FOUND": ErrorCode(
        404, "no such resource for you (unknown, malformed or another account's)"
    ),
    "TEMPLATE_NOT_FOUND": ErrorCode(404, "no such template (or version) that you may render"),
    "JOB_ALREADY_FINISHED": ErrorCode(409, "the job has already ended"),
    "JOB_NOT_COMPLETED": ErrorCode(409, "the job has no output (it has not completed)"),
    "ASSET_IN_USE": ErrorCode(
        409, "a queued or processing job uses the asset (`job_ids`); delete it once they end"
    ),
    "OUTPUT_DELETED": ErrorCode(
        410, "the job's output was deleted (DELETE /api/jobs/{job_id}/output)"
    ),
    "FILE_TOO_LARGE": ErrorCode(
        413, "an uploaded file is larger than the plan's single-file limit (`limit_bytes`)"
    ),
    "RANGE_NOT_SATISFIABLE": ErrorCode(416, "the Range starts past the end of the file"),
    "PREVIEW_EXPIRED": ErrorCode(410, "the preview has expired and its files are deleted"),
    "SECRETS_KEY_MISSING": ErrorCode(
        503, "the server has no PHANTOMFLOW_SECRETS_KEY to seal secrets"
    ),
    "NOTHING_TO_REDELIVER": ErrorCode(
        409, "the job has not ended yet, or has no webhook_uri: there is no webhook to send"
    ),
    "IDEMPOTENCY_KEY_REUSED": ErrorCode(422, "this Idempotency-Key came with a different request"),
    "RATE_LIMIT_EXCEEDED": ErrorCode(
        429, "too many requests this minute for your plan (Retry-After)"
    ),
    "CONCURRENCY_LIMIT_EXCEEDED": ErrorCode(
        429, "your plan's queued and processing jobs (`limit`)"
    ),
    "INTERNAL_ERROR": ErrorCode(500, "unexpected failure (`request_id`, also in X-Request-Id)"),
    "SERVICE_UNAVAILABLE": ErrorCode(503, "the database is unreachable for a moment (Retry-After)"),
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details

    @classmethod
    def of(
        cls, code: str, message: str, headers: dict[str, str] | None = None, **details: Any
    ) -> ApiError:
        """The error `code` (a key of ERROR_CODES), with the status the table gives it."""
        return cls(ERROR_CODES[code].status, code, message, headers, **details)

    def response(self) -> web.Response:
        body = {"error": {"code": self.code, "message": self.message, **self.details}}
        return web.json_response(body, status=self.status, headers=self.headers)


def invalid_json(message: str) -> ApiError:
    return ApiError.of("INVALID_JSON", message)


def schema_error(path: str, message: str) -> ApiError:
    return ApiError.of("SCHEMA_VALIDATION_ERROR", message, path=path)


def invalid_request(message: str, path: str | None = None) -> ApiError:
    details = {"path": path} if path is not None else {}
    return ApiError.of("INVALID_REQUEST", message, **details)


def unsupported_media_type(received: str) -> ApiError:
    return ApiError(
        415,
        "INVALID_REQUEST",
        f"Content-Type must be application/json, received {received or 'none'}.",
        path="Content-Type",
    )


def unauthorized(message: str = "Missing or invalid API key.") -> ApiError:
    return ApiError.of("UNAUTHORIZED", message)


def forbidden(message: str) -> ApiError:
    return ApiError.of("FORBIDDEN", message)


def not_found(message: str = "Not found.") -> ApiError:
    return ApiError.of("NOT_FOUND", message)


def insufficient_credits(required: int, balance: int) -> ApiError:
    return ApiError.of(
        "INSUFFICIENT_CREDITS",
        f"This render needs {required} credits; the balance is {balance}.",
        required=required,
        balance=balance,
    )


def concurrency_limit_exceeded(limit: int) -> ApiError:
    return ApiError.of(
        "CONCURRENCY_LIMIT_EXCEEDED",
        f"Your plan allows {limit} queued or processing jobs at once; "
        "wait for one to finish before submitting another.",
        limit=limit,
    )


# What a client should wait before trying again while the database is unreachable: the
# health probe looks five times a second (adapters/pg_health.py).
UNAVAILABLE_RETRY_AFTER_SECONDS = 2


def service_unavailable() -> ApiError:
    return ApiError.of(
        "SERVICE_UNAVAILABLE",
        "The database is unreachable for a moment; try again in "
        f"{UNAVAILABLE_RETRY_AFTER_SECONDS} seconds. A submission that got this answer may "
        "have been recorded: repeat it with the same Idempotency-Key to be charged once.",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


def from_domain(
    refused: InsufficientCredits | ConcurrencyLimitExceeded | IdempotencyKeyReused,
) -> ApiError:
    """The contract's answer to a business rule that refused a submission."""
    if isinstance(refused, InsufficientCredits):
        return insufficient_credits(refused.required, refused.balance)
    if isinstance(refused, ConcurrencyLimitExceeded):
        return concurrency_limit_exceeded(refused.limit)
    return ApiError.of("IDEMPOTENCY_KEY_REUSED", str(refused), path="Idempotency-Key")


# aiohttp raises these itself (unknown route, wrong method, body too large).
_HTTP_CODES = {
    404: ("NOT_FOUND", "No such route."),
    405: ("INVALID_REQUEST", "Method not allowed on this route."),
    413: ("INVALID_REQUEST", "Request body too large."),
}


# A client's X-Request-Id is kept (echoed, logged, stored with its job) only if it is a
# short token of safe characters: a UUID, a ULID, a trace id. Anything else (8 KB of
# text, markup, control characters) is replaced by a new id.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# The largest request header we read (name and value). aiohttp's own parser is let read
# up to HTTP_PARSER_HEADER_BYTES (api/app.py) so that a larger one is answered here, in
# the contract's shape, instead of by the parser in plain text.
MAX_HEADER_BYTES = 8 * 1024


def request_id_of(request: web.Request) -> str:
    offered = request.headers.get("x-request-id", "")
    return offered if REQUEST_ID_PATTERN.fullmatch(offered) else uuid.uuid4().hex


def oversized_header(request: web.Request) -> ApiError | None:
    if len(request.raw_path) > MAX_HEADER_BYTES:
        return ApiError(414, "INVALID_REQUEST", "The URL is longer than 8 KiB.", path="")
    for name, value in request.raw_headers:
        if len(name) + len(value) > MAX_HEADER_BYTES:
            return ApiError(
                431,
                "INVALID_REQUEST",
                f"The {name.decode('latin-1')[:100]} header is larger than "
                f"{MAX_HEADER_BYTES // 1024} KiB.",
                path=name.decode("latin-1")[:100],
            )
    return None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    request[REQUEST_ID] = request_id
    try:
        too_large = oversized_header(request)
        if too_large is not None:
            raise too_large
        response = await handler(request)
    except ApiError as error:
        response = error.response()
    except (InsufficientCredits, ConcurrencyLimitExceeded, IdempotencyKeyReused) as refused:
        response = from_domain(refused).response()
    except (ExportTargetInvalid, AssetReferenceInvalid) as invalid:
        response = schema_error(invalid.path, invalid.message).response()
    except AssetInUse as in_use:
        response = ApiError.of("ASSET_IN_USE", str(in_use), job_ids=in_use.job_ids).response()
    except StorageLimitExceeded as refused:
        response = ApiError.of(
            "STORAGE_LIMIT_EXCEEDED",
            str(refused),
            used_bytes=refused.used_bytes,
            limit_bytes=refused.limit_bytes,
            required_bytes=refused.required_bytes,
        ).response()
    except UNAVAILABLE_ERRORS:
        log.warning(
            "database unavailable in %s %s (request %s)",
            request.method,
            request.path,
            request_id,
            exc_info=True,
        )
        response = service_unavailable().response()
    except web.HTTPException as http_error:
        if http_error.status < 400:
            raise
        code, message = _HTTP_CODES.get(http_error.status, ("INVALID_REQUEST", http_error.reason))
        # A 405 says which methods the route takes (RFC 9110), as aiohttp's own does.
        kept = {name: http_error.headers[name] for name in ("Allow",) if name in http_error.headers}
        response = ApiError(http_error.status, code, message, headers=kept).response()
    except Exception:
        log.exception(
            "unhandled error in %s %s (request %s)", request.method, request.path, request_id
        )
        response = ApiError.of(
            "INTERNAL_ERROR",
            f"An unexpected error occurred. Reference: {request_id}.",
            request_id=request_id,
        ).response()
    response.headers["X-Request-Id"] = request_id
    return response
