"""Pricing, the job's life and the credit account's rules: pure domain, no I/O."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from phantomflow.domain import pricing
from phantomflow.domain.accounts import CreditAccount
from phantomflow.domain.errors import (
    DomainError,
    DuplicateCharge,
    IllegalJobTransition,
    InsufficientCredits,
)
from phantomflow.domain.jobs import RenderJob
from phantomflow.domain.script import MovieScript
from tests.conftest import TINY_SCRIPT


def script(width: int = 1920, height: int = 1080, quality: str = "high", *durations: float):
    return MovieScript.from_dict(
        {
            "width": width,
            "height": height,
            "fps": 30,
            "quality": quality,
            "scenes": [
                {"duration": d, "background": "#000000", "elements": []}
                for d in (durations or (5,))
            ],
        }
    )


def test_contract_example_five_seconds_full_hd_high_costs_five_credits():
    assert pricing.estimate(script(1920, 1080, "high", 5)) == 5


@pytest.mark.parametrize(
    ("width", "height", "quality", "durations", "credits"),
    [
        (1920, 1080, "low", (5,), 3),  # ceil(2.5)
        (1920, 1080, "medium", (4,), 3),
        (1280, 720, "high", (10,), 5),
        (640, 480, "high", (8,), 2),
        (3840, 2160, "high", (5,), 10),
        (320, 240, "low", (1,), 1),  # never less than one credit
        (1920, 1080, "high", (2, 3), 5),  # scenes add up
    ],
)
def test_estimate_depends_on_duration_resolution_and_quality(
    width, height, quality, durations, credits
):
    assert pricing.estimate(script(width, height, quality, *durations)) == credits


def test_settlement_never_costs_more_than_the_estimate():
    movie = script(1920, 1080, "high", 5)
    assert pricing.settle(movie, 5, rendered_seconds=5.04) == 5
    assert pricing.settle(movie, 5, rendered_seconds=3.2) == 4


def test_float_noise_in_a_duration_is_not_billed():
    assert pricing.price(5.0000001, 1920, 1080, "high") == 5


def new_job() -> RenderJob:
    return RenderJob(
        account_id=uuid.uuid4(),
        script=TINY_SCRIPT,
        estimated_credits=5,
        quality="low",
        webhook_uri=None,
        origin={"channel": "test"},
    )


def test_job_moves_from_queued_through_processing_to_completed():
    job = new_job()
    assert job.status == "queued"
    job.start("w1")
    assert job.status == "processing"
    job.report_progress(0.5, "rendering_scene_1")
    job.complete("x.mp4", duration_seconds=1.0, file_size_bytes=1000, credits_used=3)
    assert (job.status, job.progress, job.stage) == ("completed", 1.0, "complete")
    assert job.refund_due == 2


@pytest.mark.parametrize(
    "illegal",
    [
        lambda job: job.report_progress(0.9, "late"),
        lambda job: job.complete("y.mp4", 1.0, 1, 1),
        lambda job: job.start("w2"),
        lambda job: job.fail("RENDER_FAILED", "too late"),
    ],
)
def test_a_completed_job_refuses_further_changes_and_records_nothing(illegal):
    job = new_job()
    job.start("w1")
    job.complete("x.mp4", 1.0, 1000, 5)
    version = job.version
    with pytest.raises(IllegalJobTransition):
        illegal(job)
    assert job.version == version
    assert job.collect_events()[-1].__class__ is RenderJob.Completed


def test_progress_never_goes_backwards():
    job = new_job()
    job.start("w1")
    job.report_progress(0.6, "rendering_scene_2")
    job.report_progress(0.4, "rendering_scene_2")
    assert job.progress == 0.6


def test_a_failed_job_owes_its_whole_charge_back():
    job = new_job()
    job.fail("RENDER_FAILED", "bad source")
    assert job.status == "failed"
    assert job.refund_due == 5


def test_a_busy_job_is_taken_over_only_after_its_lease_runs_out():
    job = new_job()
    job.start("w1")
    with pytest.raises(IllegalJobTransition):
        job.take_over("w2", now=datetime.now(UTC), lease_seconds=60)
    job.take_over("w2", now=datetime.now(UTC) + timedelta(seconds=61), lease_seconds=60)
    assert (job.worker, job.attempts) == ("w2", 2)


def test_balance_never_goes_below_zero():
    account = CreditAccount(plan="pro")
    account.grant(4, reason="test")
    with pytest.raises(InsufficientCredits) as raised:
        account.charge(uuid.uuid4(), 5)
    assert (raised.value.required, raised.value.balance, account.balance) == (5, 4, 4)


def test_a_job_is_charged_once_and_refunded_at_most_its_charge():
    account = CreditAccount(plan="pro")
    account.grant(10, reason="test")
    job_id = uuid.uuid4()
    account.charge(job_id, 5)
    with pytest.raises(DuplicateCharge):
        account.charge(job_id, 5)
    account.refund(job_id, 3, kind="settlement", reason="shorter than estimated")
    with pytest.raises(DuplicateCharge):
        account.refund(job_id, 3, kind="settlement", reason="again")
    assert account.balance == 8


def mutable_parts(value: object) -> list[object]:
    """Every dict and list reachable from `value`, itself included."""
    if isinstance(value, dict):
        return [value, *(part for item in value.values() for part in mutable_parts(item))]
    if isinstance(value, list):
        return [value, *(part for item in value for part in mutable_parts(item))]
    return []


def test_a_copied_account_equals_the_original_and_shares_no_mutable_state():
    """The aggregate cache hands out copies: a command on a copy must never reach the
    cached original, whatever attributes the account gains later."""
    account = CreditAccount(plan="enterprise")
    account.grant(10, reason="test")
    charged, refunded = uuid.uuid4(), uuid.uuid4()
    account.charge(charged, 3)
    account.charge(refunded, 4)
    account.refund(refunded, 1, kind="failure", reason="test")
    account.record_api_key(prefix="ve_live_abc", mode="live", key_id=uuid.uuid4())
    account.create_webhook_secret("whsec_test")

    copied = copy.deepcopy(account)

    assert vars(copied) == vars(account)
    shared = {id(part) for part in mutable_parts(vars(account))} & {
        id(part) for part in mutable_parts(vars(copied))
    }
    assert shared == set()
    copied.release(charged)
    copied.record_api_key(prefix="ve_test_def", mode="test", key_id=uuid.uuid4())
    assert str(charged) in account.active_jobs and len(account.api_keys) == 1
    assert len(account.collect_events()) == 7


def test_refunding_a_job_that_was_never_charged_is_refused():
    account = CreditAccount(plan="free")
    with pytest.raises(DomainError):
        account.refund(uuid.uuid4(), 1, kind="failure", reason="nothing to refund")


def test_unknown_plan_is_refused():
    with pytest.raises(DomainError):
        CreditAccount(plan="platinum")
