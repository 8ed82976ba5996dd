"""Errors in the contract's shape: `{"error": {"code", "message", ...}}`, whatever went wrong.

Handlers raise `ApiError`; the middleware turns it, aiohttp's own HTTP errors and any
unexpected exception into that body. An unexpected exception is logged with the
request id and answered 500 INTERNAL_ERROR without a stack trace.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from phantomflow.adapters.pg_health import UNAVAILABLE_ERRORS
from phantomflow.api.services import REQUEST_ID
from phantomflow.domain.errors import ConcurrencyLimitExceeded, InsufficientCredits
from phantomflow.domain.exports import ExportTargetInvalid
from phantomflow.domain.idempotency import IdempotencyKeyReused

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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

    def response(self) -> web.Response:
        body = {"error": {"code": self.code, "message": self.message, **self.details}}
        return web.json_response(body, status=self.status, headers=self.headers)


def invalid_json(message: str) -> ApiError:
    return ApiError(400, "INVALID_JSON", message)


def schema_error(path: str, message: str) -> ApiError:
    return ApiError(400, "SCHEMA_VALIDATION_ERROR", message, path=path)


def invalid_request(message: str, path: str | None = None) -> ApiError:
    details = {"path": path} if path is not None else {}
    return ApiError(400, "INVALID_REQUEST", message, **details)


def unsupported_media_type(received: str) -> ApiError:
    return ApiError(
        415,
        "INVALID_REQUEST",
        f"Content-Type must be application/json, received {received or 'none'}.",
        path="Content-Type",
    )


def unauthorized(message: str = "Missing or invalid API key.") -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "FORBIDDEN", message)


def not_found(message: str = "Not found.") -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


def insufficient_credits(required: int, balance: int) -> ApiError:
    return ApiError(
        402,
        "INSUFFICIENT_CREDITS",
        f"This render needs {required} credits; the balance is {balance}.",
        required=required,
        balance=balance,
    )


def concurrency_limit_exceeded(limit: int) -> ApiError:
    return ApiError(
        429,
        "CONCURRENCY_LIMIT_EXCEEDED",
        f"Your plan allows {limit} queued or processing jobs at once; "
        "wait for one to finish before submitting another.",
        limit=limit,
    )


# What a client should wait before trying again while the database is unreachable: the
# health probe looks five times a second (adapters/pg_health.py).
UNAVAILABLE_RETRY_AFTER_SECONDS = 2


def service_unavailable() -> ApiError:
    return ApiError(
        503,
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
    return ApiError(422, "IDEMPOTENCY_KEY_REUSED", str(refused), path="Idempotency-Key")


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
    except ExportTargetInvalid as invalid:
        response = schema_error(invalid.path, invalid.message).response()
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
        response = ApiError(
            500,
            "INTERNAL_ERROR",
            f"An unexpected error occurred. Reference: {request_id}.",
            request_id=request_id,
        ).response()
    response.headers["X-Request-Id"] = request_id
    return response
