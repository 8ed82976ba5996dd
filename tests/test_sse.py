"""Live progress over SSE: fed from the event store, across processes, resumable without loss."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp_sse_client2 import client as sse_client

from phantomflow.adapters.settings import Settings
from phantomflow.api.app import create_app
from phantomflow.api.event_hub import JOB_TOPICS, EventHub
from phantomflow.api.services import Services
from phantomflow.api.sse import HUB, RedactingAccessLogger
from phantomflow.domain.script import MovieScript
from tests.conftest import TINY_SCRIPT

REPO = Path(__file__).resolve().parent.parent

TWO_SCENES = {
    **TINY_SCRIPT,
    "scenes": [
        {"duration": 1, "background": "#FF0000", "elements": []},
        {"duration": 1, "background": "#0000FF", "elements": [{"type": "text", "text": "Two"}]},
    ],
}

Event = tuple[str, str, dict[str, Any]]  # (id, event name, data)


@dataclass
class Live:
    client: TestClient
    hub: EventHub

    def url(self, path: str, api_key: str | None = None) -> str:
        url = self.client.make_url(path)
        return str(url.with_query(apiKey=api_key) if api_key else url)


@pytest.fixture
async def live(runtime) -> AsyncIterator[Live]:
    app = create_app(Services(runtime))
    async with TestClient(TestServer(app)) as client:
        yield Live(client, app[HUB])


async def read_events(
    url: str,
    headers: dict[str, str] | None = None,
    stop: Any = None,
    timeout: float = 60,
) -> list[Event]:
    """Read with a browser-style EventSource until a final event or `stop(events)`."""
    events: list[Event] = []
    async with asyncio.timeout(timeout):
        async with sse_client.EventSource(
            url, headers=dict(headers or {}), max_connect_retry=0
        ) as source:
            async for message in source:
                events.append((message.last_event_id, message.type, json.loads(message.data)))
                if message.type in ("complete", "error") or (stop and stop(events)):
                    break
    return events


def render_in_another_process(settings: Settings, job_id: UUID) -> subprocess.Popen[bytes]:
    """A worker of its own: the API process hears of its events from the database only."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "PHANTOMFLOW_DB_SCHEMA", "REDIS_URL")
    }
    env["PHANTOMFLOW_DATA_DIR"] = str(settings.data_dir)
    env["PYTHONPATH"] = str(REPO)
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
        env["PHANTOMFLOW_DB_SCHEMA"] = settings.database_schema or ""
    code = (
        "import sys, uuid\n"
        "from phantomflow.api.bootstrap import build_runtime\n"
        "from phantomflow.adapters.render import FFmpegRenderer\n"
        "from phantomflow.adapters.settings import Settings\n"
        "from phantomflow.workers.render import RenderService\n"
        "runtime = build_runtime(Settings.from_env())\n"
        "service = RenderService(app=runtime.app, renderer=FFmpegRenderer(), "
        "storage=runtime.storage)\n"
        "print(service.run(uuid.UUID(sys.argv[1])))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(job_id)], env=env, cwd=REPO, stdout=subprocess.PIPE
    )


def is_rendering(events: list[Event]) -> bool:
    return events[-1][2].get("stage", "").startswith("rendering")


