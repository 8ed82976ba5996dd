"""Webhooks out: a body's Standard Webhooks signature, and one delivery attempt.

A job's webhook is one message: the same body and the same `webhook-id` on every
attempt and every manual redelivery, so a receiver can drop duplicates. Each attempt
is signed afresh, with the time of the attempt (receivers reject stale timestamps):

    webhook-id:        msg_<job id, 32 hex digits>
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">

keyed with the base64-decoded part of the account's `whsec_…` secret. Right after a
rotation the header carries two signatures, space separated: the new secret's and the
old one's (see `domain/accounts.py`). docs/webhooks.md shows a receiver verifying it.

The POST goes through `PublicOnlyResolver`, so a webhook can never reach loopback,
private or metadata addresses unless `PHANTOMFLOW_ALLOW_PRIVATE_URLS` says so, even if
its host name is re-pointed after the job was submitted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import aiohttp

from phantomflow.adapters.addresses import AddressRefused, PublicOnlyResolver, check_url

TIMEOUT_SECONDS = 10.0
# How much of a receiver's answer the delivery log keeps.
EXCERPT_CHARS = 200
SECRET_PREFIX = "whsec_"
USER_AGENT = "PhantomFlow-Webhooks/1"


def message_id(job_id: UUID) -> str:
    return f"msg_{job_id.hex}"


def encode(body: dict[str, Any]) -> bytes:
    """The body as bytes: signed and sent exactly as encoded here."""
    return json.dumps(body, separators=(",", ":")).encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,` signature of the Standard Webhooks scheme."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    if not secrets:
        raise ValueError("a webhook needs at least one secret to be signed with")
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
    }


def check_webhook_uri(url: str, allow_private: bool) -> None:
    """What can be checked when a job is submitted, without a DNS lookup: an absolute
    http(s) URL without credentials, not a non-public IP literal or a local name. Host
    names are checked at delivery, by the resolver. Raises AddressRefused."""
    check_url(url, allow_private=allow_private)


@dataclass(frozen=True)
class Attempt:
    """What one POST came to."""

    status_code: int | None
    error: str | None
    duration_ms: int
    response_excerpt: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float = TIMEOUT_SECONDS,
    allow_private: bool = False,
) -> Attempt:
    """POST once; never raises for what the receiver or the network did."""
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        # Again at every attempt: aiohttp does not ask the resolver about IP literals.
        check_url(url, allow_private=allow_private)
    except AddressRefused as refused:
        return Attempt(None, f"refused: {refused}", elapsed())
    connector = aiohttp.TCPConnector(
        resolver=PublicOnlyResolver(allow_private=allow_private), force_close=True
    )
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as session,
            session.post(url, data=body, headers=headers, allow_redirects=False) as response,
        ):
            raw = await response.content.read(EXCERPT_CHARS * 4)
            excerpt = raw.decode("utf-8", "replace")[:EXCERPT_CHARS]
            status = response.status
            error = None if 200 <= status < 300 else f"HTTP {status} {response.reason or ''}"
            return Attempt(status, error and error.strip(), elapsed(), excerpt)
    except TimeoutError:
        return Attempt(None, f"timed out after {timeout:g} s", elapsed())
    except aiohttp.ClientConnectorError as failure:
        if isinstance(failure.os_error, AddressRefused):
            return Attempt(None, f"refused: {failure.os_error}", elapsed())
        return Attempt(None, f"cannot connect: {failure.os_error}", elapsed())
    except (aiohttp.ClientError, OSError, ValueError) as failure:
        return Attempt(None, f"{type(failure).__name__}: {failure}", elapsed())
