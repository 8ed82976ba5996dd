"""Following an event stream through disconnects, without losing or repeating an event.

Every event carries its position in the server's event store as its SSE `id`. The
follower remembers the last one it handed on and reconnects with it as `Last-Event-ID`;
the server then sends exactly the events after it (docs/api.md, "Live progress"). An
event at or before that position is never handed on twice, whatever the server resends.

A job stream ends after `complete` or `error`; reconnecting after the end answers 204,
which ends the follower too. The account stream (`closes=False`) never ends by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from phantomflow_client._sse import Decoder, Resume
from phantomflow_client._transport import (
    STREAM_TIMEOUT,
    AsyncTransport,
    Attempts,
    Call,
    SyncTransport,
)
from phantomflow_client.errors import APIConnectionError, WaitTimeoutError
from phantomflow_client.models import Event


def _stream_call(path: str, resume: Resume) -> Call[None]:
    return Call("GET", path, parse=lambda _: None, headers=resume.headers())


def _timeout(deadline: float | None) -> httpx.Timeout:
    if deadline is None:
        return STREAM_TIMEOUT
    remaining = max(0.05, deadline - time.monotonic())
    return httpx.Timeout(min(10.0, remaining), read=min(STREAM_TIMEOUT.read or 60.0, remaining))


def follow_sync(
    transport: SyncTransport,
    path: str,
    resume: Resume,
    closes: bool,
    timeout: float | None = None,
    job_id: str = "",
) -> Iterator[Event]:
    deadline = None if timeout is None else time.monotonic() + timeout
    attempts = Attempts(transport.retry, _stream_call(path, resume), what=f"event stream {path}")
    while not resume.ended:
        try:
            with transport.stream(_stream_call(path, resume), _timeout(deadline)) as response:
                if response.status_code == 204:
                    return  # the follower had already seen the final event
                decoder = Decoder()
                for line in response.iter_lines():
                    if deadline is not None and time.monotonic() > deadline:
                        raise WaitTimeoutError(job_id, timeout or 0)
                    event = resume.line(decoder, line, closes)
                    if event is not None:
                        attempts.succeeded()
                        yield event
                        if resume.ended:
                            return
        except (httpx.TransportError, APIConnectionError) as error:
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeoutError(job_id, timeout or 0) from error
            if isinstance(error, APIConnectionError):
                raise  # the transport has already retried opening the stream
            time.sleep(attempts.after_error(error))
            continue
        time.sleep(attempts.after_close())


async def follow_async(
    transport: AsyncTransport,
    path: str,
    resume: Resume,
    closes: bool,
) -> AsyncIterator[Event]:
    attempts = Attempts(transport.retry, _stream_call(path, resume), what=f"event stream {path}")
    while not resume.ended:
        try:
            async with transport.stream(_stream_call(path, resume)) as response:
                if response.status_code == 204:
                    return
                decoder = Decoder()
                async for line in response.aiter_lines():
                    event = resume.line(decoder, line, closes)
                    if event is not None:
                        attempts.succeeded()
                        yield event
                        if resume.ended:
                            return
        except httpx.TransportError as error:
            await asyncio.sleep(attempts.after_error(error))
            continue
        await asyncio.sleep(attempts.after_close())


async def drain_async(
    events: AsyncIterator[Any],
    on_event: Callable[[Any], Any] | None,
    timeout: float | None,
    what: str,
) -> None:
    """Follow `events` to their end, handing each to `on_event` (awaited when it is a
    coroutine function); WaitTimeoutError after `timeout` seconds."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            async for event in events:
                if on_event is not None:
                    result = on_event(event)
                    if asyncio.iscoroutine(result):
                        await result
    except TimeoutError:
        if timeout is not None and time.monotonic() - started >= timeout:
            raise WaitTimeoutError(what, timeout) from None
        raise
