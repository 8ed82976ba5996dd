"""Route handlers for renders and jobs."""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import UUID

from aiohttp import web
from marshmallow import ValidationError

from phantomflow.adapters.addresses import AddressRefused
from phantomflow.adapters.webhooks import check_webhook_uri
from phantomflow.api.errors import (
    ApiError,
    invalid_json,
    invalid_request,
    not_found,
    schema_error,
)
from phantomflow.api.schemas import first_error, load_render_request
from phantomflow.api.services import PRINCIPAL, REQUEST_ID, services_of
from phantomflow.domain.application import Principal, Submission
from phantomflow.domain.errors import IllegalJobTransition
from phantomflow.domain.idempotency import MAX_KEY_LENGTH, request_fingerprint
from phantomflow.domain.jobs import STATUSES

routes = web.RouteTableDef()


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise invalid_json("Request body is empty; expected a JSON object.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid_json(f"Request body is not valid JSON: {error}") from None


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def check_webhook_address(request: web.Request, webhook_uri: str | None) -> None:
    """Refuse a webhook URL that breaks the address policy of client URLs
    (adapters/addresses.py); host names are checked again at every delivery, by the
    resolver."""
    if webhook_uri is None:
        return
    try:
        check_webhook_uri(webhook_uri, services_of(request).runtime.settings.allow_private_urls)
    except AddressRefused as refused:
        raise schema_error("webhook_uri", f"Webhook URL refused: {refused}") from None


@routes.post("/api/render")
async def submit_render(request: web.Request) -> web.Response:
    principal = principal_of(request)
    body = await read_json(request)
    try:
        script, webhook_uri = load_render_request(body)
    except ValidationError as error:
        path, message = first_error(error.messages)
        raise schema_error(path, message) from None
    check_webhook_address(request, webhook_uri)
    services = services_of(request)
    idempotency = idempotency_of(request, body)
    if dry_run_of(request):
        return await quote_response(request, script)
    origin = {
        "channel": "api",
        "request_id": request[REQUEST_ID],
        "key_prefix": principal.key_prefix,
    }
    # InsufficientCredits, ConcurrencyLimitExceeded and IdempotencyKeyReused are
    # answered by the error middleware.
    submission = await services.call(
        services.runtime.app.submit_render,
        principal.account_id,
        script,
        webhook_uri,
        origin,
        idempotency,
        principal.is_sandbox,
    )
    return submission_response(submission)


def dry_run_of(request: web.Request) -> bool:
    """`?dry_run=true`: validate, price and check the limits, record nothing."""
    raw = request.query.get("dry_run", "false")
    if raw not in ("true", "false"):
        raise invalid_request("dry_run must be true or false", path="dry_run")
    return raw == "true"


async def quote_response(request: web.Request, script: dict[str, Any]) -> web.Response:
    """200 with what the submission would cost; InsufficientCredits and
    ConcurrencyLimitExceeded are answered by the error middleware, as for a submission."""
    principal = principal_of(request)
    services = services_of(request)
    quote = await services.call(
        services.runtime.app.quote_render, principal.account_id, script, principal.is_sandbox
    )
    return web.json_response(
        {
            "valid": True,
            "estimated_credits": quote.estimated_credits,
            "credits_remaining": quote.credits_remaining,
            "duration_seconds": quote.duration_seconds,
        }
    )


# An Idempotency-Key: printable ASCII (the IETF draft makes it a structured-field
# string), neither starting nor ending with a space (HTTP strips those), 1 to
# MAX_KEY_LENGTH long. The OpenAPI document publishes this pattern.
IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e](?:[\x20-\x7e]{{0,{MAX_KEY_LENGTH - 2}}}[\x21-\x7e])?")


def idempotency_of(request: web.Request, body: Any) -> tuple[str, str] | None:
    """(key, request fingerprint) from the Idempotency-Key header, if there is one."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise invalid_request(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            path="Idempotency-Key",
        )
    return key, request_fingerprint(request.path, body)


def submission_response(submission: Submission) -> web.Response:
    """202 with the contract's body; a replayed idempotent retry says so in a header."""
    headers = {"Idempotent-Replayed": "true"} if submission.replayed else None
    return web.json_response(
        {
            "job_id": str(submission.job_id),
            "status": submission.status,
            "estimated_credits": submission.estimated_credits,
            "credits_remaining": submission.credits_remaining,
        },
        status=202,
        headers=headers,
    )


