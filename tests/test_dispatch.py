"""Jobs reach the broker by following the event log, and survive Redis being down."""

from __future__ import annotations

import threading
import time
import uuid

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from phantomflow.domain.script import MovieScript
from phantomflow.projections.runner import FollowerRunner
from phantomflow.workers.actors import declare_render_actor
from phantomflow.workers.dispatch import Dispatcher
from tests.conftest import TINY_SCRIPT


class Received:
    """Stands in for the render service: records which jobs the broker delivered."""

    def __init__(self) -> None:
        self.job_ids: list[uuid.UUID] = []
        self.arrived = threading.Event()

    def run(self, job_id: uuid.UUID) -> str:
        self.job_ids.append(job_id)
        self.arrived.set()
        return "received"


def test_a_job_submitted_while_redis_is_down_is_dispatched_once_redis_is_back(
    runtime, private_redis
):
    broker = RedisBroker(url=private_redis.url)
    received = Received()
    actor = declare_render_actor(broker, lambda: received)  # type: ignore[arg-type]
    dispatcher = FollowerRunner(runtime.app, runtime.views, Dispatcher(send=actor.send))

    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {"channel": "test"}
    ).job_id  # Redis is down: the submission still succeeds

    assert dispatcher.run_once() == 0
    position_while_down = dispatcher.position()
    assert position_while_down < runtime.app.recorder.max_notification_id()

    private_redis.start()
    assert dispatcher.run_once() == 1
    assert dispatcher.position() == runtime.app.recorder.max_notification_id()

    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        assert received.arrived.wait(10)
    finally:
        worker.stop()
        broker.close()
    assert received.job_ids == [job_id]


def test_dispatcher_sends_each_job_once_across_restarts(runtime, private_redis):
    private_redis.start()
    broker = RedisBroker(url=private_redis.url)
    sent: list[str] = []
    actor = declare_render_actor(broker, Received)  # type: ignore[arg-type]

    def send(job_id: str) -> None:
        actor.send(job_id)
        sent.append(job_id)

    account = runtime.app.open_account(plan="pro", credits=10)
    first = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    FollowerRunner(runtime.app, runtime.views, Dispatcher(send=send)).catch_up()
    second = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    # A new dispatcher process starts from the stored position, not from zero.
    FollowerRunner(runtime.app, runtime.views, Dispatcher(send=send)).catch_up()
    broker.close()
    assert sent == [str(first), str(second)]


class Sent(list[str]):
    """The dispatcher's `send`: what it put on the queue, in order."""

    def __call__(self, job_id: str) -> None:
        self.append(job_id)


def processing_job(runtime, lease_seconds: float) -> uuid.UUID:
    """A job started by "worker-a", holding a lease of `lease_seconds`."""
    app = runtime.app
    account = app.open_account(plan="pro", credits=10)
    job_id = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    app.start_job(app.get_job(job_id), "worker-a", lease_seconds=lease_seconds)
    return job_id


def test_a_processing_job_silent_past_its_lease_is_dispatched_again(runtime):
    sent, now = Sent(), [0.0]
    dispatcher = FollowerRunner(
        runtime.app, runtime.views, Dispatcher(sent, lease_seconds=300, clock=lambda: now[0])
    )
    app = runtime.app
    job_id = processing_job(runtime, lease_seconds=5)
    dispatcher.catch_up()
    assert sent == [str(job_id)]
    started = app.get_job(job_id).modified_on.timestamp()

    now[0] = started + 4.9  # within the lease the attempt recorded (not the default 300)
    assert dispatcher.run_due() == 0
    now[0] = started + 5.1
    assert dispatcher.run_due() == 1
    assert sent == [str(job_id)] * 2
    assert dispatcher.run_due() == 0  # once per lease while it stays silent
    now[0] = started + 10.2
    assert dispatcher.run_due() == 1

    app.cancel_job(job_id)
    dispatcher.catch_up()
    now[0] = started + 10_000
    assert dispatcher.run_due() == 0 and len(sent) == 3  # an ended job never again


def test_a_sign_of_life_moves_the_lease_on(runtime):
    sent, now = Sent(), [0.0]
    dispatcher = FollowerRunner(runtime.app, runtime.views, Dispatcher(sent, clock=lambda: now[0]))
    app = runtime.app
    job_id = processing_job(runtime, lease_seconds=5)
    started = app.get_job(job_id).modified_on.timestamp()
    time.sleep(0.3)
    job = app.get_job(job_id)
    app.renew_lease(job, "worker-a", 1)
    dispatcher.catch_up()
    now[0] = started + 5.1  # past the lease from Started, not from the renewal
    assert dispatcher.run_due() == 0
    now[0] = app.get_job(job_id).modified_on.timestamp() + 5.1
    assert dispatcher.run_due() == 1


def test_a_queued_job_not_started_is_dispatched_again_at_doubling_intervals(runtime):
    sent, now = Sent(), [1000.0]
    dispatcher = FollowerRunner(
        runtime.app, runtime.views, Dispatcher(sent, lease_seconds=10, clock=lambda: now[0])
    )
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    dispatcher.catch_up()
    resent_at = []
    for moment in range(1000, 1200):
        now[0] = float(moment)
        if dispatcher.run_due():
            resent_at.append(moment)
    assert resent_at == [1010, 1030, 1070, 1150]
    assert sent == [str(job_id)] * 5


def test_a_resend_the_broker_refuses_is_tried_again_at_the_next_look(runtime):
    now = [0.0]
    broker_up = [True]
    sent = Sent()

    def send(job_id: str) -> None:
        if not broker_up[0]:
            raise ConnectionError("Redis is down")
        sent(job_id)

    dispatcher = FollowerRunner(
        runtime.app, runtime.views, Dispatcher(send, lease_seconds=10, clock=lambda: now[0])
    )
    account = runtime.app.open_account(plan="pro", credits=10)
    runtime.app.submit_render(account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {})
    dispatcher.catch_up()
    now[0] = 11.0
    broker_up[0] = False
    assert dispatcher.run_due() == 0
    broker_up[0] = True
    assert dispatcher.run_due() == 1 and len(sent) == 2
