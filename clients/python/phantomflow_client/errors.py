"""What can go wrong, as exceptions: every API error carries the contract's fields.

The API answers errors as `{"error": {"code", "message", "path"?, ...}}`. `APIError`
keeps all of it; its subclass says which HTTP family it was, so callers can catch
`NotFoundError` without comparing status codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from phantomflow_client.models import Job


class PhantomFlowError(Exception):
    """Base of every exception this client raises."""


class APIConnectionError(PhantomFlowError):
    """No answer from the server (refused, reset, timed out) after every retry."""


class APIError(PhantomFlowError):
    """An error answer from the API.

    `code` is the contract's machine-readable code (`SCHEMA_VALIDATION_ERROR`, ...),
    `path` the failing field when there is one, and `details` every other field of the
    error object (`required` and `balance` for INSUFFICIENT_CREDITS, `limit`, ...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        path: str | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        where = f" at {path!r}" if path else ""
        super().__init__(f"{status} {code}{where}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.details = details or {}
        self.request_id = request_id
        self.headers = headers or httpx.Headers()


class BadRequestError(APIError):
    """400: INVALID_JSON, SCHEMA_VALIDATION_ERROR, VALIDATION_ERROR, INVALID_REQUEST."""


class AuthenticationError(APIError):
    """401: the key is missing, unknown or revoked."""


class InsufficientCreditsError(APIError):
    """402: the render needs more credits than the balance (`required`, `balance`)."""

    @property
    def required(self) -> int | None:
        return self.details.get("required")

    @property
    def balance(self) -> int | None:
        return self.details.get("balance")


class PermissionDeniedError(APIError):
    """403: e.g. changing another account's public template."""


class NotFoundError(APIError):
    """404: NOT_FOUND or TEMPLATE_NOT_FOUND."""


class ConflictError(APIError):
    """409: e.g. JOB_ALREADY_FINISHED when cancelling."""


class GoneError(APIError):
    """410: OUTPUT_DELETED (a job's files were deleted) or PREVIEW_EXPIRED."""


class UnprocessableError(APIError):
    """422: e.g. IDEMPOTENCY_KEY_REUSED."""


class RateLimitError(APIError):
    """429 after every retry: RATE_LIMIT_EXCEEDED or CONCURRENCY_LIMIT_EXCEEDED."""

    @property
    def retry_after(self) -> float | None:
        return retry_after_seconds(self.headers)


class ServerError(APIError):
    """5xx after every retry."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: UnprocessableError,
    429: RateLimitError,
}


class JobFailedError(PhantomFlowError):
    """A job that was waited for ended without a video: failed or cancelled."""

    def __init__(self, job: Job) -> None:
        error = job.error
        reason = f"{error.code}: {error.message}" if error else job.status
        super().__init__(f"job {job.job_id} {job.status}: {reason}")
        self.job = job


class WaitTimeoutError(PhantomFlowError):
    """A job did not end within the time it was waited for (it goes on running)."""

    def __init__(self, job_id: str, timeout: float) -> None:
        super().__init__(f"job {job_id} did not finish within {timeout:g} s")
        self.job_id = job_id
        self.timeout = timeout


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """`Retry-After` in seconds (the API sends whole seconds), None if absent or unreadable."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def error_from_response(response: httpx.Response) -> APIError:
    """The exception for an error answer; the body must have been read."""
    status = response.status_code
    code, message, path, details = f"HTTP_{status}", response.reason_phrase, None, {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        fields = dict(body["error"])
        code = str(fields.pop("code", code))
        message = str(fields.pop("message", message))
        path = fields.pop("path", None)
        details = fields
    elif response.text:
        message = response.text[:500]
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    return kind(
        status,
        code,
        message,
        path=path,
        details=details,
        request_id=response.headers.get("x-request-id"),
        headers=response.headers,
    )
