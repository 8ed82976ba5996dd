"""API keys of the calling account: list them, mint one, revoke one.

A new key's secret is in the response to its creation and nowhere else, ever; after
that only its prefix is shown. A revoked key answers 401 on its next request, on every
API process.

A sandbox key sees and manages sandbox keys only: it lists them, mints them (its
requests' `mode` defaults to `test`; asking for `live` is 403) and revokes them (a live
key's id is unknown to it: 404). A live key manages every key of its account.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from marshmallow import ValidationError, validate

from phantomflow.api.errors import forbidden, invalid_request, not_found
from phantomflow.api.requests import path_id, principal_of, read_json
from phantomflow.api.schemas import StrictSchema, String, first_error, json_type
from phantomflow.api.services import services_of
from phantomflow.domain.application import Principal
from phantomflow.domain.keys import LIVE, PREFIXES, TEST

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


def key_mode(body: Any, caller: Principal) -> str:
    """The mode a POST /api/keys body asks for (by default the caller's own when it is
    a sandbox key), INVALID_REQUEST, or FORBIDDEN for a live key asked by a sandbox key."""
    if not isinstance(body, dict):
        raise invalid_request(f"Expected a JSON object, received {json_type(body)}.", path="")
    if caller.is_sandbox and "mode" not in body:
        body = {**body, "mode": TEST}
    try:
        mode: str = NewKeySchema().load(body)["mode"]
    except ValidationError as error:
        path, message = first_error(error.messages)
        raise invalid_request(message, path=path) from None
    if caller.is_sandbox and mode != TEST:
        raise forbidden("A sandbox (ve_test_) key can mint sandbox keys only; use a live key.")
    return mode


def manages(caller: Principal, key: dict[str, Any]) -> bool:
    """Whether the caller may see and revoke `key`: a sandbox key, sandbox keys only."""
    return not caller.is_sandbox or key["mode"] == TEST


@routes.get("/api/keys")
async def list_keys(request: web.Request) -> web.Response:
    caller = principal_of(request)
    services = services_of(request)
    account = await services.call(services.runtime.app.get_account, caller.account_id)
    keys = [
        {"id": key_id, "prefix": key["prefix"], "mode": key["mode"], "revoked": key["revoked"]}
        for key_id, key in account.api_keys.items()
        if manages(caller, key)
    ]
    return web.json_response({"keys": keys})


@routes.post("/api/keys")
async def create_key(request: web.Request) -> web.Response:
    caller = principal_of(request)
    mode = key_mode(await read_json(request), caller)
    services = services_of(request)
    key_id, secret, prefix = await services.call(
        services.runtime.app.mint_key, caller.account_id, mode
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
    if key is None or key["revoked"] or not manages(principal, key):
        raise not_found(f"No active key {request.match_info['key_id']}.")
    await services.call(services.runtime.app.revoke_key, principal.account_id, key_id)
    return web.json_response({"id": str(key_id), "revoked": True})
