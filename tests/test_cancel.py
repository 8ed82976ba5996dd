"""Cancelling jobs: queued ones are refunded in full, processing ones are stopped by
their worker and refunded by the documented rule, finished ones cannot be cancelled."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.render import FFmpegRenderer
from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.domain import pricing
from phantomflow.domain.accounts import CreditAccount
from phantomflow.domain.script import MovieScript
from phantomflow.workers.render import RenderService
from tests.conftest import TINY_SCRIPT

# Long enough to be caught mid-render: it is cancelled at its first progress report.
LONGER = {
    **TINY_SCRIPT,
    "width": 1920,
    "height": 1080,
    "fps": 30,
    "quality": "high",
    "scenes": [{"duration": 20, "background": "#00FF00"}],
}


@pytest.fixture
async def client(runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(Services(runtime)))) as test_client:
        yield test_client


def worker(runtime) -> RenderService:
    return RenderService(app=runtime.app, renderer=FFmpegRenderer(), storage=runtime.storage)


def refunds(runtime, account_id) -> list:
    return [
        (e.kind, e.amount)
        for e in runtime.app.events.get(account_id)
        if isinstance(e, CreditAccount.CreditsRefunded)
    ]


async def test_a_queued_job_is_cancelled_with_a_full_refund(client, runtime):
    account = runtime.app.open_account(plan="free", credits=10)
    headers = {"x-api-key": account.api_key}
    submitted = await (await client.post("/api/render", json=TINY_SCRIPT, headers=headers)).json()
    response = await client.post(f"/api/jobs/{submitted['job_id']}/cancel", headers=headers)
    assert response.status == 200
    assert await response.json() == {
        "job_id": submitted["job_id"],
        "status": "cancelled",
        "credits_used": 0,
        "credits_refunded": 1,
    }
    account_now = runtime.app.get_account(account.account_id)
    assert (account_now.balance, account_now.active_jobs) == (10, [])
    assert refunds(runtime, account.account_id) == [("cancellation", 1)]
    job = await (await client.get(f"/api/jobs/{submitted['job_id']}", headers=headers)).json()
    assert (job["status"], job["error"]["code"]) == ("cancelled", "CANCELLED")
    # A render message that arrives afterwards renders nothing.
    assert worker(runtime).run(uuid.UUID(submitted["job_id"])) == "already finished"


async def test_a_finished_job_cannot_be_cancelled(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    submitted = await (await client.post("/api/render", json=TINY_SCRIPT, headers=headers)).json()
    runtime.app.fail_job(uuid.UUID(submitted["job_id"]), "RENDER_FAILED", "x")
    response = await client.post(f"/api/jobs/{submitted['job_id']}/cancel", headers=headers)
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "JOB_ALREADY_FINISHED"


async def test_another_accounts_job_cannot_be_cancelled(client, runtime):
    owner = runtime.app.open_account(plan="pro", credits=10)
    other = runtime.app.open_account(plan="pro", credits=10)
    submitted = await (
        await client.post("/api/render", json=TINY_SCRIPT, headers={"x-api-key": owner.api_key})
    ).json()
    response = await client.post(
        f"/api/jobs/{submitted['job_id']}/cancel", headers={"x-api-key": other.api_key}
    )
    assert response.status == 404
    assert runtime.app.get_job(uuid.UUID(submitted["job_id"])).status == "queued"


def test_a_processing_job_is_stopped_by_its_worker_and_charged_for_what_was_rendered(runtime):
    account = runtime.app.open_account(plan="pro", credits=50)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(LONGER), None, {}
    ).job_id
    outcome: list[str] = []
    rendering = threading.Thread(target=lambda: outcome.append(worker(runtime).run(job_id)))
    rendering.start()
    deadline = time.monotonic() + 30
    while runtime.app.get_job(job_id).progress <= 0 and time.monotonic() < deadline:
        time.sleep(0.02)

    cancelled = runtime.app.cancel_job(job_id)
    stopped_at = time.monotonic()
    rendering.join(30)

    assert outcome == ["abandoned"]
    assert time.monotonic() - stopped_at < 5
    # The documented rule, worked out here rather than by the function under test: the
    # rendered share of LONGER's 20 s, at 1 credit a second (1080p, high), rounded up,
    # at least 1, at most the estimate of 20.
    assert cancelled.estimated_credits == 20 and cancelled.progress > 0
    rendered_seconds = round(20 * cancelled.progress, 3)
    expected = min(20, max(1, math.ceil(rendered_seconds)))
    assert cancelled.credits_used == expected
    assert runtime.app.get_account(account.account_id).balance == 50 - expected
    assert runtime.storage.local_path(f"{job_id}.mp4") is None
    assert runtime.app.get_job(job_id).status == "cancelled"


def test_the_cancellation_rule_charges_only_what_was_rendered():
    movie = MovieScript.from_dict({**TINY_SCRIPT, "width": 1920, "height": 1080, "quality": "high",
                                   "scenes": [{"duration": 10}]})  # fmt: skip
    assert pricing.cancellation_charge(movie, 10, 0.0) == 0
    assert pricing.cancellation_charge(movie, 10, 0.25) == 3  # ceil(2.5)
    assert pricing.cancellation_charge(movie, 10, 1.0) == 10
