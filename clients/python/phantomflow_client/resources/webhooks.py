"""Webhooks: a job's delivery log, manual redelivery, the account's signing secret.

(Checking a received webhook's signature is `phantomflow_client.webhooks.verify`.)
"""

from __future__ import annotations

from phantomflow_client._transport import Call
from phantomflow_client.models import Redelivery, WebhookLog, WebhookSecret
from phantomflow_client.resources._base import (
    Resource,
    Transport,
    model,
    sends,
)


def deliveries(job_id: str) -> Call[WebhookLog]:
    """The job's webhook and every attempt to deliver it."""
    return Call("GET", f"/api/jobs/{job_id}/webhooks", model(WebhookLog))


def redeliver(job_id: str) -> Call[Redelivery]:
    """Send the job's webhook once more (same body, same webhook-id)."""
    return Call("POST", f"/api/jobs/{job_id}/webhooks/redeliver", model(Redelivery))


def secret() -> Call[WebhookSecret]:
    """The `whsec_...` secret deliveries are signed with (created on first use)."""
    return Call("GET", "/api/webhooks/secret", model(WebhookSecret))


def rotate_secret() -> Call[WebhookSecret]:
    """A new secret; the previous one signs beside it until `previous_secret_expires_at`."""
    return Call("POST", "/api/webhooks/secret/rotate", model(WebhookSecret))


class Webhooks(Resource[Transport]):
    deliveries = sends(deliveries)
    redeliver = sends(redeliver)
    secret = sends(secret)
    rotate_secret = sends(rotate_secret)
