"""The jobs read model: follows the event store, tracks its position, rebuilds identically."""

from __future__ import annotations

import uuid

from phantomflow.domain.jobs import WebhookAttempt
from phantomflow.domain.script import MovieScript
from phantomflow.projections.jobs import TABLE, JobsProjection, followed_events_after, replay
from phantomflow.projections.runner import FollowerRunner
from tests.conftest import TINY_SCRIPT


def rows(runtime) -> list[tuple]:
    with runtime.views.read() as cursor:
        cursor.execute(f"SELECT job_id, account_id, status, seq, doc FROM {TABLE} ORDER BY job_id")
        return cursor.fetchall()


def make_history(runtime) -> uuid.UUID:
    """A few jobs in every state, with progress, for one account."""
    account = runtime.app.open_account(plan="pro", credits=100)
    submit = runtime.app.submit_render
    done = submit(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {"channel": "test"}
    ).job_id
    job = runtime.app.get_job(done)
    runtime.app.start_job(job, "w1", lease_seconds=60)
    runtime.app.report_progress(job, 0.5, "rendering_scene_1")
    runtime.app.complete_job(done, f"{done}.mp4", duration_seconds=1.0, file_size_bytes=999)
    failed = submit(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {"channel": "test"}
    ).job_id
    runtime.app.fail_job(failed, "RENDER_FAILED", "no")
    submit(account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {"channel": "test"})
    return account.account_id


def test_read_model_shows_each_job_as_its_events_left_it(runtime):
    account_id = make_history(runtime)
    runtime.jobs_runner.catch_up()
    page = runtime.jobs.page(str(account_id), None, 1, 10)
    assert [j["status"] for j in page.jobs] == ["queued", "failed", "completed"]
    completed = page.jobs[2]
    assert (completed["progress"], completed["stage"], completed["credits_used"]) == (
        1,
        "complete",
        1,
    )
    assert completed["file_size_bytes"] == 999
    assert completed["completed_at"] >= completed["started_at"] >= completed["created_at"]


def test_position_is_tracked_so_a_restarted_follower_continues_where_it_stopped(runtime):
    make_history(runtime)
    runtime.jobs_runner.catch_up()
    head = runtime.app.recorder.max_notification_id()
    assert runtime.jobs_runner.position() == head
    again = FollowerRunner(runtime.app, runtime.views, JobsProjection())
    assert again.catch_up() == 0


def test_rebuild_from_zero_writes_identical_rows(runtime):
    make_history(runtime)
    runtime.jobs_runner.catch_up()
    before = rows(runtime)
    assert len(before) == 3
    runtime.jobs_runner.rebuild()
    assert rows(runtime) == before


def test_small_batches_give_the_same_read_model_as_one_big_batch(runtime):
    make_history(runtime)
    make_history(runtime)
    small = FollowerRunner(runtime.app, runtime.views, JobsProjection(), batch_size=1)
    small.rebuild()
    in_small_batches = rows(runtime)
    runtime.jobs_runner.rebuild()
    assert rows(runtime) == in_small_batches


def test_two_copies_of_a_follower_never_both_apply_a_batch(runtime):
    make_history(runtime)
    first = FollowerRunner(runtime.app, runtime.views, JobsProjection())
    second = FollowerRunner(runtime.app, runtime.views, JobsProjection())
    # The second copy read the old position, then the first moved it: the second's
    # compare-and-set must fail and roll its batch back.
    with runtime.views.transaction() as cursor:
        stale = second.positions.read(cursor)
    first.catch_up()
    before = rows(runtime)
    with runtime.views.transaction() as cursor:
        try:
            second.positions.advance(cursor, stale, stale + 1)
            raise AssertionError("a stale position was accepted")
        except Exception as error:
            assert type(error).__name__ == "PositionMoved"
    assert rows(runtime) == before
    assert first.position() == runtime.app.recorder.max_notification_id()


def test_a_job_replayed_from_its_events_reads_as_the_read_model_shows_it(runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), "https://hooks.example.com/x", {}
    ).job_id
    runtime.app.fail_job(job_id, "RENDER_FAILED", "no")
    # Webhook deliveries are events of the job too, but not part of its read model.
    runtime.app.record_webhook_attempt(
        job_id, WebhookAttempt("automatic", 1, "https://hooks.example.com/x", 200, None, 12, None)
    )
    runtime.jobs_runner.catch_up()

    shown = runtime.jobs.get(str(account.account_id), str(job_id), False)
    replayed = replay(runtime.app.events.get(job_id))
    assert replayed is not None and replayed["doc"] == shown


def test_a_job_read_straight_after_its_cancel_is_cancelled_before_the_read_model_catches_up(
    runtime,
):
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    runtime.jobs_runner.catch_up()
    runtime.app.cancel_job(job_id)

    behind = runtime.jobs.get(str(account.account_id), str(job_id), False)
    read = runtime.jobs.current(str(account.account_id), str(job_id), False)
    assert behind is not None and behind["status"] == "queued"
    assert read is not None and read["status"] == "cancelled"
    runtime.jobs_runner.catch_up()
    assert runtime.jobs.get(str(account.account_id), str(job_id), False) == read


def test_a_finished_job_read_straight_after_its_output_is_deleted_shows_it_deleted(runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    runtime.app.start_job(runtime.app.get_job(job_id), "w1", lease_seconds=60)
    runtime.app.complete_job(job_id, f"{job_id}.mp4", duration_seconds=1.0, file_size_bytes=9)
    runtime.jobs_runner.catch_up()
    runtime.app.delete_output(job_id)

    behind = runtime.jobs.get(str(account.account_id), str(job_id), False)
    read = runtime.jobs.current(str(account.account_id), str(job_id), False)
    assert behind is not None and behind["output_deleted_at"] is None
    assert read is not None and read["output_deleted_at"] is not None
    assert read["status"] == "completed"


def test_a_job_whose_newer_events_the_read_model_ignores_is_read_from_the_read_model(runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), "https://hooks.example.com/x", {}
    ).job_id
    runtime.app.fail_job(job_id, "RENDER_FAILED", "no")
    runtime.jobs_runner.catch_up()
    runtime.app.record_webhook_attempt(
        job_id, WebhookAttempt("automatic", 1, "https://hooks.example.com/x", 200, None, 12, None)
    )
    # Only a webhook attempt is newer than the row, and the read model ignores those:
    # the row stands, no replay.
    row_version = runtime.jobs.get_versioned(str(account.account_id), str(job_id), False)[1]
    assert runtime.app.get_job(job_id).version == row_version + 1
    assert not followed_events_after(runtime.app.recorder, job_id, row_version)
