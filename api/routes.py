"""Route handlers for renders and jobs: submit, list, read, history, cancel, download."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web
from marshmallow import ValidationError

from phantomflow.api.errors import ApiError, invalid_request, not_found, schema_error
from phantomflow.api.large_bodies import LARGE_BODIES
from phantomflow.api.requests import (
    INLINE_BODY_BYTES,
    job_id_of,
    parse_json,
    principal_of,
    public_base,
    query_choice,
    query_page,
    read_body,
)
from phantomflow.api.schemas import first_error, load_render_request
from phantomflow.api.services import services_of
from phantomflow.api.submissions import submit
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.errors import IllegalJobTransition
from phantomflow.domain.jobs import STATUSES
from phantomflow.domain.metadata import is_key as is_metadata_key
from phantomflow.projections.job_view import history_entry, public_view

routes = web.RouteTableDef()


@routes.post("/api/render")
async def submit_render(request: web.Request) -> web.Response:
    raw = await read_body(request)
    if len(raw) > INLINE_BODY_BYTES:  # parsed and checked in another process
        body, checked = await request.app[LARGE_BODIES].check_render_request(raw)
    else:
        body = parse_json(raw)
        try:
            checked = load_render_request(body)
        except ValidationError as error:
            path, message = first_error(error.messages)
            raise schema_error(path, message) from None
    script, webhook_uri, exports, metadata = checked
    return await submit(request, body, script, webhook_uri, {"channel": "api"}, exports, metadata)


@routes.get("/api/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    principal = principal_of(request)
    page, limit = query_page(request)
    status = query_choice(request, "status", STATUSES)
    services = services_of(request)
    found = await services.call(
        services.runtime.jobs.page,
        str(principal.account_id),
        status,
        page,
        limit,
        principal.is_sandbox,
        metadata_filter(request),
    )
    base = public_base(request)
    return web.json_response(
        {
            "jobs": [public_view(doc, base) for doc in found.jobs],
            "total": found.total,
            "page": page,
            "limit": limit,
        }
    )


def metadata_filter(request: web.Request) -> tuple[str, str] | None:
    """(key, value) of a `metadata.<key>=<value>` query parameter: one at most."""
    given = [(name, value) for name, value in request.query.items() if name.startswith("metadata.")]
    if not given:
        return None
    if len(given) > 1:
        raise invalid_request("Filter on one metadata key at a time", path=given[1][0])
    name, value = given[0]
    key = name.removeprefix("metadata.")
    if not is_metadata_key(key):
        raise invalid_request("Metadata keys are 1 to 64 letters, digits, _ or -", path=name)
    return key, value


async def own_job(request: web.Request) -> tuple[UUID, dict[str, Any]]:
    """The caller's job named in the path and its document as it stands; 404 when it
    is not theirs (or not of their key's mode: live keys see live jobs only)."""
    principal = principal_of(request)
    job_id = job_id_of(request)
    services = services_of(request)
    doc = await services.call(
        services.runtime.jobs.current, str(principal.account_id), str(job_id), principal.is_sandbox
    )
    if doc is None:
        raise not_found(f"No job {job_id}.")
    return job_id, doc


@routes.get("/api/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    _, doc = await own_job(request)
    return web.json_response(public_view(doc, public_base(request)))


@routes.get("/api/jobs/{job_id}/events")
async def job_events(request: web.Request) -> web.Response:
    """The job's whole history as stored: the audit view of one job."""
    principal = principal_of(request)
    job_id = job_id_of(request)
    services = services_of(request)
    history = await services.call(job_history, services.runtime.app, job_id)
    if (
        not history
        or history[0]["data"].get("account_id") != str(principal.account_id)
        or bool(history[0]["data"].get("sandbox")) != principal.is_sandbox
    ):
        raise not_found(f"No job {job_id}.")
    return web.json_response({"job_id": str(job_id), "events": history})


def job_history(app: PhantomFlow, job_id: UUID) -> list[dict[str, Any]]:
    """Every event of a job as stored: type, time, version and data."""
    return [history_entry(event) for event in app.events.get(job_id)]


@routes.post("/api/jobs/{job_id}/cancel")
async def cancel_job(request: web.Request) -> web.Response:
    """Cancel a queued or processing job; the refund follows docs/api.md's rule."""
    job_id, _ = await own_job(request)
    services = services_of(request)
    try:
        job = await services.call(services.runtime.app.cancel_job, job_id)
    except IllegalJobTransition:
        raise ApiError.of(
            "JOB_ALREADY_FINISHED",
            f"Job {job_id} has already finished; it cannot be cancelled.",
        ) from None
    return web.json_response(
        {
            "job_id": str(job_id),
            "status": job.status,
            "credits_used": job.credits_used,
            "credits_refunded": job.estimated_credits - (job.credits_used or 0),
        }
    )
