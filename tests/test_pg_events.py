"""The PostgreSQL event recorder: one statement per save, same guarantees as the library's."""

from __future__ import annotations

import threading
import uuid

import pytest
from eventsourcing.persistence import OperationalError, RecordConflictError, StoredEvent
from eventsourcing.utils import get_topic

from phantomflow.adapters.pg_events import LockingFunctionRecorder
from phantomflow.api.bootstrap import build_runtime
from phantomflow.domain.accounts import CreditAccount
from phantomflow.domain.jobs import RenderJob
from phantomflow.domain.script import MovieScript
from tests.conftest import TINY_SCRIPT


@pytest.fixture
def pg_runtime(postgres_settings):
    built = build_runtime(postgres_settings)
    yield built
    built.close()


def stored(count: int) -> list[StoredEvent]:
    return [
        StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic="t", state=b"s")
        for _ in range(count)
    ]


def test_the_postgresql_event_store_saves_through_the_one_statement_recorder(pg_runtime):
    assert isinstance(pg_runtime.app.recorder, LockingFunctionRecorder)


def test_the_events_of_one_save_get_consecutive_positions_in_the_order_given(pg_runtime):
    app = pg_runtime.app
    account = app.open_account(plan="pro", credits=10)
    job_id = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id

    job = app.get_job(job_id)
    job.start("w1")
    job.report_progress(0.5, "rendering_scene_1")
    recordings = app.save(job)

    positions = [recording.notification.id for recording in recordings]
    assert positions == list(range(positions[0], positions[0] + 2))
    logged = app.recorder.select_notifications(positions[0], limit=10)
    assert [(n.id, n.originator_id, n.originator_version) for n in logged] == [
        (positions[0], job_id, 2),
        (positions[1], job_id, 3),
    ]
    assert app.get_job(job_id).progress == 0.5


def test_a_stale_save_is_a_conflict_and_writes_none_of_its_events(pg_runtime):
    app = pg_runtime.app
    opened = app.open_account(plan="pro", credits=10)
    first = app.get_account(opened.account_id)
    stale = app.get_account(opened.account_id)
    first.grant(5, reason="first")
    app.save(first)

    head = app.recorder.max_notification_id()
    stale.grant(7, reason="stale")
    job = RenderJob(
        account_id=opened.account_id,
        script=TINY_SCRIPT,
        estimated_credits=1,
        quality="low",
        webhook_uri=None,
        origin={},
    )
    with pytest.raises(RecordConflictError):
        app.save(stale, job)

    assert app.recorder.max_notification_id() == head
    assert app.recorder.select_events(job.id) == []
    assert app.get_account(opened.account_id).balance == 15
    # The connection that met the conflict is back in the pool with no open transaction.
    later = app.get_account(opened.account_id)
    later.grant(1, reason="after the conflict")
    app.save(later)
    assert app.get_account(opened.account_id).balance == 16


def test_concurrent_saves_never_leave_a_gap_that_a_later_commit_fills(pg_runtime):
    """A follower reads the log up to its head and moves on; the table lock taken inside
    the insert function makes commit order the position order, so whatever it has seen
    is contiguous and nothing appears later below the head it saw."""
    recorder = pg_runtime.app.recorder
    start = (recorder.max_notification_id() or 0) + 1
    writers, batches = 6, 60
    stop = threading.Event()
    problems: list[str] = []

    def write() -> None:
        for _ in range(batches):
            recorder.insert_events(stored(3))

    def follow() -> None:
        seen_head = start - 1
        while not stop.is_set():
            logged = [n.id for n in recorder.select_notifications(start, limit=10_000)]
            if logged != list(range(start, start + len(logged))):
                problems.append(f"gap in {logged[:5]}…{logged[-5:]}")
                return
            if logged and logged[-1] < seen_head:
                problems.append(f"head went back from {seen_head} to {logged[-1]}")
                return
            seen_head = logged[-1] if logged else seen_head

    follower = threading.Thread(target=follow)
    threads = [threading.Thread(target=write) for _ in range(writers)]
    follower.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    follower.join()

    assert problems == []
    logged = [n.id for n in recorder.select_notifications(start, limit=10_000)]
    assert logged == list(range(start, start + writers * batches * 3))


def lose_the_answer(recorder: LockingFunctionRecorder, *, after_commit: bool) -> None:
    """Make the recorder's next insert fail like a dropped connection: after its
    transaction committed (the answer is lost), or before it ran."""
    insert = recorder._insert
    failed = False

    def failing_once(params):
        nonlocal failed
        if failed:
            return insert(params)
        failed = True
        if after_commit:
            insert(params)
        raise OperationalError("server closed the connection unexpectedly")

    recorder._insert = failing_once


@pytest.mark.parametrize("after_commit", [True, False])
def test_a_submission_whose_commit_answer_is_lost_is_charged_once(pg_runtime, after_commit):
    app = pg_runtime.app
    account = app.open_account(plan="pro", credits=10)
    lose_the_answer(app.recorder, after_commit=after_commit)

    submission = app.submit_render(account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {})

    charges = [
        event
        for event in app.events.get(account.account_id)
        if isinstance(event, CreditAccount.CreditsCharged)
    ]
    assert [charge.job_id for charge in charges] == [submission.job_id]
    assert app.get_account(account.account_id).balance == 10 - submission.estimated_credits
    submitted = app.recorder.select_notifications(
        1, limit=100, topics=[get_topic(RenderJob.Submitted)]
    )
    assert [n.originator_id for n in submitted] == [submission.job_id]
