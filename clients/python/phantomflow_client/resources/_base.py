"""What every resource module builds on: the transports, and readers of answers.

A resource is one module with a function per call that says what to send (a `Call`),
whose signature and docstring are the method's, and two thin classes, one sync and one
async, that send it: `list = sends(list_keys)` in one, `list = sends_async(list_keys)`
in the other. So the parameters of a call are written once, whichever client calls it;
only methods with logic of their own (paging, following, waiting) are written twice.
The client lists each resource once (`_client.py`), so a new part of the API is a new
module and two lines.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from phantomflow_client._transport import AsyncTransport, Call, SyncTransport
from phantomflow_client.models import Model

M = TypeVar("M", bound=Model)
T = TypeVar("T")
P = ParamSpec("P")
F = TypeVar("F", bound=Callable[..., Any])


class SyncResource:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport


class AsyncResource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport


def sends(build: Callable[P, Call[T]]) -> Callable[Concatenate[SyncResource, P], T]:
    """A method of a blocking resource: it sends the call `build` describes (and takes
    `build`'s parameters and docstring)."""

    @functools.wraps(build)
    def method(self: SyncResource, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._transport.send(build(*args, **kwargs))

    return _described(method, build)


def sends_async(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncResource, P], Coroutine[Any, Any, T]]:
    """The same method for an async resource."""

    @functools.wraps(build)
    async def method(self: AsyncResource, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._transport.send(build(*args, **kwargs))

    return _described(method, build)


def _described(method: F, build: Callable[..., Any]) -> F:
    """`help()` and `inspect.signature` show the method as it is called: `self`, then
    the builder's parameters, returning what the call answers (not the `Call`)."""
    signature = inspect.signature(build)
    answer = signature.return_annotation
    if isinstance(answer, str) and answer.startswith("Call[") and answer.endswith("]"):
        answer = answer.removeprefix("Call[").removesuffix("]")
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self, *signature.parameters.values()], return_annotation=answer
    )
    return method


def model(kind: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        return kind.from_dict(response.json())

    return parse


def models(kind: type[M], key: str) -> Callable[[httpx.Response], list[M]]:
    """A list of `kind` under `key` of the answer."""

    def parse(response: httpx.Response) -> list[M]:
        return [kind.from_dict(item) for item in response.json()[key]]

    return parse


def json_body(response: httpx.Response) -> Any:
    return response.json()


def text_body(response: httpx.Response) -> str:
    return response.text


def idempotency_headers(key: str | None) -> dict[str, str]:
    """One key per call, generated here unless given, reused by every retry of the call."""
    return {"Idempotency-Key": key or f"pf-{uuid.uuid4()}"}


def instant(value: datetime | str | None) -> str | None:
    """A query instant: a datetime as ISO 8601 (naive means UTC, as the server reads it)."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def with_extras(body: Mapping[str, Any], **extras: Any) -> dict[str, Any]:
    """`body` with each extra that is given (not None) set on it: a render's
    `webhook_uri`, `metadata` and `exports`."""
    return {**body, **{name: value for name, value in extras.items() if value is not None}}
