"""Jobs reach the broker by following the event log, and survive Redis being down."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from phantomflow.domain.script import MovieScript
from phantomflow.projections.runner import FollowerRunner
from phantomflow.workers.actors import declare_render_actor
from phantomflow.workers.dispatch import Dispatcher
from tests.conftest import IN_CI, TINY_SCRIPT, free_port


class PrivateRedis:
    """A real redis-server of the test's own, so the test can stop and start it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        import redis

        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    yield server
    server.stop()


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
