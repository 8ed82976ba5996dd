"""Renders: submit a movie script (`POST /api/render`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from phantomflow_client._transport import Call
from phantomflow_client.models import Quote, Submission
from phantomflow_client.resources._base import (
    AsyncResource,
    SyncResource,
    idempotency_headers,
    model,
)

# A dry run records nothing, so a lost answer may be asked again.
DRY_RUN = {"dry_run": "true"}


def submission(response: httpx.Response) -> Submission:
    replayed = response.headers.get("Idempotent-Replayed") == "true"
    return Submission.from_dict({**response.json(), "replayed": replayed})


def render_body(script: Mapping[str, Any], webhook_uri: str | None) -> dict[str, Any]:
    body = dict(script)
    if webhook_uri is not None:
        body["webhook_uri"] = webhook_uri
    return body


def create_call(
    script: Mapping[str, Any], webhook_uri: str | None, idempotency_key: str | None
) -> Call[Submission]:
    return Call(
        "POST",
        "/api/render",
        submission,
        json=render_body(script, webhook_uri),
        has_body=True,
        headers=idempotency_headers(idempotency_key),
    )


def quote_call(script: Mapping[str, Any], webhook_uri: str | None) -> Call[Quote]:
    return Call(
        "POST",
        "/api/render",
        model(Quote),
        params=DRY_RUN,
        json=render_body(script, webhook_uri),
        has_body=True,
        idempotent=True,
    )


class Renders(SyncResource):
    def create(
        self,
        script: Mapping[str, Any],
        *,
        webhook_uri: str | None = None,
        idempotency_key: str | None = None,
    ) -> Submission:
        """Queue a render of `script` and charge its estimate. Safe to retry: one
        Idempotency-Key per call (generated unless given) makes retries charge once."""
        return self._transport.send(create_call(script, webhook_uri, idempotency_key))

    def quote(self, script: Mapping[str, Any], *, webhook_uri: str | None = None) -> Quote:
        """A dry run: validate and price `script` against the account's credits and
        limits now, recording nothing. Raises exactly as `create` would."""
        return self._transport.send(quote_call(script, webhook_uri))


class AsyncRenders(AsyncResource):
    async def create(
        self,
        script: Mapping[str, Any],
        *,
        webhook_uri: str | None = None,
        idempotency_key: str | None = None,
    ) -> Submission:
        return await self._transport.send(create_call(script, webhook_uri, idempotency_key))

    async def quote(self, script: Mapping[str, Any], *, webhook_uri: str | None = None) -> Quote:
        return await self._transport.send(quote_call(script, webhook_uri))
