"""Outputs served like a CDN, on both storage backends, and deleted on request."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.settings import Settings
from phantomflow.adapters.storage import poster_key, render_key
from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import Runtime, build_runtime
from phantomflow.api.routes import job_history
from phantomflow.api.services import Services
from phantomflow.domain.script import MovieScript
from tests.conftest import TINY_SCRIPT
from tests.servers.s3 import S3Bucket

DATA = os.urandom(300_000)


@dataclasses.dataclass
class Served:
    client: TestClient
    runtime: Runtime
    job_id: uuid.UUID
    key: str
    backend: str

    @property
    def url(self) -> str:
        return f"/outputs/{self.job_id}.mp4"


@pytest.fixture(params=["file", "s3-proxy", "s3-redirect"])
async def served(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch
) -> AsyncIterator[Served]:
    settings = Settings(data_dir=tmp_path / "data")
    if request.param != "file":
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        for name, value in bucket.endpoint.env().items():
            monkeypatch.setenv(name, value)
        settings = dataclasses.replace(
            settings,
            storage_url=f"s3://{bucket.name}/out",
            s3_serve=request.param.removeprefix("s3-"),
        )
    runtime = build_runtime(settings)
    app = runtime.app
    account = app.open_account(plan="pro", credits=100)
    job_id = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    app.start_job(app.get_job(job_id), "w", lease_seconds=60)
    source = tmp_path / "render.mp4"
    source.write_bytes(DATA)
    runtime.storage.put_file(render_key(job_id), source)
    (tmp_path / "poster.jpg").write_bytes(b"\xff\xd8poster")
    runtime.storage.put_file(poster_key(job_id), tmp_path / "poster.jpg")
    app.complete_job(job_id, render_key(job_id), 1.0, len(DATA), poster_key(job_id))
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        yield Served(client, runtime, job_id, account.api_key, request.param)
    runtime.close()


@dataclasses.dataclass
class Answer:
    status: int
    headers: Any  # case-insensitive, as HTTP headers are
    body: bytes


async def get(served: Served, method: str = "GET", **headers: str) -> Answer:
    """What a browser gets: redirects followed (to S3 itself, for presigned URLs)."""
    url = served.url
    response = await served.client.request(method, url, headers=headers, allow_redirects=False)
    if response.status == 302:
        assert served.backend == "s3-redirect"
        location = response.headers["Location"]
        assert "Signature=" in location and response.headers["Cache-Control"]
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, location, headers=headers) as direct,
        ):
            return Answer(direct.status, direct.headers.copy(), await direct.read())
    return Answer(response.status, response.headers.copy(), await response.read())


async def test_a_whole_output_comes_with_the_headers_a_cache_needs(served: Served):
    response = await get(served)
    assert response.status == 200
    assert response.body == DATA
    assert response.headers["Content-Type"] == "video/mp4"
    assert int(response.headers["Content-Length"]) == len(DATA)
    assert response.headers["ETag"].startswith('"')
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.headers["Accept-Ranges"] == "bytes"
    head = await get(served, "HEAD")
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(DATA)
    poster = await served.client.get(f"/outputs/{served.job_id}.jpg")
    assert poster.status in (200, 302)


async def test_one_range_answers_206_with_exactly_those_bytes(served: Served):
    for asked, expected, first, last in [
        ("bytes=100-199", DATA[100:200], 100, 199),
        ("bytes=299990-", DATA[299990:], 299990, len(DATA) - 1),
        ("bytes=-10", DATA[-10:], len(DATA) - 10, len(DATA) - 1),
        ("bytes=299990-999999", DATA[299990:], 299990, len(DATA) - 1),
    ]:
        response = await get(served, Range=asked)
        assert response.status == 206, asked
        assert response.body == expected
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(DATA)}"
        assert int(response.headers["Content-Length"]) == len(expected)


async def test_a_range_past_the_end_answers_416(served: Served):
    response = await get(served, Range=f"bytes={len(DATA)}-")
    assert response.status == 416
    if served.backend != "s3-redirect":  # after a redirect, the store itself answers
        assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"


async def test_a_cached_copy_is_confirmed_with_304(served: Served):
    etag = (await get(served)).headers["ETag"]
    again = await get(served, **{"If-None-Match": etag})
    assert again.status == 304
    assert again.body == b""
    changed = await get(served, **{"If-None-Match": '"something-else"'})
    assert changed.status == 200


async def test_deleting_the_output_keeps_the_job_and_its_ledger_and_answers_410(served: Served):
    headers = {"x-api-key": served.key}
    runtime = served.runtime
    balance = runtime.app.get_account(runtime.app.get_job(served.job_id).account_id).balance
    response = await served.client.delete(f"/api/jobs/{served.job_id}/output", headers=headers)
    assert response.status == 200
    body = await response.json()
    assert (body["job_id"], body["deleted"]) == (str(served.job_id), True)
    assert runtime.storage.stat(render_key(served.job_id)) is None
    assert runtime.storage.stat(poster_key(served.job_id)) is None
    gone = await served.client.get(served.url, allow_redirects=False)
    assert gone.status == 410
    assert (await gone.json())["error"]["code"] == "OUTPUT_DELETED"
    assert (await served.client.get(f"/outputs/{uuid.uuid4()}.mp4")).status == 404

    job = await (await served.client.get(f"/api/jobs/{served.job_id}", headers=headers)).json()
    assert job["status"] == "completed" and job["output_deleted_at"] == body["output_deleted_at"]
    assert job["output_uri"].endswith(served.url)
    account_id = runtime.app.get_job(served.job_id).account_id
    assert runtime.app.get_account(account_id).balance == balance
    history = job_history(runtime.app, served.job_id)
    assert history[-1]["type"] == "OutputDeleted"
    again = await served.client.delete(f"/api/jobs/{served.job_id}/output", headers=headers)
    assert (again.status, (await again.json())["output_deleted_at"]) == (
        200,
        body["output_deleted_at"],
    )


async def test_only_a_completed_job_of_ones_own_has_an_output_to_delete(served: Served):
    app = served.runtime.app
    owner = app.get_job(served.job_id).account_id
    queued = app.submit_render(owner, MovieScript.from_dict(TINY_SCRIPT), None, {}).job_id
    headers = {"x-api-key": served.key}
    response = await served.client.delete(f"/api/jobs/{queued}/output", headers=headers)
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "JOB_NOT_COMPLETED"
    stranger = app.open_account(plan="pro", credits=1)
    response = await served.client.delete(
        f"/api/jobs/{served.job_id}/output", headers={"x-api-key": stranger.api_key}
    )
    assert response.status == 404
    assert (await get(served)).status == 200
