"""The aiohttp application."""

from __future__ import annotations

from aiohttp import web

from phantomflow.api import (
    assets,
    credits,
    dashboard,
    integrations,
    keys,
    large_bodies,
    outputs,
    preview_viewer,
    previews,
    sse,
    webhooks,
)
from phantomflow.api import templates as template_routes
from phantomflow.api.auth import auth_middleware
from phantomflow.api.errors import error_middleware
from phantomflow.api.ratelimit import add_rate_headers, rate_limit_middleware
from phantomflow.api.routes import routes
from phantomflow.api.schema_routes import routes as schema_routes
from phantomflow.api.services import SERVICES, Services

MAX_BODY_BYTES = 2 * 1024 * 1024
HTTP_PARSER_HEADER_BYTES = 64 * 1024


def create_app(services: Services) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware, rate_limit_middleware],
        client_max_size=MAX_BODY_BYTES,
        # aiohttp's parser refuses a header line over 8 KiB with a plain-text 400 of its
        # own; it reads up to this much instead, and the error middleware refuses
        # anything over MAX_HEADER_BYTES in the contract's shape.
        handler_args={
            "max_line_size": HTTP_PARSER_HEADER_BYTES,
            "max_field_size": HTTP_PARSER_HEADER_BYTES,
        },
    )
    app[SERVICES] = services
    app.on_response_prepare.append(add_rate_headers)
    large_bodies.install(app)
    app.add_routes(routes)
    app.add_routes(credits.routes)
    app.add_routes(keys.routes)
    # Live progress (SSE): its routes and this process's one follower of the event store.
    sse.install(app, services)
    app.add_routes(webhooks.routes)
    app.add_routes(template_routes.routes)
    app.add_routes(previews.routes)
    app.add_routes(preview_viewer.routes)
    app.add_routes(integrations.routes)
    app.add_routes(assets.routes)
    app.cleanup_ctx.append(assets.sweep_abandoned_spools)
    app.add_routes(outputs.routes)
    app.add_routes(schema_routes)
    # The web app and its security headers (and no-store on every key-protected answer).
    dashboard.install(app)

    async def close_services(_: web.Application) -> None:
        await services.close()

    app.on_cleanup.append(close_services)
    return app
