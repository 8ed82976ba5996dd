"""Webhook deliveries: a follower that schedules them and a Dramatiq actor that sends them.

Nothing talks to the broker inside a request or a render. `WebhookScheduler` follows
the event log like the dispatcher does and turns events into queue messages:

- a job `Completed`, `Failed` or `Cancelled` with a `webhook_uri`: attempt 1, now,
  unless it completed with exports: then when `ExportsSettled` says the last one has
  settled, so the payload carries every export's outcome;
- a `WebhookAttempted` that failed and names its `next_attempt_at`: the next attempt,
  delayed until then;
- a `WebhookRedeliveryRequested` (the manual redelivery route): one attempt, now.

Its position moves only past events whose message was sent, so a delivery (or a
retry) is never lost while Redis is down: it is sent when Redis is back. A message
lost after it was sent (Redis restarted empty with a delayed retry in it, a worker
killed holding it) is sent again from the scheduler's watch table
(workers/scheduling.py).

The actor (`WebhookService.run`) makes one attempt and records it on the job as a
`WebhookAttempted` event, whatever came of it; that event is the delivery log and what
schedules the next try. Each attempt (trigger, number) is recorded once, so a message
delivered twice by the broker neither logs nor schedules twice.

Retry schedule (automatic attempts; `RETRY_DELAYS`): after the first attempt fails,
retries follow 30 s, 2 min, 8 min, 32 min, 2 h 8 min, 8 h 32 min and 12 h later: 8
attempts over about 23 h 22 min. Network errors, timeouts (10 s) and any answer
outside 2xx (redirects included) count as failures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import dramatiq

from phantomflow.adapters import webhooks
from phantomflow.adapters.topics import topics_of
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.errors import IllegalJobTransition, JobNotFound
from phantomflow.domain.jobs import AUTOMATIC, MANUAL, RenderJob, WebhookAttempt
from phantomflow.domain.keys import LIVE, TEST
from phantomflow.projections import job_view
from phantomflow.workers.scheduling import Scheduler

log = logging.getLogger(__name__)

WEBHOOK_QUEUE = "webhooks"
WEBHOOK_ACTOR = "deliver_webhook"

# Seconds from a failed automatic attempt to the next: 30 s × 4ⁿ, capped at 12 h.
RETRY_DELAYS: tuple[float, ...] = (30, 120, 480, 1920, 7680, 30720, 43200)

# The events that end a job, each of which sends its webhook.
ENDINGS = (RenderJob.Completed, RenderJob.Failed, RenderJob.Cancelled)

# A job that ended longer ago than this gets no automatic webhook: the retries would
# have given up by now anyway (sum of RETRY_DELAYS), and a scheduler starting from
# position 0 on an old store (a lost tracking row, a first deployment) must not send
# every historic job's webhook at once. Manual redelivery still works.
DELIVERY_WINDOW = timedelta(hours=24)


@dataclass
class WebhookService:
    """One delivery attempt of a job's webhook, recorded on the job."""

    app: PhantomFlow
    public_url: str | None
    allow_private: bool = False
    retry_delays: Sequence[float] = RETRY_DELAYS
    timeout: float = webhooks.TIMEOUT_SECONDS

    def run(self, job_id: UUID, trigger: str, number: int) -> str:
        """Attempt delivery `number` of `trigger`; return what happened, for logs."""
        try:
            job = self.app.get_job(job_id)
        except JobNotFound:
            return "unknown job"
        if not job.is_finished or not job.webhook_uri:
            return "nothing to send"
        if not job.exports_settled:
            return "exports not settled yet"
        if f"{trigger}:{number}" in job.webhook_attempted:
            return "already attempted"
        if trigger == AUTOMATIC and job.webhook_delivered:
            return "already delivered"
        doc = job_view.document(self.app.events.get(job_id))
        assert doc is not None  # the job exists
        body = webhooks.encode(job_view.webhook_body(doc, self.public_url))
        now = datetime.now(UTC)
        headers = webhooks.signed_headers(
            webhooks.message_id(job.id),
            int(now.timestamp()),
            body,
            self.app.webhook_signing_secrets(job.account_id, now, TEST if job.sandbox else LIVE),
        )
        attempt = asyncio.run(
            webhooks.post(job.webhook_uri, body, headers, self.timeout, self.allow_private)
        )
        next_attempt_at = None
        if not attempt.delivered and trigger == AUTOMATIC and number <= len(self.retry_delays):
            next_attempt_at = datetime.now(UTC) + timedelta(seconds=self.retry_delays[number - 1])
        try:
            self.app.record_webhook_attempt(
                job_id,
                WebhookAttempt(
                    trigger=trigger,
                    sequence=number,
                    url=job.webhook_uri,
                    status_code=attempt.status_code,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                    next_attempt_at=next_attempt_at,
                    response_excerpt=attempt.response_excerpt,
                ),
            )
        except IllegalJobTransition:
            return "already attempted"  # a copy of this message got there first
        if attempt.delivered:
            return "delivered"
        return f"failed: {attempt.error}"


class WebhookScheduler(Scheduler):
    """Follows job endings, attempts and redelivery requests; sends deliveries, and
    again if a message is lost (workers/scheduling.py)."""

    name = "webhooks"
    what = "webhook"
    topics = topics_of(
        *ENDINGS,
        RenderJob.ExportsSettled,
        RenderJob.WebhookAttempted,
        RenderJob.WebhookRedeliveryRequested,
    )

    def schedule(self, event: Any) -> None:
        job_id = str(event.originator_id)
        if isinstance(event, (*ENDINGS, RenderJob.ExportsSettled)):
            submitted = self.submitted(event)
            if not getattr(submitted, "webhook_uri", None):
                return
            if isinstance(event, RenderJob.Completed) and getattr(submitted, "exports", None):
                return  # sent when the exports have settled (ExportsSettled)
            if self.clock() - event.timestamp > DELIVERY_WINDOW:
                log.warning("job %s ended at %s, outside the delivery window: no webhook",
                            job_id, event.timestamp.isoformat())  # fmt: skip
            else:
                self.dispatch(job_id, AUTOMATIC, 1, 0)
        elif isinstance(event, RenderJob.WebhookAttempted):
            self.heard(job_id, event.trigger, event.sequence)
            if event.trigger == AUTOMATIC and event.next_attempt_at is not None:
                delay = self.delay_until(event.next_attempt_at)
                self.dispatch(job_id, AUTOMATIC, event.sequence + 1, delay)
        elif isinstance(event, RenderJob.WebhookRedeliveryRequested):
            self.dispatch(job_id, MANUAL, event.request, 0)


def declare_webhook_actor(
    broker: dramatiq.Broker, service: Callable[[], WebhookService]
) -> dramatiq.Actor[[str, str, int], None]:
    def deliver_webhook(job_id: str, trigger: str, number: int) -> None:
        outcome = service().run(UUID(job_id), trigger, number)
        log.info("webhook of job %s (%s %d): %s", job_id, trigger, number, outcome)

    return dramatiq.actor(
        deliver_webhook,
        broker=broker,
        actor_name=WEBHOOK_ACTOR,
        queue_name=WEBHOOK_QUEUE,
        # One POST has 10 s; the rest is two reads and one write of the event store.
        time_limit=120_000,
        # Dramatiq's own retries are for the event store being unreachable; failed
        # deliveries are retried by the schedule above, not by exceptions.
        max_retries=5,
        min_backoff=1_000,
        max_backoff=60_000,
    )
