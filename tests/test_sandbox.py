"""Sandbox (ve_test_) keys: the same validation and shapes, no credits, no FFmpeg."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.render import FFmpegRenderer
from phantomflow.adapters.samples import SANDBOX_SAMPLE, SANDBOX_SAMPLE_SECONDS
from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.domain.jobs import RenderJob
from phantomflow.projections.runner import FollowerThreads
from phantomflow.workers.render import RenderService
from tests.conftest import TINY_SCRIPT
from tests.media import ffprobe


@pytest.fixture
async def client(runtime) -> AsyncIterator[TestClient]:
    followers = FollowerThreads(runtime.read_models)
    followers.start()
    async with TestClient(TestServer(create_app(Services(runtime)))) as test_client:
        yield test_client
    followers.stop()


def no_ffmpeg(runtime, tmp_path: Path) -> RenderService:
    """A worker whose FFmpeg does not exist: a sandbox job must not need it."""
    return RenderService(
        app=runtime.app,
        renderer=FFmpegRenderer(ffmpeg_exe=str(tmp_path / "no-ffmpeg-here")),
        storage=runtime.storage,
    )


async def test_a_sandbox_submission_answers_like_a_live_one_and_costs_nothing(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=7)
    response = await client.post(
        "/api/render", json=TINY_SCRIPT, headers={"x-api-key": account.test_api_key}
    )
    assert response.status == 202
    body = await response.json()
    assert set(body) == {"job_id", "status", "estimated_credits", "credits_remaining"}
    assert (body["status"], body["estimated_credits"], body["credits_remaining"]) == (
        "queued",
        1,
        7,
    )
    assert runtime.app.get_account(account.account_id).balance == 7


async def test_sandbox_requests_are_validated_the_same_way(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=0)
    bad = {**TINY_SCRIPT, "scenes": [{"duration": "5"}]}
    response = await client.post(
        "/api/render", json=bad, headers={"x-api-key": account.test_api_key}
    )
    error = (await response.json())["error"]
    assert (response.status, error["code"], error["path"]) == (
        400,
        "SCHEMA_VALIDATION_ERROR",
        "scenes.0.duration",
    )


async def test_a_sandbox_job_completes_quickly_with_progress_and_the_sample_video(
    client, runtime, tmp_path
):
    account = runtime.app.open_account(plan="pro", credits=0)
    test_key = {"x-api-key": account.test_api_key}
    script = {**TINY_SCRIPT, "scenes": TINY_SCRIPT["scenes"] * 2}
    submitted = await (await client.post("/api/render", json=script, headers=test_key)).json()
    job_id = uuid.UUID(submitted["job_id"])

    assert no_ffmpeg(runtime, tmp_path).run(job_id) == "completed"

    history = list(runtime.app.events.get(job_id))
    stages = [e.stage for e in history if isinstance(e, RenderJob.ProgressReported)]
    assert stages == ["rendering_scene_1", "rendering_scene_2", "stitching"]
    assert runtime.jobs_runner.wait_for(runtime.app.recorder.max_notification_id(), 10)
    job = await (await client.get(f"/api/jobs/{job_id}", headers=test_key)).json()
    assert (job["status"], job["credits_used"], job["duration_seconds"]) == (
        "completed",
        0,
        SANDBOX_SAMPLE_SECONDS,
    )
    video = await client.get(job["output_uri"].removeprefix(str(client.make_url(""))))
    assert await video.read() == SANDBOX_SAMPLE.read_bytes()
    assert runtime.app.get_account(account.account_id).balance == 0


async def test_live_and_sandbox_jobs_never_mix(client, runtime, tmp_path):
    account = runtime.app.open_account(plan="pro", credits=10)
    live, test = {"x-api-key": account.api_key}, {"x-api-key": account.test_api_key}
    live_job = await (await client.post("/api/render", json=TINY_SCRIPT, headers=live)).json()
    test_job = await (await client.post("/api/render", json=TINY_SCRIPT, headers=test)).json()
    head = runtime.app.recorder.max_notification_id()
    assert runtime.jobs_runner.wait_for(head, 10)

    live_list = await (await client.get("/api/jobs", headers=live)).json()
    test_list = await (await client.get("/api/jobs", headers=test)).json()
    assert [j["job_id"] for j in live_list["jobs"]] == [live_job["job_id"]]
    assert [j["job_id"] for j in test_list["jobs"]] == [test_job["job_id"]]
    assert (await client.get(f"/api/jobs/{test_job['job_id']}", headers=live)).status == 404
    assert (await client.get(f"/api/jobs/{live_job['job_id']}", headers=test)).status == 404


async def test_sandbox_activity_never_reaches_the_live_ledger(client, runtime, tmp_path):
    account = runtime.app.open_account(plan="pro", credits=5)
    submitted = await (
        await client.post(
            "/api/render", json=TINY_SCRIPT, headers={"x-api-key": account.test_api_key}
        )
    ).json()
    no_ffmpeg(runtime, tmp_path).run(uuid.UUID(submitted["job_id"]))
    head = runtime.app.recorder.max_notification_id()
    assert runtime.ledger_runner.wait_for(head, 10)
    ledger = await (
        await client.get("/api/credits/ledger", headers={"x-api-key": account.api_key})
    ).json()
    assert [entry["type"] for entry in ledger["entries"]] == ["grant"]


def test_the_sample_video_is_what_sandbox_jobs_say_it_is():
    probe = ffprobe(SANDBOX_SAMPLE)
    assert abs(float(probe["format"]["duration"]) - SANDBOX_SAMPLE_SECONDS) < 0.01
    assert probe["streams"][0]["codec_name"] == "h264"
