"""The Dramatiq actor that renders jobs.

Actors are declared against an explicit broker (Redis in production, Dramatiq's
in-process StubBroker for the embedded default), never Dramatiq's implicit global
one, so one process can hold either and tests can build their own.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import dramatiq
from dramatiq.brokers.stub import StubBroker

from phantomflow.workers.render import JobBusy, RenderService

RENDER_QUEUE = "renders"
RENDER_ACTOR = "render_job"
# Dramatiq's own limit must outlast the renderer's; the renderer times out first.
RENDER_TIME_LIMIT_MS = 2 * 60 * 60 * 1000


def _should_retry(retries: int, error: BaseException) -> bool:
    # A busy job (its holder's lease about to run out) is retried a few times, a second
    # or more apart, until the lease has run out; anything else (the database briefly
    # unreachable) a few times too. A job whose message is lost for good is sent again
    # by the dispatcher (workers/dispatch.py).
    if isinstance(error, JobBusy):
        return retries < 10
    return retries < 5


def declare_render_actor(
    broker: dramatiq.Broker, service: Callable[[], RenderService]
) -> dramatiq.Actor[[str], None]:
    def render_job(job_id: str) -> None:
        service().run(UUID(job_id))

    return dramatiq.actor(
        render_job,
        broker=broker,
        actor_name=RENDER_ACTOR,
        queue_name=RENDER_QUEUE,
        time_limit=RENDER_TIME_LIMIT_MS,
        retry_when=_should_retry,
        min_backoff=1_000,
        max_backoff=60_000,
    )


def in_process_broker() -> StubBroker:
    broker = StubBroker()
    broker.emit_after("process_boot")
    return broker
