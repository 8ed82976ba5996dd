"""Rate limiting of authenticated requests, per account and plan.

Every authenticated response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset`; over the limit the answer is 429 RATE_LIMIT_EXCEEDED with
`Retry-After`. An account's limits come from its plan; they are cached for a few
seconds per process, so a plan change applies within `LIMITS_TTL_SECONDS`.
"""

from __future__ import annotations

from aiohttp import web

from phantomflow.adapters.ratelimit import RateDecision
from phantomflow.api.errors import ApiError, Handler
from phantomflow.api.services import PRINCIPAL, services_of


def headers_for(decision: RateDecision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_at),
    }


RATE_HEADERS = web.RequestKey("rate_headers", dict)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    principal = request.get(PRINCIPAL)
    if principal is None:  # public route
        return await handler(request)
    services = services_of(request)
    limits = await services.limits.get(services, principal.account_id)
    decision = await services.rate_limiter.hit(
        str(principal.account_id), limits.requests_per_minute
    )
    request[RATE_HEADERS] = headers_for(decision)
    if not decision.allowed:
        raise ApiError.of(
            "RATE_LIMIT_EXCEEDED",
            f"Your plan allows {decision.limit} requests a minute; "
            f"retry in {decision.retry_after} s.",
            headers={"Retry-After": str(decision.retry_after)},
        )
    return await handler(request)


async def add_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response to an authenticated request, streams and
    errors included, carries the account's rate-limit headers."""
    response.headers.update(request.get(RATE_HEADERS, {}))
