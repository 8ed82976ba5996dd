"""What every resource module builds on: the transports, and readers of answers.

A resource is one module with a function per call that says what to send (a `Call`);
its signature and docstring are the method's. The resource class declares each call
once, `list = sends(list_keys)`, and serves both clients: on a `Client`'s transport the
method blocks and returns the answer, on an `AsyncClient`'s it is awaited. Only methods
with logic of their own (paging, following, waiting, downloading) are written for each
client, in a sync and an async subclass. The client lists each resource once
(`_client.py`), so a new part of the API is a new module and two lines.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Generic, ParamSpec, TypeVar, overload

import httpx

from phantomflow_client._transport import AsyncTransport, Call, SyncTransport
from phantomflow_client.models import Model

M = TypeVar("M", bound=Model)
T = TypeVar("T")
P = ParamSpec("P")
Transport = TypeVar("Transport", SyncTransport, AsyncTransport)


class Resource(Generic[Transport]):
    def __init__(self, transport: Transport) -> None:
        self._transport = transport


SyncResource = Resource[SyncTransport]
AsyncResource = Resource[AsyncTransport]


class sends(Generic[P, T]):
    """A method that sends the call `build` describes, with `build`'s parameters and
    docstring: blocking on a `Client`'s resource, a coroutine on an `AsyncClient`'s."""

    def __init__(self, build: Callable[P, Call[T]]) -> None:
        self.build = build
        self.signature = _signature(build)
        functools.update_wrapper(self, build)

    @overload
    def __get__(self, resource: None, owner: type) -> sends[P, T]: ...
    @overload
    def __get__(self, resource: SyncResource, owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, resource: AsyncResource, owner: type) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, resource: Resource[Any] | None, owner: type) -> Any:
        if resource is None:
            return self
        build, transport = self.build, resource._transport
        if isinstance(transport, AsyncTransport):

            async def method(*args: Any, **kwargs: Any) -> Any:
                return await transport.send(build(*args, **kwargs))

        else:

            def method(*args: Any, **kwargs: Any) -> Any:
                return transport.send(build(*args, **kwargs))

        functools.update_wrapper(method, build)
        method.__signature__ = self.signature  # type: ignore[attr-defined]
        return method


def _signature(build: Callable[..., Any]) -> inspect.Signature:
    """The method as `help()` and `inspect.signature` show it: the builder's parameters,
    returning what the call answers (not the `Call`)."""
    signature = inspect.signature(build)
    answer = signature.return_annotation
    if isinstance(answer, str) and answer.startswith("Call[") and answer.endswith("]"):
        answer = answer.removeprefix("Call[").removesuffix("]")
    return signature.replace(return_annotation=answer)


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
