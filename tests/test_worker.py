"""The render worker with real FFmpeg: outcomes, settlement, and safety under redelivery."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from phantomflow.adapters.render import FFmpegRenderer
from phantomflow.api.bootstrap import build_runtime
from phantomflow.domain.accounts import CreditAccount
from phantomflow.domain.errors import IllegalJobTransition
from phantomflow.domain.jobs import RenderJob
from phantomflow.domain.script import MovieScript
from phantomflow.workers.render import JobAbandoned, JobBusy, RenderAttempt, RenderService
from tests.conftest import TINY_SCRIPT

TWO_SCENES = {
    **TINY_SCRIPT,
    "scenes": [
        {"duration": 1, "background": "#FF0000", "elements": []},
        {"duration": 1, "background": "#0000FF", "elements": [{"type": "text", "text": "Two"}]},
    ],
}


def service(runtime, renderer: FFmpegRenderer | None = None, **kwargs) -> RenderService:
    return RenderService(
        app=runtime.app,
        renderer=renderer or FFmpegRenderer(),
        storage=runtime.storage,
        **kwargs,
    )


def submitted(runtime, script=TINY_SCRIPT, credits=100):
    account = runtime.app.open_account(plan="pro", credits=credits)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(script), None, {}
    ).job_id
    return account.account_id, job_id


def events_of(runtime, job_id) -> list:
    return list(runtime.app.events.get(job_id))


def test_a_render_completes_with_an_mp4_and_settles_its_credits(runtime):
    account_id, job_id = submitted(runtime, TWO_SCENES)
    assert service(runtime).run(job_id) == "completed"

    job = runtime.app.get_job(job_id)
    assert (job.status, job.progress, job.stage) == ("completed", 1.0, "complete")
    assert abs(job.duration_seconds - 2.0) < 0.15
    output = runtime.storage.local_path(job.output_location)
    assert output is not None and output.stat().st_size == job.file_size_bytes > 0
    assert runtime.app.get_account(account_id).balance == 100 - job.credits_used

    progress = [e for e in events_of(runtime, job_id) if isinstance(e, RenderJob.ProgressReported)]
    values = [e.progress for e in progress]
    assert values == sorted(values) and all(0 <= v < 1 for v in values)
    stages = list(dict.fromkeys(e.stage for e in progress))
    assert stages == ["rendering_scene_1", "rendering_scene_2", "encoding"]


def test_a_redelivered_message_neither_renders_nor_charges_twice(runtime):
    account_id, job_id = submitted(runtime)
    worker = service(runtime)
    assert worker.run(job_id) == "completed"
    balance = runtime.app.get_account(account_id).balance
    history = events_of(runtime, job_id)

    assert worker.run(job_id) == "already finished"
    assert events_of(runtime, job_id) == history
    assert runtime.app.get_account(account_id).balance == balance


def test_two_workers_given_the_same_job_render_it_once(runtime):
    account_id, job_id = submitted(runtime)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def deliver() -> None:
        start.wait()
        try:
            outcomes.append(service(runtime).run(job_id))
        except JobBusy:
            outcomes.append("busy")

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("completed") == 1
    history = events_of(runtime, job_id)
    assert sum(isinstance(e, RenderJob.Started) for e in history) == 1
    assert sum(isinstance(e, RenderJob.Completed) for e in history) == 1
    job = runtime.app.get_job(job_id)
    assert runtime.app.get_account(account_id).balance == 100 - job.credits_used


def test_a_failed_render_records_render_failed_and_refunds_everything(runtime, tmp_path: Path):
    account_id, job_id = submitted(runtime)
    broken = FFmpegRenderer(font_path=tmp_path / "missing-font.ttf")
    assert service(runtime, broken).run(job_id) == "failed"

    job = runtime.app.get_job(job_id)
    assert job.status == "failed"
    assert job.error["code"] == "RENDER_FAILED"
    assert job.error["message"] and "\n" not in job.error["message"]
    assert runtime.app.get_account(account_id).balance == 100
    refunds = [
        e
        for e in runtime.app.events.get(account_id)
        if isinstance(e, CreditAccount.CreditsRefunded)
    ]
    assert [(r.job_id, r.amount) for r in refunds] == [(job_id, job.estimated_credits)]


def test_a_job_held_by_a_silent_worker_is_taken_over_once_its_own_lease_runs_out(runtime):
    account_id, job_id = submitted(runtime)
    runtime.app.start_job(runtime.app.get_job(job_id), "worker-that-died", lease_seconds=1)

    # Its lease (1 s, recorded when it started) runs out in a moment: try again soon.
    with pytest.raises(JobBusy):
        service(runtime, lease_seconds=30).run(job_id)
    time.sleep(1.1)
    assert service(runtime, lease_seconds=30).run(job_id) == "completed"

    job = runtime.app.get_job(job_id)
    assert (job.status, job.attempts, job.lease_seconds) == ("completed", 2, 30)
    assert runtime.app.get_account(account_id).balance == 100 - job.credits_used


def test_a_message_for_a_job_well_within_its_holders_lease_is_dropped(runtime):
    _, job_id = submitted(runtime)
    runtime.app.start_job(runtime.app.get_job(job_id), "busy-worker", lease_seconds=300)
    assert service(runtime).run(job_id) == "held by another worker"
    job = runtime.app.get_job(job_id)
    assert (job.status, job.worker, job.attempts) == ("processing", "busy-worker", 1)


def test_an_attempt_that_was_taken_over_can_never_complete_fail_or_charge(runtime):
    account_id, job_id = submitted(runtime)
    app = runtime.app
    app.start_job(app.get_job(job_id), "frozen-worker", lease_seconds=0.2)
    stale = RenderAttempt(app, app.get_job(job_id), "frozen-worker", lease_seconds=0.2)
    time.sleep(0.3)
    app.start_job(app.get_job(job_id), "next-worker", lease_seconds=30)  # attempt 2
    balance = app.get_account(account_id).balance

    with pytest.raises(IllegalJobTransition):
        app.complete_job(job_id, f"{job_id}.mp4", 1.0, 10, attempt=stale.number)
    with pytest.raises(IllegalJobTransition):
        app.fail_job(job_id, "RENDER_FAILED", "stale", attempt=stale.number)
    with pytest.raises(JobAbandoned):  # the stale attempt stops at its next report
        stale(0.5, "rendering_scene_1")
    assert not stale.is_current()
    job = app.get_job(job_id)
    assert (job.status, job.worker, job.attempts) == ("processing", "next-worker", 2)
    assert app.get_account(account_id).balance == balance

    app.complete_job(job_id, f"{job_id}.mp4", 1.0, 10, attempt=2)
    charges = [e for e in app.events.get(account_id) if isinstance(e, CreditAccount.CreditsCharged)]
    assert len(charges) == 1
    assert app.get_account(account_id).balance == 100 - app.get_job(job_id).credits_used


class QuietRenderer(FFmpegRenderer):
    """A render that reports no progress for a while first (a long download, a slow
    scene): only the keep-alive thread shows the worker is alive meanwhile."""

    def render(self, script, output, on_progress, work_dir):  # type: ignore[no-untyped-def]
        time.sleep(1.5)
        return super().render(script, output, on_progress, work_dir)


def test_a_live_worker_keeps_its_lease_through_a_long_quiet_stretch(runtime):
    _, job_id = submitted(runtime)
    worker = service(runtime, QuietRenderer(), lease_seconds=0.6)
    outcome: list[str] = []
    rendering = threading.Thread(target=lambda: outcome.append(worker.run(job_id)))
    rendering.start()
    try:
        time.sleep(1.0)  # well past the lease, inside the quiet stretch
        rival = service(runtime, lease_seconds=0.6)
        assert runtime.app.get_job(job_id).attempts == 1
        try:
            taken = rival.run(job_id)
        except JobBusy:
            taken = "busy"
        assert taken in ("busy", "held by another worker")
    finally:
        rendering.join(30)
    assert outcome == ["completed"]
    history = events_of(runtime, job_id)
    assert sum(isinstance(e, RenderJob.LeaseRenewed) for e in history) >= 2
    assert sum(isinstance(e, RenderJob.Started) for e in history) == 1


def count_script_parses(monkeypatch) -> list[dict]:
    """Every MovieScript.from_dict call from now on, by the dict it parsed."""
    parsed: list[dict] = []
    parse = MovieScript.from_dict.__func__

    def counting(cls, data):
        parsed.append(data)
        return parse(cls, data)

    monkeypatch.setattr(MovieScript, "from_dict", classmethod(counting))
    return parsed


def test_a_worker_parses_a_script_once_to_render_it_and_to_price_it(runtime, settings, monkeypatch):
    _, job_id = submitted(runtime, TWO_SCENES)
    worker = build_runtime(settings)  # another process: nothing of the submission cached
    try:
        parsed = count_script_parses(monkeypatch)
        assert service(worker).run(job_id) == "completed"
        job = worker.app.get_job(job_id)
        assert 0 < job.credits_used <= job.estimated_credits  # priced from the parsed script
        assert parsed == [job.script]
    finally:
        worker.close()


def test_a_progress_report_lost_to_a_database_error_leaves_no_gap_in_the_jobs_history(
    runtime, monkeypatch
):
    """The progress event is made on the job in hand before it is saved; if the save
    fails, the next report must not be saved as the version after the lost one."""
    _, job_id = submitted(runtime)
    app = runtime.app
    app.start_job(app.get_job(job_id), "worker-a", lease_seconds=30)
    attempt = RenderAttempt(app, app.get_job(job_id), "worker-a", lease_seconds=30)
    insert = app.recorder.insert_events
    failures = [psycopg.OperationalError("the server closed the connection")]

    def insert_failing_once(*args, **kwargs):
        if failures:  # after the application has taken the events from the job
            raise failures.pop()
        return insert(*args, **kwargs)

    monkeypatch.setattr(app.recorder, "insert_events", insert_failing_once)
    attempt(0.3, "rendering_scene_1")  # not recorded: the render goes on
    attempt(0.6, "rendering_scene_1")
    versions = [event.originator_version for event in app.events.get(job_id)]
    assert versions == list(range(1, len(versions) + 1))
    assert app.get_job(job_id).progress == 0.6
