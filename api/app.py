"""The aiohttp application."""

from __future__ import annotations

from aiohttp import web

from api import credits
from api.auth import auth_middleware
from api.errors import error_middleware
from api.routes import routes
from api.services import SERVICES, Services

MAX_BODY_BYTES = 2 * 1024 * 1024


def create_app(services: Services) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[SERVICES] = services
    app.add_routes(routes)
    app.add_routes(credits.routes)

    async def close_services(_: web.Application) -> None:
        services.close()

    app.on_cleanup.append(close_services)
    return app
