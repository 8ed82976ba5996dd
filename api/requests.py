"""What route handlers read from a request: its JSON body, its caller, its query and path
parameters, and the public address its answer's URLs start with.

Everything here answers a bad request in the contract's error shape (`api/errors.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any, TypeVar
from uuid import UUID

from aiohttp import web

from phantomflow.api.errors import (
    invalid_json,
    invalid_request,
    not_found,
    unsupported_media_type,
)
from phantomflow.api.services import PRINCIPAL, services_of
from phantomflow.domain.application import Principal

# Deeper than any request we take (a script is about six levels deep): refused, so that
# no code after the parser meets a structure deep enough to exhaust Python's stack.
MAX_JSON_DEPTH = 64
# Bodies larger than this are parsed and checked on the CPU threads, off the event loop
# (a script of a few scenes is a few kilobytes).
INLINE_BODY_BYTES = 64 * 1024

T = TypeVar("T")


async def read_json(request: web.Request) -> Any:
    """The request's JSON body. Refused, in the contract's shape: an empty body
    (INVALID_JSON), one that is not `application/json` (415, before it is read), one
    that is not JSON or is nested more than MAX_JSON_DEPTH levels (INVALID_JSON)."""
    return await off_the_loop_if_large(request, parse_json, await read_body(request))


async def read_body(request: web.Request) -> bytes:
    """The raw body of a request that must carry JSON: 415 unless it is declared
    `application/json` (checked before reading it), INVALID_JSON if it is empty."""
    if request.body_exists and request.content_type != "application/json":
        raise unsupported_media_type(request.content_type)
    raw = await request.read()
    if not raw.strip():
        raise invalid_json("Request body is empty; expected a JSON object.")
    return raw


async def off_the_loop_if_large(request: web.Request, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)`, on the CPU threads if the request's body is large (see
    Services.compute), at once otherwise (a thread hop costs more than a small body)."""
    if (request.content_length or 0) > INLINE_BODY_BYTES:
        return await services_of(request).compute(work, *args)
    return work(*args)


def parse_json(raw: bytes) -> Any:
    try:
        value = json.loads(raw)
    except RecursionError:
        raise invalid_json(too_deep()) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid_json(f"Request body is not valid JSON: {error}") from None
    if nesting_depth(value) > MAX_JSON_DEPTH:
        raise invalid_json(too_deep())
    return value


def too_deep() -> str:
    return f"Request body is nested more than {MAX_JSON_DEPTH} levels deep."


def nesting_depth(value: Any) -> int:
    """How many arrays and objects deep `value` goes (without recursion)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break
        pending.extend((child, depth + 1) for child in children)
    return deepest


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


def query_page(
    request: web.Request, default_limit: int = 20, max_limit: int = 100
) -> tuple[int, int]:
    """A list's `page` (from 1) and `limit` (items a page) from the query."""
    page = query_int(request, "page", 1, 1, MAX_PAGE)
    return page, query_int(request, "limit", default_limit, 1, max_limit)


def query_choice(request: web.Request, name: str, choices: Collection[str]) -> str | None:
    """The query parameter `name`, one of `choices` (a list's filter); None if absent."""
    value = request.query.get(name)
    if value is not None and value not in choices:
        raise invalid_request(f"{name} must be one of: {', '.join(choices)}", path=name)
    return value


async def on_callers(
    request: web.Request,
    act: Callable[..., T],
    ref_param: str,
    missing: type[Exception],
    *more: Any,
) -> T:
    """`act(account_id, sandbox, ref, *more)` on a thing of the caller's own key mode
    named by the path parameter `ref_param`, on the database threads; `missing`, the
    domain's "no such thing" (another account's is not found either), answers 404."""
    principal = principal_of(request)
    ref = request.match_info[ref_param]
    try:
        return await services_of(request).call(
            act, principal.account_id, principal.is_sandbox, ref, *more
        )
    except missing as error:
        raise not_found(str(error)) from None


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