async def test_a_real_render_streams_rising_progress_then_complete_and_a_resumed_client_sees_the_same(
    live, runtime, settings
):
    account = runtime.app.open_account(plan="pro", credits=100)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TWO_SCENES), None, {}
    ).job_id
    url = live.url(f"/api/jobs/{job_id}/progress", api_key=account.api_key)

    async def cut_off_and_resumed() -> tuple[list[Event], list[Event]]:
        before = await read_events(url, stop=is_rendering)
        await asyncio.sleep(0.6)  # the render goes on meanwhile
        after = await read_events(url, headers={"Last-Event-ID": before[-1][0]})
        return before, after

    continuous = asyncio.create_task(read_events(url))
    interrupted = asyncio.create_task(cut_off_and_resumed())
    await asyncio.sleep(0.3)  # both streams are open before the render starts
    worker = render_in_another_process(settings, job_id)
    seen = await continuous
    before, after = await interrupted
    out, _ = await asyncio.to_thread(worker.communicate, timeout=60)
    assert out.decode().strip() == "completed"

    names = [name for _, name, _ in seen]
    assert names[-1] == "complete" and set(names[:-1]) == {"progress"}
    progress = [data["progress"] for _, name, data in seen if name == "progress"]
    assert progress == sorted(progress) and progress[0] == 0
    assert [data["stage"] for _, _, data in seen[:2]] == ["queued", "starting"]
    # The renderer's own stages (see adapters/render/progress.py), both scenes among them.
    assert {"rendering_scene_1", "rendering_scene_2"} <= {data.get("stage") for _, _, data in seen}
    ids = [int(event_id) for event_id, _, _ in seen]
    assert ids == sorted(set(ids))  # store positions: rising, no repeats

    job = runtime.app.get_job(job_id)
    assert seen[-1][2] == {
        "outputUri": f"{str(live.client.make_url('')).rstrip('/')}/outputs/{job.output_location}",
        "creditsUsed": job.credits_used,
        "durationSeconds": job.duration_seconds,
        "fileSizeBytes": job.file_size_bytes,
        "metadata": {},
    }
    assert any(name == "progress" for _, name, _ in after)  # it really was cut off midway
    assert before + after == seen


