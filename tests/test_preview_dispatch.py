"""A preview whose queue message is lost (Redis restarted empty, its worker killed) is
dispatched again from the event log, like a render (workers/dispatch.py)."""

from __future__ import annotations

import time
import uuid

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from phantomflow.api.bootstrap import Runtime, preview_service
from phantomflow.domain.previews import COMPLETED
from phantomflow.domain.script import MovieScript
from phantomflow.projections.runner import FollowerRunner
from phantomflow.workers.dispatch import PreviewDispatcher
from phantomflow.workers.previews import declare_preview_actor
from tests.conftest import TINY_SCRIPT
from tests.test_dispatch import Sent


def new_preview(runtime: Runtime) -> uuid.UUID:
    account = runtime.app.open_account(plan="pro", credits=0)
    return runtime.app.create_preview(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), {"channel": "api"}
    ).id


def test_a_queued_preview_never_started_is_dispatched_again_until_it_ends(runtime):
    sent, now = Sent(), [1000.0]
    dispatcher = FollowerRunner(
        runtime.app,
        runtime.views,
        PreviewDispatcher(sent, lease_seconds=10, clock=lambda: now[0]),
    )
    preview_id = new_preview(runtime)
    dispatcher.catch_up()
    assert sent == [str(preview_id)]

    now[0] = 1009.9
    assert dispatcher.run_due() == 0
    now[0] = 1010.0
    assert dispatcher.run_due() == 1 and sent == [str(preview_id)] * 2

    runtime.app.delete_preview(preview_id)  # its owner gave up on it: never again
    dispatcher.catch_up()
    now[0] = 100_000.0
    assert dispatcher.run_due() == 0 and len(sent) == 2


def test_a_drawing_preview_silent_past_the_lease_is_dispatched_again(runtime):
    sent, now = Sent(), [0.0]
    dispatcher = FollowerRunner(
        runtime.app,
        runtime.views,
        PreviewDispatcher(sent, lease_seconds=5, clock=lambda: now[0]),
    )
    app = runtime.app
    preview_id = new_preview(runtime)
    app.start_preview(app.get_preview(preview_id), "worker-a", lease_seconds=5)
    app.report_preview_progress(app.get_preview(preview_id), 0.1, "storyboard")
    dispatcher.catch_up()
    alive = app.get_preview(preview_id).modified_on.timestamp()

    now[0] = alive + 4.9  # from its last sign of life, not from its start
    assert dispatcher.run_due() == 0
    now[0] = alive + 5.1
    assert dispatcher.run_due() == 1
    assert dispatcher.run_due() == 0  # once per lease while it stays silent
    assert sent == [str(preview_id)] * 2

    app.fail_preview(preview_id, "RENDER_FAILED", "ended")
    dispatcher.catch_up()
    now[0] = alive + 1000
    assert dispatcher.run_due() == 0


@pytest.mark.ffmpeg
def test_previews_whose_messages_redis_lost_are_drawn_once_by_a_worker(
    postgres_settings, private_redis
):
    """One preview queued, one held by a worker that died; Redis restarted empty loses
    both messages. The dispatcher sends both again and a live worker draws each, once."""
    from phantomflow.api.bootstrap import build_runtime

    runtime = build_runtime(postgres_settings)
    lease = 1.0
    private_redis.start()
    broker = RedisBroker(url=private_redis.url)
    service = preview_service(runtime)
    service.lease_seconds = lease
    actor = declare_preview_actor(broker, lambda: service)
    dispatcher = FollowerRunner(
        runtime.app, runtime.views, PreviewDispatcher(actor.send, lease, due_interval=0.1)
    )
    app = runtime.app
    queued, orphaned = new_preview(runtime), new_preview(runtime)
    dispatcher.catch_up()  # both messages are in Redis now
    app.start_preview(app.get_preview(orphaned), "worker-killed", lease_seconds=lease)
    private_redis.restart_empty()

    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        deadline = time.monotonic() + 90  # the lease, a draw each, and a shared machine
        while time.monotonic() < deadline:
            dispatcher.catch_up()
            dispatcher.run_due()
            if all(app.get_preview(p).status == COMPLETED for p in (queued, orphaned)):
                break
            time.sleep(0.1)
    finally:
        worker.stop()
        broker.close()
    try:
        for preview_id in (queued, orphaned):
            assert app.get_preview(preview_id).status == COMPLETED
            names = [type(e).__name__ for e in app.events.get(preview_id)]
            assert names.count("ProxyReady") == 1
        events = [type(e).__name__ for e in app.events.get(orphaned)]
        assert events.count("Started") == 2  # the dead worker's attempt, then a take-over
    finally:
        runtime.close()
