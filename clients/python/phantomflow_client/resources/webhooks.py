"""Webhooks: a job's delivery log, manual redelivery, the account's signing secret.

(Checking a received webhook's signature is `phantomflow_client.webhooks.verify`.)
"""

from __future__ import annotations

from phantomflow_client._transport import Call
from phantomflow_client.models import Redelivery, WebhookLog, WebhookSecret
from phantomflow_client.resources._base import AsyncResource, SyncResource, model


def deliveries_call(job_id: str) -> Call[WebhookLog]:
    return Call("GET", f"/api/jobs/{job_id}/webhooks", model(WebhookLog))


def redeliver_call(job_id: str) -> Call[Redelivery]:
    return Call("POST", f"/api/jobs/{job_id}/webhooks/redeliver", model(Redelivery))


def secret_call() -> Call[WebhookSecret]:
    return Call("GET", "/api/webhooks/secret", model(WebhookSecret))


def rotate_call() -> Call[WebhookSecret]:
    return Call("POST", "/api/webhooks/secret/rotate", model(WebhookSecret))


class Webhooks(SyncResource):
    def deliveries(self, job_id: str) -> WebhookLog:
        return self._transport.send(deliveries_call(job_id))

    def redeliver(self, job_id: str) -> Redelivery:
        """Send the job's webhook once more (same body, same webhook-id)."""
        return self._transport.send(redeliver_call(job_id))

    def secret(self) -> WebhookSecret:
        """The `whsec_...` secret deliveries are signed with (created on first use)."""
        return self._transport.send(secret_call())

    def rotate_secret(self) -> WebhookSecret:
        """A new secret; the previous one signs beside it until `previous_secret_expires_at`."""
        return self._transport.send(rotate_call())


class AsyncWebhooks(AsyncResource):
    async def deliveries(self, job_id: str) -> WebhookLog:
        return await self._transport.send(deliveries_call(job_id))

    async def redeliver(self, job_id: str) -> Redelivery:
        return await self._transport.send(redeliver_call(job_id))

    async def secret(self) -> WebhookSecret:
        return await self._transport.send(secret_call())

    async def rotate_secret(self) -> WebhookSecret:
        return await self._transport.send(rotate_call())