async def test_a_client_that_connects_after_the_end_gets_the_final_event_at_once(live, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    runtime.app.start_job(runtime.app.get_job(job_id), "w", lease_seconds=60)
    runtime.app.report_progress(runtime.app.get_job(job_id), 0.5, "rendering_scene_1")
    runtime.app.fail_job(job_id, "RENDER_FAILED", "the font is missing")
    url = live.url(f"/api/jobs/{job_id}/progress", api_key=account.api_key)

    events = await read_events(url, timeout=5)
    assert [(name, data) for _, name, data in events] == [
        ("error", {"code": "RENDER_FAILED", "message": "the font is missing", "metadata": {}})
    ]
    # Having seen the end, an EventSource that reconnects is told to stop (204).
    response = await live.client.get(
        f"/api/jobs/{job_id}/progress",
        headers={"x-api-key": account.api_key, "Last-Event-ID": events[0][0]},
    )
    assert response.status == 204


async def test_resuming_sends_exactly_the_events_after_last_event_id(live, runtime):
    app = runtime.app
    account = app.open_account(plan="pro", credits=10)
    job_id = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    app.start_job(app.get_job(job_id), "w", lease_seconds=60)
    for value in (0.2, 0.4, 0.6):
        app.report_progress(app.get_job(job_id), value, "rendering_scene_1")
    url = live.url(f"/api/jobs/{job_id}/progress", api_key=account.api_key)
    first = await read_events(url, stop=lambda events: len(events) == 5, timeout=5)
    assert [data["progress"] for _, _, data in first] == [0, 0, 0.2, 0.4, 0.6]

    resumed = asyncio.create_task(
        read_events(url, headers={"Last-Event-ID": first[2][0]}, timeout=10)
    )
    await asyncio.sleep(0.2)
    app.report_progress(app.get_job(job_id), 0.8, "stitching")
    app.complete_job(job_id, f"{job_id}.mp4", 1.0, 1234)
    events = await resumed
    assert [(name, data.get("progress")) for _, name, data in events] == [
        ("progress", 0.4),
        ("progress", 0.6),
        ("progress", 0.8),
        ("complete", None),
    ]
    assert events[:2] == first[3:]


async def test_the_progress_stream_takes_the_key_as_a_header_or_query_parameter_and_hides_other_accounts_jobs(
    live, runtime
):
    owner = runtime.app.open_account(plan="pro", credits=10)
    other = runtime.app.open_account(plan="pro", credits=10)
    job_id = runtime.app.submit_render(
        owner.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    path = f"/api/jobs/{job_id}/progress"
    client = live.client

    assert (await client.get(path)).status == 401
    assert (await client.get(path, params={"apiKey": "ve_live_wrong"})).status == 401
    assert (await client.get(path, params={"apiKey": other.api_key})).status == 404
    assert (await client.get(f"/api/jobs/{job_id}", params={"apiKey": owner.api_key})).status == 401
    bad = await client.get(path, headers={"x-api-key": owner.api_key, "Last-Event-ID": "x"})
    assert (bad.status, (await bad.json())["error"]["path"]) == (400, "Last-Event-ID")
    for auth in ({"headers": {"x-api-key": owner.api_key}}, {"params": {"apiKey": owner.api_key}}):
        async with client.get(path, **auth) as response:
            assert response.status == 200
            assert response.content_type == "text/event-stream"
            first = await response.content.readuntil(b"\n\n")
            assert b"event: progress" in first and b'"stage":"queued"' in first


async def test_idle_streams_get_heartbeats_and_a_client_that_leaves_is_released_at_once(
    live, runtime
):
    live.hub.heartbeat = 0.2
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    response = await live.client.get(
        f"/api/jobs/{job_id}/progress", headers={"x-api-key": account.api_key}
    )
    await response.content.readuntil(b"\n\n")  # the queued event
    assert await asyncio.wait_for(response.content.readuntil(b"\n\n"), 2) == b": keep-alive\n\n"
    assert live.hub.streams == 1

    live.hub.heartbeat = 60  # from now on only the disconnection itself can free it
    await asyncio.sleep(0.3)
    response.close()
    async with asyncio.timeout(2):
        while live.hub.streams:
            await asyncio.sleep(0.02)


async def test_the_account_stream_carries_only_the_accounts_jobs_and_resumes_without_loss(
    live, runtime
):
    app = runtime.app
    mine = app.open_account(plan="pro", credits=10)
    theirs = app.open_account(plan="pro", credits=10)
    url = live.url("/api/events", api_key=mine.api_key)

    first = asyncio.create_task(read_events(url, stop=lambda events: len(events) == 3, timeout=10))
    await asyncio.sleep(0.3)
    job = app.submit_render(mine.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}).job_id
    app.submit_render(theirs.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {})
    app.start_job(app.get_job(job), "w", lease_seconds=60)
    app.report_progress(app.get_job(job), 0.5, "rendering_scene_1")
    seen = await first
    assert [(data["jobId"], data["stage"]) for _, _, data in seen] == [
        (str(job), "queued"),
        (str(job), "starting"),
        (str(job), "rendering_scene_1"),
    ]

    # Gone for a while: a second job ends, another account works meanwhile.
    second = app.submit_render(mine.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}).job_id
    app.submit_render(theirs.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {})
    app.fail_job(second, "RENDER_FAILED", "boom")
    resumed = await read_events(
        url,
        headers={"Last-Event-ID": seen[-1][0]},
        stop=lambda events: events[-1][1] == "error",
        timeout=10,
    )
    assert [(data["jobId"], name) for _, name, data in resumed] == [
        (str(second), "progress"),
        (str(second), "error"),
    ]
    assert int(resumed[0][0]) > int(seen[-1][0])


async def test_streams_of_many_jobs_share_one_follower_of_the_event_store(live, runtime):
    app = runtime.app
    account = app.open_account(plan="pro", credits=100)
    jobs = [
        app.submit_render(account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}).job_id
        for _ in range(5)
    ]
    responses = [
        await live.client.get(f"/api/jobs/{job}/progress", headers={"x-api-key": account.api_key})
        for job in jobs
    ]
    for response in responses:
        await response.content.readuntil(b"\n\n")
    assert live.hub.streams == 5
    threads = [thread.name for thread in threading.enumerate()]
    assert threads.count("follower-sse-hub") == 1

    for job in jobs:
        app.start_job(app.get_job(job), "w", lease_seconds=60)
    for job, response in zip(jobs, responses, strict=True):
        chunk = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        assert b'"stage":"starting"' in chunk, job
        response.close()


