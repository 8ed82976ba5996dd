"""API keys of the calling account: list them, mint one, revoke one.

A new key's secret is in the response to its creation and nowhere else, ever; after
that only its prefix is shown. A revoked key answers 401 on its next request, on every
API process.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from marshmallow import ValidationError, validate

from phantomflow.api.errors import invalid_request, not_found
from phantomflow.api.requests import path_id, principal_of, read_json
from phantomflow.api.schemas import StrictSchema, String, first_error, json_type
from phantomflow.api.services import services_of
from phantomflow.domain.keys import LIVE, PREFIXES

routes = web.RouteTableDef()


class NewKeySchema(StrictSchema):
    """The body of POST /api/keys (also published in the OpenAPI document). A misspelt
    field is refused: `{"mdoe": "test"}` must not quietly mint a live key."""

    mode = String(
        load_default=LIVE,
        validate=validate.OneOf(
            tuple(PREFIXES), error=f"mode must be one of: {', '.join(PREFIXES)}"
        ),
        metadata={"description": "live keys spend credits; test keys are sandbox keys."},
    )


def key_mode(body: Any) -> str:
    """The mode a POST /api/keys body asks for, or INVALID_REQUEST."""
    if not isinstance(body, dict):
        raise invalid_request(f"Expected a JSON object, received {json_type(body)}.", path="")
    try:
        return NewKeySchema().load(body)["mode"]
    except ValidationError as error:
        path, message = first_error(error.messages)
        raise invalid_request(message, path=path) from None


@routes.get("/api/keys")
async def list_keys(request: web.Request) -> web.Response:
    services = services_of(request)
    account = await services.call(
        services.runtime.app.get_account, principal_of(request).account_id
    )
    keys = [
        {"id": key_id, "prefix": key["prefix"], "mode": key["mode"], "revoked": key["revoked"]}
        for key_id, key in account.api_keys.items()
    ]
    return web.json_response({"keys": keys})


@routes.post("/api/keys")
async def create_key(request: web.Request) -> web.Response:
    mode = key_mode(await read_json(request))
    services = services_of(request)
    key_id, secret, prefix = await services.call(
        services.runtime.app.mint_key, principal_of(request).account_id, mode
    )
    return web.json_response(
        {"id": str(key_id), "api_key": secret, "prefix": prefix, "mode": mode}, status=201
    )


@routes.delete("/api/keys/{key_id}")
async def revoke_key(request: web.Request) -> web.Response:
    principal = principal_of(request)
    key_id = path_id(request, "key_id", "key")
    services = services_of(request)
    account = await services.call(services.runtime.app.get_account, principal.account_id)
    key = account.api_keys.get(str(key_id))
    if key is None or key["revoked"]:
        raise not_found(f"No active key {request.match_info['key_id']}.")
    await services.call(services.runtime.app.revoke_key, principal.account_id, key_id)
    return web.json_response({"id": str(key_id), "revoked": True})
