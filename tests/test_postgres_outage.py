"""PostgreSQL restarted or down under a running API: no 500, a clear 503 while it is down.

Each test runs its own PostgreSQL cluster (tests/services.py), since it stops it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.settings import Settings
from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import Runtime, build_runtime
from phantomflow.api.services import Services
from tests.conftest import TINY_SCRIPT
from tests.services import PrivatePostgres


@pytest.fixture
def outage_runtime(tmp_path: Path, private_postgres: PrivatePostgres) -> Iterator[Runtime]:
    built = build_runtime(Settings(data_dir=tmp_path / "data", database_url=private_postgres.url))
    yield built
    built.close()


@pytest.fixture
async def api(outage_runtime: Runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(Services(outage_runtime)))) as client:
        yield client


async def timed_get(api: TestClient, path: str, key: str) -> tuple[int, float, dict, dict]:
    started = time.monotonic()
    response = await api.get(path, headers={"x-api-key": key})
    body = await response.json()
    return response.status, time.monotonic() - started, body, dict(response.headers)


async def test_reads_after_a_postgresql_restart_are_answered_not_500(
    api, outage_runtime, private_postgres
):
    account = outage_runtime.app.open_account(plan="pro", credits=10)
    key = account.api_key
    submitted = await api.post("/api/render", json=TINY_SCRIPT, headers={"x-api-key": key})
    job_id = (await submitted.json())["job_id"]
    outage_runtime.jobs_runner.catch_up()
    # Several connections in each pool, all of which the restart will kill.
    await asyncio.gather(*(timed_get(api, "/api/jobs", key) for _ in range(6)))

    await asyncio.to_thread(private_postgres.restart)
    # A request that met the server down (the restart takes a moment) keeps the API
    # refusing until its next look at the server, a fraction of a second later.
    back = time.monotonic()
    while (status := (await timed_get(api, "/api/jobs", key))[0]) != 200:
        assert status == 503
        assert time.monotonic() - back < 2
        await asyncio.sleep(0.05)

    for path in ("/api/jobs", f"/api/jobs/{job_id}", "/api/credits", "/api/jobs", "/api/keys"):
        status, _, body, _ = await timed_get(api, path, key)
        assert status == 200, (path, body)
    status, _, body, _ = await timed_get(api, "/api/jobs", key)
    assert [job["job_id"] for job in body["jobs"]] == [job_id]
    again = await api.post("/api/render", json=TINY_SCRIPT, headers={"x-api-key": key})
    assert again.status == 202


async def test_while_postgresql_is_down_requests_get_a_prompt_503_and_recover_within_seconds(
    api, outage_runtime, private_postgres
):
    account = outage_runtime.app.open_account(plan="pro", credits=10)
    key = account.api_key
    assert (await timed_get(api, "/api/jobs", key))[0] == 200

    await asyncio.to_thread(private_postgres.stop)
    answers = []
    for path in ("/api/jobs", "/api/credits", "/api/jobs", "/api/keys", "/api/credits"):
        answers.append(await timed_get(api, path, key))
    submission_started = time.monotonic()
    refused = await api.post("/api/render", json=TINY_SCRIPT, headers={"x-api-key": key})
    submission_seconds = time.monotonic() - submission_started

    for status, seconds, body, headers in answers:
        assert status == 503, body
        assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert headers["Retry-After"] == "2"
        assert seconds < 6  # the first finds out; the rest are refused at once
    assert max(seconds for _, seconds, _, _ in answers[1:]) < 0.5
    assert (refused.status, submission_seconds < 0.5) == (503, True)

    await asyncio.to_thread(private_postgres.start)
    back = time.monotonic()
    while (status := (await timed_get(api, "/api/jobs", key))[0]) != 200:
        assert status == 503
        assert time.monotonic() - back < 5, "not answering 5 s after PostgreSQL came back"
        await asyncio.sleep(0.1)
    recovery = time.monotonic() - back
    print(f"recovered {recovery:.2f} s after PostgreSQL accepted connections again")
    assert outage_runtime.app.get_account(account.account_id).balance == 10
