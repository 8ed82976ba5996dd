"""What every resource module builds on: the transports, and readers of answers.

A resource is one module with a function per call that says what to send (a `Call`)
and two thin classes, one sync and one async, that send it. The client lists each
resource once (`_client.py`), so a new part of the API is a new module and two lines.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import httpx

from phantomflow_client._transport import AsyncTransport, SyncTransport
from phantomflow_client.models import Model

M = TypeVar("M", bound=Model)


class SyncResource:
    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport


class AsyncResource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport


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