async def test_an_event_this_process_records_reaches_its_stream_without_waiting_for_a_poll(
    live, runtime
):
    app = runtime.app
    account = app.open_account(plan="pro", credits=10)
    job_id = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    response = await live.client.get(
        f"/api/jobs/{job_id}/progress", headers={"x-api-key": account.api_key}
    )
    assert b'"stage":"queued"' in await response.content.readuntil(b"\n\n")
    live.hub.runner.poll_interval = 60  # the hub would look again only in a minute
    await asyncio.sleep(0.2)  # past its current wait

    app.start_job(app.get_job(job_id), "w", lease_seconds=60)

    chunk = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
    assert b'"stage":"starting"' in chunk
    response.close()


async def test_cancelling_a_job_ends_its_stream_with_a_cancelled_error(live, runtime):
    app = runtime.app
    account = app.open_account(plan="pro", credits=10)
    job_id = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    app.start_job(app.get_job(job_id), "w", lease_seconds=60)
    url = live.url(f"/api/jobs/{job_id}/progress", api_key=account.api_key)
    stream = asyncio.create_task(read_events(url, timeout=10))
    await asyncio.sleep(0.3)
    app.cancel_job(job_id, "no longer needed")
    events = await stream
    assert [(name, data.get("stage") or data.get("code")) for _, name, data in events] == [
        ("progress", "queued"),
        ("progress", "starting"),
        ("error", "CANCELLED"),
    ]
    assert events[-1][2]["message"] == "no longer needed"


async def test_an_event_recorded_between_registering_and_reading_the_history_is_not_lost(
    live, runtime, monkeypatch
):
    """A stream registers with the hub, then reads the job's history. An event recorded
    between the two (here: the completion, once the history has been read) must reach
    the stream live; registering after the history read would lose it."""
    app = runtime.app
    account = app.open_account(plan="pro", credits=10)
    job_id = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    app.start_job(app.get_job(job_id), "w", lease_seconds=60)
    read_history = live.hub.job_history

    def history_then_completion(wanted: UUID) -> list:
        history = read_history(wanted)
        before = app.recorder.max_notification_id()
        app.complete_job(job_id, f"{job_id}.mp4", 1.0, 1234)
        (completed,) = app.recorder.select_notifications(
            start=before + 1, limit=10, topics=JOB_TOPICS
        )
        completed_at = completed.id
        # Let the hub see the completion before the stream goes on: had the stream not
        # registered yet, the hub would have passed the event by without it.
        deadline = time.monotonic() + 2
        while live.hub.runner.position() < completed_at and time.monotonic() < deadline:
            time.sleep(0.01)
        return history

    monkeypatch.setattr(live.hub, "job_history", history_then_completion)
    url = live.url(f"/api/jobs/{job_id}/progress", api_key=account.api_key)
    events = await read_events(url, timeout=5)
    assert [name for _, name, _ in events] == ["progress", "progress", "complete"]


async def test_the_access_log_leaves_out_keys_given_as_query_parameters(runtime, caplog):
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    runtime.app.fail_job(job_id, "RENDER_FAILED", "no")  # so the stream ends by itself
    app = create_app(Services(runtime))
    server = TestServer(app)
    await server.start_server(access_log_class=RedactingAccessLogger)  # as `phantomflow api`
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    async with TestClient(server) as client:
        response = await client.get(
            f"/api/jobs/{job_id}/progress", params={"apiKey": account.api_key}
        )
        assert b"event: error" in await response.read()
        async with asyncio.timeout(5):
            while not any("/progress" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.02)
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any(f"/api/jobs/{job_id}/progress?apiKey=REDACTED" in line for line in lines)
    assert not any(account.api_key in line for line in lines)
