"""Route handlers for integrations: `POST/GET /api/integrations`, `GET/DELETE …/{id}`.

An integration's secrets are sealed (adapters/secrets.py) before anything is recorded
and never come back out of the API: answers show its settings and, per secret, that
it is set and its last four characters (for long secrets). Deleting one destroys its
data key first, so its secret is unrecoverable even if recording the deletion fails
(a retry records it).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from phantomflow.adapters.secrets import hint
from phantomflow.api.errors import ApiError
from phantomflow.api.integration_schemas import parse_new_integration
from phantomflow.api.requests import on_callers, principal_of, read_json
from phantomflow.api.services import services_of
from phantomflow.domain.integrations import IntegrationNotFound
from phantomflow.projections.integrations import view_of

routes = web.RouteTableDef()


@routes.post("/api/integrations")
async def create_integration(request: web.Request) -> web.Response:
    principal = principal_of(request)
    services = services_of(request)
    runtime = services.runtime
    given = parse_new_integration(await read_json(request), runtime.settings.allow_private_urls)
    if not runtime.vault.available:
        raise ApiError.of(
            "SECRETS_KEY_MISSING",
            "This server has no PHANTOMFLOW_SECRETS_KEY, so it cannot store secrets; "
            "its operator must set one.",
        )
    integration_id = uuid.uuid4()
    sealed = await services.call(runtime.vault.seal, integration_id, given.secrets)
    integration, position = await services.call(
        runtime.app.create_integration,
        integration_id,
        principal.account_id,
        principal.is_sandbox,
        given.type,
        given.name,
        given.settings,
        sealed,
        {field: hint(value) for field, value in given.secrets.items()},
    )
    await services.read_your_writes(services.runtime.integrations_runner, position)
    return web.json_response(view_of(integration), status=201)


@routes.get("/api/integrations")
async def list_integrations(request: web.Request) -> web.Response:
    principal = principal_of(request)
    services = services_of(request)
    found = await services.call(
        services.runtime.integrations.list, str(principal.account_id), principal.is_sandbox
    )
    return web.json_response({"integrations": found})


@routes.get("/api/integrations/{integration_id}")
async def get_integration(request: web.Request) -> web.Response:
    app = services_of(request).runtime.app
    integration = await on_callers(
        request, app.usable_integration, "integration_id", IntegrationNotFound
    )
    return web.json_response(view_of(integration))


@routes.delete("/api/integrations/{integration_id}")
async def delete_integration(request: web.Request) -> web.Response:
    services = services_of(request)
    runtime = services.runtime
    position = await on_callers(
        request,
        runtime.app.delete_integration,
        "integration_id",
        IntegrationNotFound,
        runtime.vault.destroy,
    )
    await services.read_your_writes(runtime.integrations_runner, position)
    body: dict[str, Any] = {"id": request.match_info["integration_id"], "deleted": True}
    return web.json_response(body)
