"""Submitting a render, as both ways of asking for one do it (`POST /api/render` and
`POST /api/render/template`): the webhook address checked, the script parsed into the
domain's values, the Idempotency-Key read, the job submitted, the contract's 202.

Refusals of the submission itself (InsufficientCredits, ConcurrencyLimitExceeded,
IdempotencyKeyReused) are answered by the error middleware.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from phantomflow.adapters.addresses import AddressRefused
from phantomflow.adapters.webhooks import check_webhook_uri
from phantomflow.api.errors import invalid_request, schema_error
from phantomflow.api.requests import principal_of
from phantomflow.api.services import REQUEST_ID, services_of
from phantomflow.domain.application import Submission
from phantomflow.domain.idempotency import MAX_KEY_LENGTH, request_fingerprint
from phantomflow.domain.script import MovieScript


async def submit(
    request: web.Request,
    body: Any,
    script: dict[str, Any],
    webhook_uri: str | None,
    origin: dict[str, Any],
    exports: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> web.Response:
    """Submit a validated `script` (from the request's `body`) with the client's
    validated `metadata`; `origin` says where it came from, besides the request id and
    the key's prefix, which are added here. `exports` are its validated export targets,
    whose integrations are checked here. With `?dry_run=true`, the same checks and
    price, and nothing recorded."""
    principal = principal_of(request)
    check_webhook_address(request, webhook_uri)
    idempotency = idempotency_of(request, body)
    services = services_of(request)
    if dry_run_of(request):
        if exports:  # ExportTargetInvalid is answered by the error middleware
            await services.call(
                services.runtime.app.check_export_targets,
                principal.account_id,
                principal.is_sandbox,
                exports,
            )
        return await quote_response(request, MovieScript.from_dict(script))
    origin = {**origin, "request_id": request[REQUEST_ID], "key_prefix": principal.key_prefix}
    submission = await services.call(
        services.runtime.app.submit_render,
        principal.account_id,
        MovieScript.from_dict(script),
        webhook_uri,
        origin,
        idempotency,
        principal.is_sandbox,
        exports,
        metadata,
    )
    return submission_response(submission)


def dry_run_of(request: web.Request) -> bool:
    """`?dry_run=true`: validate, price and check the limits, record nothing."""
    raw = request.query.get("dry_run", "false")
    if raw not in ("true", "false"):
        raise invalid_request("dry_run must be true or false", path="dry_run")
    return raw == "true"


async def quote_response(request: web.Request, script: MovieScript) -> web.Response:
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
