"""Authentication by API key: the `x-api-key` header on every /api route but the public ones."""

from __future__ import annotations

import re

from aiohttp import web

from phantomflow.api.errors import Handler, unauthorized
from phantomflow.api.services import PRINCIPAL, services_of

PUBLIC_PATHS = frozenset({"/api/render/schema", "/api/openapi.json"})

# Browsers' EventSource cannot send headers, so the event streams also take the key in
# the `apiKey` query parameter (as the contract's example does). Only these GET routes:
# elsewhere a key in a URL would only end up in logs.
QUERY_KEY_PATHS = re.compile(r"^/api/(jobs/[^/]+/progress|events)$")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/api/") or request.path in PUBLIC_PATHS:
        return await handler(request)
    api_key = request.headers.get("x-api-key", "")
    if not api_key and request.method == "GET" and QUERY_KEY_PATHS.match(request.path):
        api_key = request.query.get("apiKey", "")
    if not api_key:
        raise unauthorized("Missing API key: pass it in the x-api-key header.")
    services = services_of(request)
    principal = await services.call(services.runtime.app.authenticate, api_key)
    if principal is None:
        raise unauthorized("Invalid API key.")
    request[PRINCIPAL] = principal
    return await handler(request)
