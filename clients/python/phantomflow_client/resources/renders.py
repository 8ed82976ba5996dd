"""Renders: submit a movie script (`POST /api/render`), or price it first (a dry run).

`metadata` is your own JSON object, kept with the job and sent back with it; `exports`
are targets the video is delivered to once rendered, each naming one of your
integrations (docs/api.md, "Metadata" and "Exports")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import httpx

from phantomflow_client._transport import Call
from phantomflow_client.models import Quote, Submission
from phantomflow_client.resources._base import (
    Resource,
    Transport,
    idempotency_headers,
    model,
    sends,
    with_extras,
)

# A dry run records nothing, so a lost answer may be asked again.
DRY_RUN = {"dry_run": "true"}
Metadata = Mapping[str, Any]
Exports = Sequence[Mapping[str, Any]]
Script = Mapping[str, Any]


class SubmitOptions(TypedDict, total=False):
    """What a submission may carry besides its script (`Client.render`'s options)."""

    webhook_uri: str | None
    metadata: Metadata | None
    exports: Exports | None
    idempotency_key: str | None


def submission(response: httpx.Response) -> Submission:
    replayed = response.headers.get("Idempotent-Replayed") == "true"
    return Submission.from_dict({**response.json(), "replayed": replayed})


def submit(path: str, body: dict[str, Any], idempotency_key: str | None) -> Call[Submission]:
    """A submission: one Idempotency-Key per call, so that its retries charge once."""
    return Call(
        "POST",
        path,
        submission,
        json=body,
        has_body=True,
        headers=idempotency_headers(idempotency_key),
    )


def dry_run(path: str, body: dict[str, Any]) -> Call[Quote]:
    return Call(
        "POST", path, model(Quote), params=DRY_RUN, json=body, has_body=True, idempotent=True
    )


def create(
    script: Mapping[str, Any],
    *,
    webhook_uri: str | None = None,
    metadata: Metadata | None = None,
    exports: Exports | None = None,
    idempotency_key: str | None = None,
) -> Call[Submission]:
    """Queue a render of `script` and charge its estimate. Safe to retry: one
    Idempotency-Key per call (generated unless given) makes retries charge once.
    `webhook_uri`, `metadata` and `exports`, when given, replace the script's."""
    body = with_extras(script, webhook_uri=webhook_uri, metadata=metadata, exports=exports)
    return submit("/api/render", body, idempotency_key)


def quote(
    script: Mapping[str, Any],
    *,
    webhook_uri: str | None = None,
    metadata: Metadata | None = None,
    exports: Exports | None = None,
) -> Call[Quote]:
    """A dry run: validate and price `script` against the account's credits and
    limits now, recording nothing. Raises exactly as `create` would."""
    body = with_extras(script, webhook_uri=webhook_uri, metadata=metadata, exports=exports)
    return dry_run("/api/render", body)


class Renders(Resource[Transport]):
    create = sends(create)
    quote = sends(quote)
