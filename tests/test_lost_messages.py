"""A webhook delivery or an export attempt whose queue message is lost (Redis restarted
empty, a worker killed holding it) is sent again from the scheduler's watch table
(workers/scheduling.py), like a render (workers/dispatch.py)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from phantomflow.api.bootstrap import build_runtime
from phantomflow.domain import exports as ex
from phantomflow.domain.jobs import AUTOMATIC, RenderJob, WebhookAttempt
from phantomflow.domain.script import MovieScript
from phantomflow.projections.runner import FollowerRunner
from phantomflow.workers.exports import EXPORT_LEASE, ExportScheduler
from phantomflow.workers.scheduling import MAX_SENDS, delayed_sender
from phantomflow.workers.webhooks import WebhookScheduler, WebhookService, declare_webhook_actor
from tests.conftest import TINY_SCRIPT
from tests.test_webhooks import PUBLIC_URL, ended_job, receive  # noqa: F401 - a fixture

GRACE = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def at(self, moment: datetime, seconds: float) -> None:
        self.now = moment + timedelta(seconds=seconds)


class Sent(list[tuple[Any, ...]]):
    def __call__(self, *message: Any) -> None:
        self.append(message)


def attempt(number: int, status: int, next_at: datetime | None) -> WebhookAttempt:
    return WebhookAttempt(
        trigger=AUTOMATIC, sequence=number, url="http://hooks.example/h", status_code=status,
        error=None if status == 200 else f"HTTP {status}", duration_ms=5,
        next_attempt_at=next_at,
    )  # fmt: skip


def test_a_webhook_delivery_not_heard_of_is_sent_again_until_an_attempt_is_recorded(runtime):
    sent, clock = Sent(), Clock()
    runner = FollowerRunner(
        runtime.app,
        runtime.views,
        WebhookScheduler(runtime.app, sent, clock=clock, grace_seconds=GRACE),
    )
    app = runtime.app
    account = app.open_account(plan="pro", credits=10)
    job_id = ended_job(runtime, account.account_id, "http://hooks.example/h")
    runner.catch_up()
    assert sent == [(str(job_id), AUTOMATIC, 1, 0)]
    sent_at = clock.now

    clock.at(sent_at, GRACE - 0.1)
    assert runner.run_due() == 0
    clock.at(sent_at, GRACE + 0.1)  # lost: sent again, then after twice as long
    assert runner.run_due() == 1 and sent[-1] == (str(job_id), AUTOMATIC, 1, 0)
    assert runner.run_due() == 0

    retry_at = clock.now + timedelta(seconds=30)
    app.record_webhook_attempt(job_id, attempt(1, 502, retry_at))
    runner.catch_up()  # attempt 1 is heard of; attempt 2 is watched from when it is due
    assert sent[-1][:3] == (str(job_id), AUTOMATIC, 2)
    clock.at(retry_at, GRACE - 0.1)
    assert runner.run_due() == 0
    clock.at(retry_at, GRACE + 0.1)
    assert runner.run_due() == 1 and sent[-1] == (str(job_id), AUTOMATIC, 2, 0)

    app.record_webhook_attempt(job_id, attempt(2, 200, None))
    runner.catch_up()
    clock.at(clock.now, 100_000)
    assert runner.run_due() == 0 and len(sent) == 4


def test_a_message_never_heard_of_is_given_up_after_a_bounded_number_of_sends(runtime):
    sent, clock = Sent(), Clock()
    runner = FollowerRunner(
        runtime.app,
        runtime.views,
        WebhookScheduler(runtime.app, sent, clock=clock, grace_seconds=GRACE),
    )
    account = runtime.app.open_account(plan="pro", credits=10)
    ended_job(runtime, account.account_id, "http://hooks.example/h")
    runner.catch_up()
    for _ in range(50):
        clock.at(clock.now, 3600)
        runner.run_due()
    assert len(sent) == MAX_SENDS


def completed_job_with_an_export(runtime) -> UUID:
    app = runtime.app
    account = app.open_account(plan="pro", credits=10)
    integration, _ = app.create_integration(
        uuid4(), account.account_id, False, "s3", "bucket", {"bucket": "b"}, "sealed", {}
    )
    target = {"type": "s3", "integration_id": integration.ref}
    script = MovieScript.from_dict(TINY_SCRIPT)
    job_id = app.submit_render(account.account_id, script, None, {}, exports=[target]).job_id
    app.start_job(app.get_job(job_id), "worker", lease_seconds=60)
    app.complete_job(job_id, f"{job_id}.mp4", 1.0, 2048)
    return job_id


def test_an_export_attempt_is_sent_again_if_not_started_or_its_worker_dies(runtime):
    sent, clock = Sent(), Clock()
    runner = FollowerRunner(
        runtime.app,
        runtime.views,
        ExportScheduler(runtime.app, sent, clock=clock, grace_seconds=GRACE),
    )
    app = runtime.app
    job_id = completed_job_with_an_export(runtime)
    runner.catch_up()
    assert sent == [(str(job_id), 0, 1, 0)]
    clock.at(clock.now, GRACE + 0.1)
    assert runner.run_due() == 1  # not started: its message was lost

    app.start_export(job_id, 0, 1, EXPORT_LEASE)
    runner.catch_up()
    started = app.get_job(job_id).modified_on
    clock.at(started, GRACE + 60)  # running: watched by its lease, not by the grace
    assert runner.run_due() == 0
    clock.at(started + EXPORT_LEASE, GRACE + 0.1)  # its worker died: taken over
    assert runner.run_due() == 1 and sent[-1] == (str(job_id), 0, 1, 0)

    outcome = ex.ExportOutcome(location="s3://bucket/x.mp4", bytes=2048)
    app.finish_export(job_id, 0, 1, outcome, 10)
    runner.catch_up()
    clock.at(clock.now, 100_000)
    assert runner.run_due() == 0 and len(sent) == 3


async def test_a_webhook_retry_lost_with_redis_is_sent_again_and_delivered_once(
    postgres_settings,
    private_redis,
    receive,  # noqa: F811 - the fixture
):
    runtime = build_runtime(replace(postgres_settings, allow_private_urls=True))
    receiver = await receive(502, 200)
    private_redis.start()
    broker = RedisBroker(url=private_redis.url)
    service = WebhookService(runtime.app, PUBLIC_URL, allow_private=True, retry_delays=(3,))
    actor = declare_webhook_actor(broker, lambda: service)
    scheduler = WebhookScheduler(
        runtime.app, delayed_sender(actor), grace_seconds=1.0, due_interval=0.1
    )
    runner = FollowerRunner(runtime.app, runtime.views, scheduler)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        account = runtime.app.open_account(plan="pro", credits=10)
        job_id = ended_job(runtime, account.account_id, receiver.url)

        def attempts() -> list[int | None]:
            events = runtime.app.events.get(job_id)
            return [e.status_code for e in events if isinstance(e, RenderJob.WebhookAttempted)]

        deadline = time.monotonic() + 60
        while attempts() != [502]:  # attempt 1 fails; attempt 2 waits 3 s in Redis
            assert time.monotonic() < deadline, attempts()
            runner.catch_up()
            await asyncio.sleep(0.05)
        runner.catch_up()  # attempt 2 is sent, delayed
        private_redis.restart_empty()  # and lost
        while attempts() != [502, 200]:
            assert time.monotonic() < deadline, attempts()
            runner.catch_up()
            runner.run_due()
            await asyncio.sleep(0.05)
        assert len(receiver.requests) == 2
    finally:
        worker.stop()
        broker.close()
        runtime.close()
