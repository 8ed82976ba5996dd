"""Published schemas: `GET /api/render/schema` (no key) and `GET /api/openapi.json`.

Both are generated from the marshmallow schemas that validate requests; see
api/openapi/.
"""

from __future__ import annotations

from aiohttp import web

from phantomflow.api.openapi import openapi_document, render_json_schema

routes = web.RouteTableDef()

SCHEMA_PATH = "/api/render/schema"
OPENAPI_PATH = "/api/openapi.json"


@routes.get(SCHEMA_PATH)
async def render_schema(request: web.Request) -> web.Response:
    return web.json_response(
        render_json_schema(),
        content_type="application/schema+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@routes.get(OPENAPI_PATH)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(), headers={"Cache-Control": "public, max-age=300"})
