"""Submitting renders against a real event store (SQLite and PostgreSQL).

A submission charges and creates the job in one save; racing submissions never
overdraw an account, and every accepted job has exactly one charge.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from phantomflow.api.bootstrap import Runtime, build_runtime
from phantomflow.domain.accounts import CreditAccount
from phantomflow.domain.errors import InsufficientCredits
from phantomflow.domain.jobs import RenderJob
from phantomflow.domain.script import MovieScript
from tests.conftest import TINY_SCRIPT

FIVE_CREDIT_SCRIPT = {
    **TINY_SCRIPT,
    "width": 1920,
    "height": 1080,
    "quality": "high",
    "scenes": [{"duration": 5, "background": "#000000", "elements": []}],
}


def submit(runtime: Runtime, account_id: uuid.UUID, script: dict = FIVE_CREDIT_SCRIPT):
    return runtime.app.submit_render(
        account_id, MovieScript.from_dict(script), None, {"channel": "test"}
    )


def all_events(runtime: Runtime) -> list:
    notifications = runtime.app.recorder.select_notifications(start=1, limit=100_000)
    return [runtime.app.mapper.to_domain_event(n) for n in notifications]


def test_submission_charges_the_estimate_and_queues_the_job(runtime):
    account = runtime.app.open_account(plan="pro", credits=1000)
    submitted = submit(runtime, account.account_id)
    assert (submitted.status, submitted.estimated_credits, submitted.credits_remaining) == (
        "queued",
        5,
        995,
    )
    job = runtime.app.get_job(submitted.job_id)
    assert (job.status, job.account_id, job.estimated_credits) == (
        "queued",
        account.account_id,
        5,
    )
    assert runtime.app.get_account(account.account_id).balance == 995


def test_job_and_charge_are_recorded_in_one_atomic_write(runtime):
    account = runtime.app.open_account(plan="pro", credits=1000)
    before = runtime.app.recorder.max_notification_id()
    submit(runtime, account.account_id)
    new = all_events(runtime)[before:]
    assert [type(e) for e in new] == [CreditAccount.CreditsCharged, RenderJob.Submitted]


def test_the_last_credits_can_be_spent_to_a_balance_of_exactly_zero(runtime):
    account = runtime.app.open_account(plan="free", credits=5)
    submitted = submit(runtime, account.account_id)  # costs exactly the balance
    assert (submitted.estimated_credits, submitted.credits_remaining) == (5, 0)
    assert runtime.app.get_account(account.account_id).balance == 0
    with pytest.raises(InsufficientCredits) as refused:
        submit(runtime, account.account_id, TINY_SCRIPT)  # one credit more than there is
    assert (refused.value.required, refused.value.balance) == (1, 0)


def test_insufficient_credits_leaves_no_job_and_no_charge(runtime):
    account = runtime.app.open_account(plan="free", credits=4)
    before = runtime.app.recorder.max_notification_id()
    with pytest.raises(InsufficientCredits) as refused:
        submit(runtime, account.account_id)
    assert (refused.value.required, refused.value.balance) == (5, 4)
    assert runtime.app.recorder.max_notification_id() == before


def test_racing_submissions_never_overdraw_and_each_job_is_charged_once(settings):
    # Several processes' worth of connections: each thread has its own application.
    apps = [build_runtime(settings) for _ in range(4)]
    try:
        account = apps[0].app.open_account(plan="pro", credits=23)  # room for 4 jobs
        start = threading.Barrier(40)

        def attempt(i: int) -> str:
            runtime = apps[i % len(apps)]
            start.wait()
            try:
                return str(submit(runtime, account.account_id).job_id)
            except InsufficientCredits:
                return "402"

        with ThreadPoolExecutor(max_workers=40) as pool:
            outcomes = list(pool.map(attempt, range(40)))

        accepted = [o for o in outcomes if o != "402"]
        assert len(accepted) == 4
        assert apps[0].app.get_account(account.account_id).balance == 3
        charges = [e for e in all_events(apps[0]) if isinstance(e, CreditAccount.CreditsCharged)]
        assert sorted(str(c.job_id) for c in charges) == sorted(accepted)
        for job_id in accepted:
            assert apps[0].app.get_job(uuid.UUID(job_id)).status == "queued"
    finally:
        for runtime in apps:
            runtime.close()


def test_completion_refunds_the_unused_estimate_atomically(runtime):
    account = runtime.app.open_account(plan="pro", credits=100)
    submitted = submit(runtime, account.account_id)
    job = runtime.app.get_job(submitted.job_id)
    runtime.app.start_job(job, "w1", lease_seconds=60)
    runtime.app.complete_job(submitted.job_id, "x.mp4", duration_seconds=3.2, file_size_bytes=1234)
    job = runtime.app.get_job(submitted.job_id)
    assert (job.status, job.credits_used) == ("completed", 4)
    assert runtime.app.get_account(account.account_id).balance == 100 - 4


def test_failure_refunds_the_whole_charge(runtime):
    account = runtime.app.open_account(plan="pro", credits=100)
    submitted = submit(runtime, account.account_id)
    runtime.app.fail_job(submitted.job_id, "RENDER_FAILED", "bad source")
    assert runtime.app.get_account(account.account_id).balance == 100
    assert runtime.app.get_job(submitted.job_id).error == {
        "code": "RENDER_FAILED",
        "message": "bad source",
    }


def test_api_keys_authenticate_their_own_account_only(runtime):
    first = runtime.app.open_account(plan="pro", credits=0)
    second = runtime.app.open_account(plan="pro", credits=0)
    assert runtime.app.authenticate(first.api_key).account_id == first.account_id
    assert runtime.app.authenticate(second.test_api_key).mode == "test"
    assert runtime.app.authenticate(first.api_key + "x") is None
    assert runtime.app.authenticate("ve_live_nonsense") is None
    assert runtime.app.authenticate("not-a-key") is None


def test_keys_are_stored_only_as_hashes(runtime):
    opened = runtime.app.open_account(plan="pro", credits=0)
    stored = runtime.app.recorder.select_notifications(start=1, limit=1000)
    blob = b"".join(n.state for n in stored)
    assert opened.api_key.encode() not in blob
    assert opened.test_api_key.encode() not in blob
