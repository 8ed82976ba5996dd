"""The clients: `Client` (blocking) and `AsyncClient`, one attribute per part of the API."""

from __future__ import annotations

import os
from typing import Generic, Literal, Unpack, overload

import httpx

from phantomflow_client._transport import (
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    AsyncTransport,
    RetryPolicy,
    SyncTransport,
)
from phantomflow_client.errors import JobFailedError
from phantomflow_client.models import Job, Submission
from phantomflow_client.resources._base import Transport
from phantomflow_client.resources.account import Accounts
from phantomflow_client.resources.assets import Assets, AsyncAssets
from phantomflow_client.resources.credits import AsyncCredits, Credits
from phantomflow_client.resources.events import AsyncEvents, Events
from phantomflow_client.resources.integrations import Integrations
from phantomflow_client.resources.jobs import AsyncJobs, Jobs, OnEvent
from phantomflow_client.resources.keys import Keys
from phantomflow_client.resources.previews import AsyncPreviews, Previews
from phantomflow_client.resources.renders import Renders, Script, SubmitOptions
from phantomflow_client.resources.schema import Schema
from phantomflow_client.resources.templates import Templates
from phantomflow_client.resources.webhooks import Webhooks


def settings(api_key: str | None, base_url: str | None) -> tuple[str | None, str]:
    """The key and URL given, else PHANTOMFLOW_API_KEY and PHANTOMFLOW_URL."""
    key = api_key or os.environ.get("PHANTOMFLOW_API_KEY") or None
    url = base_url or os.environ.get("PHANTOMFLOW_URL") or DEFAULT_URL
    return key, url.rstrip("/")


def _finished(job: Job) -> Job:
    if job.status != "completed":
        raise JobFailedError(job)
    return job


class _Parts(Generic[Transport]):
    """The parts of the API both clients reach the same way (their calls block or are
    awaited as the transport does); each client adds those with logic of its own."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.renders = Renders(transport)
        self.templates = Templates(transport)
        self.keys = Keys(transport)
        self.account = Accounts(transport)
        self.webhooks = Webhooks(transport)
        self.schema = Schema(transport)
        self.integrations = Integrations(transport)


class Client(_Parts[SyncTransport]):
    """A blocking client. Use it as a context manager, or call `close()`.

    `api_key` and `base_url` default to PHANTOMFLOW_API_KEY and PHANTOMFLOW_URL."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        key, url = settings(api_key, base_url)
        self.base_url = url
        transport = SyncTransport(url, key, timeout, retry or RetryPolicy(), http_client)
        super().__init__(transport)
        self.jobs = Jobs(transport)
        self.events = Events(transport)
        self.credits = Credits(transport)
        self.previews = Previews(transport)
        self.assets = Assets(transport)

    @overload
    def render(
        self,
        script: Script,
        *,
        wait: Literal[True] = True,
        timeout: float | None = None,
        on_event: OnEvent | None = None,
        **options: Unpack[SubmitOptions],
    ) -> Job: ...
    @overload
    def render(
        self, script: Script, *, wait: Literal[False], **options: Unpack[SubmitOptions]
    ) -> Submission: ...

    def render(
        self,
        script: Script,
        *,
        wait: bool = True,
        timeout: float | None = None,
        on_event: OnEvent | None = None,
        **options: Unpack[SubmitOptions],
    ) -> Job | Submission:
        """Submit `script` (`options`: as `renders.create`'s); with `wait` (the default)
        follow the job over SSE and return it completed, or raise JobFailedError (failed
        or cancelled) or WaitTimeoutError."""
        submission = self.renders.create(script, **options)
        if not wait:
            return submission
        return _finished(self.jobs.wait(submission.job_id, timeout=timeout, on_event=on_event))

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncClient(_Parts[AsyncTransport]):
    """The same API with `await`; use it with `async with`, or `await close()`."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        key, url = settings(api_key, base_url)
        self.base_url = url
        transport = AsyncTransport(url, key, timeout, retry or RetryPolicy(), http_client)
        super().__init__(transport)
        self.jobs = AsyncJobs(transport)
        self.events = AsyncEvents(transport)
        self.credits = AsyncCredits(transport)
        self.previews = AsyncPreviews(transport)
        self.assets = AsyncAssets(transport)

    @overload
    async def render(
        self,
        script: Script,
        *,
        wait: Literal[True] = True,
        timeout: float | None = None,
        on_event: OnEvent | None = None,
        **options: Unpack[SubmitOptions],
    ) -> Job: ...
    @overload
    async def render(
        self, script: Script, *, wait: Literal[False], **options: Unpack[SubmitOptions]
    ) -> Submission: ...

    async def render(
        self,
        script: Script,
        *,
        wait: bool = True,
        timeout: float | None = None,
        on_event: OnEvent | None = None,
        **options: Unpack[SubmitOptions],
    ) -> Job | Submission:
        submission = await self.renders.create(script, **options)
        if not wait:
            return submission
        job = await self.jobs.wait(submission.job_id, timeout=timeout, on_event=on_event)
        return _finished(job)

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
