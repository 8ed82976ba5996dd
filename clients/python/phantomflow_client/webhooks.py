"""Checking that a webhook came from PhantomFlow: the Standard Webhooks signature.

    from phantomflow_client.webhooks import verify, WebhookVerificationError

    try:
        payload = verify(secret, request.headers, raw_body)
    except WebhookVerificationError:
        return 400

`webhook-signature` holds one or more `v1,<base64 HMAC-SHA256>` separated by spaces
(two for a day after a secret is rotated); the signed content is
`{webhook-id}.{webhook-timestamp}.{raw body}`, keyed with the bytes that the part of the
secret after `whsec_` encodes in base64. Verify the raw bytes before parsing them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from phantomflow_client.errors import PhantomFlowError

TOLERANCE_SECONDS = 5 * 60
SECRET_PREFIX = "whsec_"


class WebhookVerificationError(PhantomFlowError):
    """The request is not a genuine, recent webhook of the secret's account."""


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,...` signature of a payload (what the server puts in `webhook-signature`)."""
    digest = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(digest.digest()).decode()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    tolerance: float = TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """The webhook's JSON payload if `body` was signed with `secret` within `tolerance`
    seconds of now; raises WebhookVerificationError otherwise. `headers` may be any
    mapping (its names are matched case-insensitively)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        raw_timestamp = lowered["webhook-timestamp"]
        signatures = lowered["webhook-signature"]
    except KeyError as missing:
        raise WebhookVerificationError(f"missing header {missing.args[0]}") from None
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far from now (a replay?)")
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(secret, msg_id, timestamp, raw).encode()
    for candidate in signatures.split(" "):
        if hmac.compare_digest(candidate.encode(), expected):
            return json.loads(raw)
    raise WebhookVerificationError("no signature matches")


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the secret is not a whsec_ base64 secret") from None