# The highest `page` of a list (the OpenAPI document publishes it as the maximum).
MAX_PAGE = 1_000_000


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_request(f"{name} must be an integer", path=name) from None
    if not low <= value <= high:
        raise invalid_request(f"{name} must be between {low} and {high}", path=name)
    return value


@routes.get("/api/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    principal = principal_of(request)
    page = query_int(request, "page", 1, 1, MAX_PAGE)
    limit = query_int(request, "limit", 20, 1, 100)
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise invalid_request(f"status must be one of: {', '.join(STATUSES)}", path="status")
    services = services_of(request)
    found = await services.call(
        services.runtime.jobs.page,
        str(principal.account_id),
        status,
        page,
        limit,
        principal.is_sandbox,
    )
    base = public_base(request)
    return web.json_response(
        {
            "jobs": [job_view(doc, base) for doc in found.jobs],
            "total": found.total,
            "page": page,
            "limit": limit,
        }
    )


@routes.get("/api/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    principal = principal_of(request)
    job_id = _job_id(request)
    services = services_of(request)
    runtime = services.runtime
    doc = await services.call(
        runtime.jobs.current, str(principal.account_id), job_id, principal.is_sandbox
    )
    if doc is None:
        raise not_found(f"No job {job_id}.")
    return web.json_response(job_view(doc, public_base(request)))


@routes.get("/api/jobs/{job_id}/events")
async def job_events(request: web.Request) -> web.Response:
    """The job's whole history as stored: the audit view of one job."""
    principal = principal_of(request)
    job_id = _job_id(request)
    services = services_of(request)
    history = await services.call(services.runtime.app.job_history, UUID(job_id))
    if not history or history[0]["data"].get("account_id") != str(principal.account_id):
        raise not_found(f"No job {job_id}.")
    return web.json_response({"job_id": job_id, "events": history})


@routes.post("/api/jobs/{job_id}/cancel")
async def cancel_job(request: web.Request) -> web.Response:
    """Cancel a queued or processing job; the refund follows docs/api.md's rule."""
    principal = principal_of(request)
    job_id = _job_id(request)
    services = services_of(request)
    runtime = services.runtime
    if (
        await services.call(
            runtime.jobs.current, str(principal.account_id), job_id, principal.is_sandbox
        )
        is None
    ):
        raise not_found(f"No job {job_id}.")
    try:
        job = await services.call(runtime.app.cancel_job, UUID(job_id))
    except IllegalJobTransition:
        raise ApiError.of(
            "JOB_ALREADY_FINISHED",
            f"Job {job_id} has already finished; it cannot be cancelled.",
        ) from None
    return web.json_response(
        {
            "job_id": job_id,
            "status": job.status,
            "credits_used": job.credits_used,
            "credits_refunded": job.estimated_credits - (job.credits_used or 0),
        }
    )


def _job_id(request: web.Request) -> str:
    raw = request.match_info["job_id"]
    try:
        return str(UUID(raw))
    except ValueError:
        raise not_found(f"No job {raw}.") from None


@routes.get("/outputs/{name}")
async def download_output(request: web.Request) -> web.StreamResponse:
    services = services_of(request)
    path = services.runtime.storage.path_of(request.match_info["name"])
    if path is None:
        raise not_found("No such output.")
    content_type = "image/jpeg" if path.suffix == ".jpg" else "video/mp4"
    return web.FileResponse(path, headers={"Content-Type": content_type})


def public_base(request: web.Request) -> str:
    configured = services_of(request).runtime.settings.public_url
    return configured or str(request.url.origin())


def job_view(doc: dict[str, Any], base: str) -> dict[str, Any]:
    """The public shape of a job, from its read-model document."""
    hidden = ("output_location", "poster_location")
    view = {key: value for key, value in doc.items() if key not in hidden}
    location = doc.get("output_location")
    view["output_uri"] = f"{base}/outputs/{location}" if location else None
    poster = doc.get("poster_location")
    view["poster_uri"] = f"{base}/outputs/{poster}" if poster else None
    return view
