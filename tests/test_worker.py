"""The render worker with real FFmpeg: outcomes, settlement, and safety under redelivery."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from phantomflow.adapters.render import FFmpegRenderer
from phantomflow.api.bootstrap import build_runtime
from phantomflow.domain.accounts import CreditAccount
from phantomflow.domain.jobs import RenderJob
from phantomflow.domain.script import MovieScript
from phantomflow.workers.render import JobBusy, RenderService
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


def test_a_job_held_by_a_silent_worker_is_taken_over_once_its_lease_runs_out(runtime):
    account_id, job_id = submitted(runtime)
    runtime.app.start_job(runtime.app.get_job(job_id), "worker-that-died", lease_seconds=1)

    with pytest.raises(JobBusy):
        service(runtime, lease_seconds=30).run(job_id)
    time.sleep(0.3)
    assert service(runtime, lease_seconds=0.2).run(job_id) == "completed"

    job = runtime.app.get_job(job_id)
    assert (job.status, job.attempts) == ("completed", 2)
    assert runtime.app.get_account(account_id).balance == 100 - job.credits_used


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
