"""Webhook routes: a job's delivery log, manual redelivery, and the account's signing secret.

The delivery log is the job's own `WebhookAttempted` events, read from the event store
(so it is never behind, and an audit replay shows the same). See workers/webhooks.py for
how deliveries are scheduled and docs/webhooks.md for the receiving side.

Sandbox and live never mix: a sandbox key sees the webhooks of sandbox jobs only, and
reads and rotates the sandbox signing secret, which signs those jobs' webhooks alone.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web

from phantomflow.adapters.webhooks import message_id
from phantomflow.api.errors import ApiError, not_found
from phantomflow.api.requests import job_id_of, principal_of
from phantomflow.api.services import services_of
from phantomflow.domain.application import PhantomFlow, Principal
from phantomflow.domain.errors import IllegalJobTransition
from phantomflow.domain.jobs import AUTOMATIC, FINAL_STATUSES, RenderJob
from phantomflow.projections.job_view import attempt_view, document
from phantomflow.projections.timestamps import iso

routes = web.RouteTableDef()


def delivery_log(app: PhantomFlow, caller: Principal, job_id: UUID) -> dict[str, Any] | None:
    """The job's webhook and every attempt to deliver it; None if the caller may not see
    the job (another account's, or of the other mode)."""
    events = list(app.events.get(job_id))
    if not events or not isinstance(events[0], RenderJob.Submitted):
        return None
    submitted = events[0]
    if submitted.account_id != caller.account_id or submitted.sandbox != caller.is_sandbox:
        return None
    job = document(events)
    assert job is not None  # it starts with its submission
    ended = job["status"] in FINAL_STATUSES
    attempts = [e for e in events if isinstance(e, RenderJob.WebhookAttempted)]
    automatic = [a for a in attempts if a.trigger == AUTOMATIC]
    if not job["webhook_uri"]:
        status = "none"
    elif any(a.delivered for a in attempts):
        status = "delivered"
    elif not ended:
        status = "waiting_for_job"
    elif not attempts:
        status = "pending"
    elif automatic and automatic[-1].next_attempt_at is not None:
        status = "retrying"
    else:
        status = "failed"
    return {
        "job_id": str(job_id),
        "webhook_uri": job["webhook_uri"],
        "webhook_id": message_id(job_id),
        "status": status,
        "attempts": [attempt_view(a) for a in attempts],
    }


@routes.get("/api/jobs/{job_id}/webhooks")
async def job_webhooks(request: web.Request) -> web.Response:
    principal = principal_of(request)
    job_id = job_id_of(request)
    services = services_of(request)
    log = await services.call(delivery_log, services.runtime.app, principal, job_id)
    if log is None:
        raise not_found(f"No job {job_id}.")
    return web.json_response(log)


@routes.post("/api/jobs/{job_id}/webhooks/redeliver")
async def redeliver_webhook(request: web.Request) -> web.Response:
    """Send the job's webhook once more, with the same payload and webhook-id."""
    principal = principal_of(request)
    job_id = job_id_of(request)
    services = services_of(request)
    app = services.runtime.app
    found = await services.call(delivery_log, app, principal, job_id)
    if found is None:
        raise not_found(f"No job {job_id}.")
    try:
        request_number = await services.call(app.request_webhook_redelivery, job_id)
    except IllegalJobTransition as refused:
        raise ApiError.of("NOTHING_TO_REDELIVER", f"Nothing to redeliver: {refused}.") from None
    return web.json_response(
        {"job_id": str(job_id), "redelivery": request_number, "status": "queued"}, status=202
    )


@routes.get("/api/webhooks/secret")
async def webhook_secret(request: web.Request) -> web.Response:
    """The secret this account's webhooks are signed with (created on first use): the
    sandbox secret for a sandbox key."""
    principal = principal_of(request)
    services = services_of(request)
    secret = await services.call(
        services.runtime.app.webhook_secret, principal.account_id, principal.mode
    )
    return web.json_response({"secret": secret})


@routes.post("/api/webhooks/secret/rotate")
async def rotate_webhook_secret(request: web.Request) -> web.Response:
    """A new secret; the previous one keeps signing beside it for 24 hours."""
    principal = principal_of(request)
    services = services_of(request)
    secret, previous_expires = await services.call(
        services.runtime.app.rotate_webhook_secret, principal.account_id, mode=principal.mode
    )
    return web.json_response(
        {
            "secret": secret,
            "previous_secret_expires_at": iso(previous_expires, timespec="seconds"),
        }
    )
