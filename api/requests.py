"""What route handlers read from a request: its JSON body, its caller, its query and path
parameters, and the public address its answer's URLs start with.

Everything here answers a bad request in the contract's error shape (`api/errors.py`).
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from aiohttp import web

from phantomflow.api.errors import invalid_json, invalid_request, not_found
from phantomflow.api.services import PRINCIPAL, services_of
from phantomflow.domain.application import Principal


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise invalid_json("Request body is empty; expected a JSON object.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid_json(f"Request body is not valid JSON: {error}") from None


def principal_of(request: web.Request) -> Principal:
    """Who is calling (set by the auth middleware on every authenticated route)."""
    return request[PRINCIPAL]


# The highest `page` of a list (the OpenAPI document publishes it as the maximum).
MAX_PAGE = 1_000_000


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_request(f"{name} must be an integer", path=name) from None
    if not low <= value <= high:
        raise invalid_request(f"{name} must be between {low} and {high}", path=name)
    return value


def path_id(request: web.Request, name: str, what: str) -> UUID:
    """The UUID in the path parameter `name`; 404 "No {what} …" when it is not one (no
    such thing can exist)."""
    raw = request.match_info[name]
    try:
        return UUID(raw)
    except ValueError:
        raise not_found(f"No {what} {raw}.") from None


def job_id_of(request: web.Request) -> UUID:
    return path_id(request, "job_id", "job")


def public_base(request: web.Request) -> str:
    """The API's public address: PHANTOMFLOW_PUBLIC_URL, or the one the request came to."""
    configured = services_of(request).runtime.settings.public_url
    return configured or str(request.url.origin())
