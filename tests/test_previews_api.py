"""Previews through the API, with the embedded system's own worker and followers: made
free, drawn storyboard first, watched through their link, rendered, deleted, expired."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.settings import Settings
from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import Embedded, Runtime, preview_sweeper
from phantomflow.api.services import Services
from phantomflow.domain.previews import Preview, parse_preview_ref
from phantomflow.domain.script import MovieScript
from phantomflow.projections.runner import FollowerThreads
from tests.conftest import TINY_SCRIPT, assert_credits_reconcile
from tests.media import ffprobe
from tests.test_media import MediaServer, media_dir, server  # noqa: F401 - fixtures
from tests.test_openapi import documented

pytestmark = pytest.mark.ffmpeg

TWO_SCENES = {
    **TINY_SCRIPT,
    "scenes": [
        {**TINY_SCRIPT["scenes"][0], "transition": {"type": "fade", "duration": 0.5}},
        {"duration": 1, "background": "#0000FF"},
    ],
}


@dataclass
class Api:
    client: TestClient
    runtime: Runtime

    def path(self, url: str) -> str:
        """An absolute URL of this server as a path the test client takes."""
        base = str(self.client.make_url("")).rstrip("/")
        assert url.startswith(base + "/"), url
        return url.removeprefix(base)

    async def wait(self, preview_id: str, headers: dict, status: str = "completed") -> dict:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = await (
                await self.client.get(f"/api/previews/{preview_id}", headers=headers)
            ).json()
            if body["status"] == status:
                return body
            assert body["status"] in ("queued", "processing"), body
            await asyncio.sleep(0.05)
        raise AssertionError(f"preview {preview_id} did not become {status}")


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    """The embedded system (API, render and preview workers, followers, sweeper)."""
    system = Embedded(settings)
    async with TestClient(TestServer(system.http_app())) as client:
        yield Api(client, system.runtime)
        system.followers.stop()  # the check follows the ledger itself
        assert_credits_reconcile(system.runtime)


@pytest.fixture
async def api_without_workers(runtime: Runtime) -> AsyncIterator[Api]:
    """Only the API and its read models: previews are made and stay queued."""
    followers = FollowerThreads([runtime.jobs_runner, runtime.templates_runner])
    followers.start()
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        yield Api(client, runtime)
    followers.stop()


def caught_up(runtime: Runtime) -> None:
    """Wait for the expiry index (followed by the system's own thread) to reach the head."""
    head = runtime.app.recorder.max_notification_id() or 0
    assert runtime.preview_expiry_runner.wait_for(head, timeout=10)


def key(account: Any, sandbox: bool = False) -> dict[str, str]:
    return {"x-api-key": account.test_api_key if sandbox else account.api_key}


async def read_stream(response: Any) -> list[tuple[str, dict]]:
    """(event name, data) of an event stream, until it closes."""
    events: list[tuple[str, dict]] = []
    name = ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
    return events


# --- the whole life of a preview ---------------------------------------------------------


async def test_a_preview_is_free_drawn_storyboard_first_and_watched_through_its_link(
    api: Api, tmp_path: Path
):
    account = api.runtime.app.open_account(plan="pro", credits=10)
    headers = key(account)
    created = await api.client.post("/api/previews", json=TWO_SCENES, headers=headers)
    preview = await documented(created, "post", "/api/previews", 201)
    assert re.fullmatch(r"prv_[0-9a-f]{32}", preview["preview_id"])
    assert created.headers["Location"] == f"/api/previews/{preview['preview_id']}"
    assert (preview["status"], preview["storyboard"], preview["proxy_uri"]) == ("queued", [], None)
    created_at = datetime.fromisoformat(preview["created_at"])
    assert datetime.fromisoformat(preview["expires_at"]) - created_at == timedelta(days=7)
    assert (preview["estimated_credits"], preview["duration_seconds"]) == (1, 1.5)

    stream = await api.client.get(
        f"/api/previews/{preview['preview_id']}/progress", headers=headers
    )
    events = await read_stream(stream)
    names = [name for name, _ in events]
    assert names[0] == "progress" and names[-1] == "complete"
    assert names.index("storyboard") < names.index("complete")
    storyboard_event = dict(events)["storyboard"]["storyboard"]
    assert [(f["scene"], f["kind"], f["time"]) for f in storyboard_event] == [
        (0, "scene", 0.5),
        (0, "transition", 0.75),
        (1, "scene", 1.0),
    ]

    done = await documented(
        await api.client.get(f"/api/previews/{preview['preview_id']}", headers=headers),
        "get",
        "/api/previews/{preview_id}",
        200,
    )
    assert (done["status"], done["progress"]) == ("completed", 1)
    assert [f["image_uri"] for f in done["storyboard"]] == [f["imageUri"] for f in storyboard_event]
    assert done["proxy"]["width"] == 320 and done["proxy"]["fps"] == 15
    # Free: no charge, no movement in the ledger.
    assert api.runtime.app.get_account(account.account_id).balance == 10

    # The viewer page, without a key: the proxy and the storyboard, nothing of the account.
    page = await api.client.get(api.path(done["viewer_url"]))
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["Referrer-Policy"] == "no-referrer"
    html = await page.text()
    assert "<script" not in html.lower()
    for secret in (str(account.account_id), account.api_key, account.test_api_key, "Hello"):
        assert secret not in html
    proxy_path = api.path(done["proxy_uri"])
    assert f'src="{proxy_path}"' in html
    for frame in done["storyboard"]:
        assert f'src="{api.path(frame["image_uri"])}"' in html

    # The video the page plays, probed.
    video = await api.client.get(proxy_path)
    assert (video.status, video.headers["Content-Type"]) == (200, "video/mp4")
    proxy_file = tmp_path / "proxy.mp4"
    proxy_file.write_bytes(await video.read())
    probe = ffprobe(proxy_file)
    stream_info = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (stream_info["codec_name"], stream_info["width"], stream_info["height"]) == (
        "h264",
        320,
        240,
    )
    assert float(probe["format"]["duration"]) == pytest.approx(1.5, abs=0.1)
    part = await api.client.get(proxy_path, headers={"Range": "bytes=0-99"})
    assert (part.status, len(await part.read())) == (206, 100)
    image = await api.client.get(api.path(done["storyboard"][0]["image_uri"]))
    assert (image.status, image.headers["Content-Type"]) == (200, "image/jpeg")
    assert (await image.read())[:2] == b"\xff\xd8"

    # Without the right token, nothing: not the page, not the files.
    ref = preview["preview_id"]
    for wrong in (f"/previews/{ref}/not-the-token", f"/previews/{ref}/not-the-token/proxy.mp4"):
        assert (await api.client.get(wrong)).status == 404


async def test_a_preview_of_a_template_is_made_from_its_variables(api_without_workers: Api):
    api = api_without_workers
    account = api.runtime.app.open_account(plan="pro", credits=10)
    headers = key(account)
    script = {**TINY_SCRIPT, "scenes": [{"duration": "{{seconds}}"}]}
    created = await api.client.post(
        "/api/templates", json={"name": "promo", "script": script}, headers=headers
    )
    template_id = (await created.json())["id"]
    body = {"template_id": template_id, "variables": {"seconds": 2}}
    made = await documented(
        await api.client.post("/api/previews", json=body, headers=headers),
        "post",
        "/api/previews",
        201,
    )
    assert made["origin"] == {
        "channel": "template",
        "template_id": template_id,
        "template_version": 1,
    }
    assert made["duration_seconds"] == 2

    # Its refusals are the template render's.
    for wrong in (
        {"template_id": template_id, "variables": {}},
        {"template_id": "tpl_" + "0" * 32, "variables": {}},
        {"template_id": template_id, "variables": {"seconds": 901}},
    ):
        preview = await api.client.post("/api/previews", json=wrong, headers=headers)
        render = await api.client.post(
            "/api/render/template?dry_run=true", json=wrong, headers=headers
        )
        assert preview.status == render.status >= 400
        assert (await preview.json())["error"] == (await render.json())["error"]


async def test_a_preview_refuses_every_bad_script_as_a_render_does(api_without_workers: Api):
    api = api_without_workers
    account = api.runtime.app.open_account(plan="pro", credits=10)
    headers = key(account)
    before = api.runtime.app.recorder.max_notification_id()
    for body in (
        {**TINY_SCRIPT, "fps": "15"},
        {**TINY_SCRIPT, "durration": 1},
        {**TINY_SCRIPT, "webhook_uri": "http://127.0.0.1/hook"},
        [1, 2],
        {},
    ):
        preview = await api.client.post("/api/previews", json=body, headers=headers)
        render = await api.client.post("/api/render?dry_run=true", json=body, headers=headers)
        assert preview.status == render.status == 400
        assert (await preview.json())["error"] == (await render.json())["error"]
    assert api.runtime.app.recorder.max_notification_id() == before


async def test_previews_have_a_rate_limit_of_their_own_per_plan(api_without_workers: Api):
    api = api_without_workers
    account = api.runtime.app.open_account(plan="free", credits=0)
    headers = key(account)
    # An invalid request is not a preview: it does not count.
    await api.client.post("/api/previews", json={"scenes": []}, headers=headers)
    for left in range(4, -1, -1):
        made = await api.client.post("/api/previews", json=TINY_SCRIPT, headers=headers)
        assert made.status == 201
        assert made.headers["X-Preview-RateLimit-Limit"] == "5"
        assert made.headers["X-Preview-RateLimit-Remaining"] == str(left)
    refused = await api.client.post("/api/previews", json=TINY_SCRIPT, headers=headers)
    error = (await documented(refused, "post", "/api/previews", 429))["error"]
    assert error["code"] == "RATE_LIMIT_EXCEEDED" and "5 previews a minute" in error["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    # Other requests still go through: the request limit is counted apart.
    assert (await api.client.get("/api/account", headers=headers)).status == 200


# --- rendering a preview -----------------------------------------------------------------


async def test_rendering_a_preview_is_a_render_with_its_checks_charge_and_answer(
    api_without_workers: Api,
):
    api = api_without_workers
    account = api.runtime.app.open_account(plan="pro", credits=5)
    headers = key(account)
    full_hd = {**TINY_SCRIPT, "width": 1920, "height": 1080, "quality": "high",
               "scenes": [{"duration": 3}], "webhook_uri": "https://example.com/done"}  # fmt: skip
    preview = await (await api.client.post("/api/previews", json=full_hd, headers=headers)).json()
    route = f"/api/previews/{preview['preview_id']}/render"
    template = "/api/previews/{preview_id}/render"

    quote = await documented(
        await api.client.post(route + "?dry_run=true", headers=headers), "post", template, 200
    )
    assert (quote["estimated_credits"], quote["credits_remaining"]) == (3, 2)
    rendered = await documented(
        await api.client.post(route, headers={**headers, "Idempotency-Key": "once"}),
        "post",
        template,
        202,
    )
    assert (rendered["status"], rendered["estimated_credits"], rendered["credits_remaining"]) == (
        "queued",
        3,
        2,
    )
    again = await api.client.post(route, headers={**headers, "Idempotency-Key": "once"})
    assert (again.headers["Idempotent-Replayed"], await again.json()) == ("true", rendered)
    job = api.runtime.app.get_job(uuid.UUID(rendered["job_id"]))
    assert job.origin["channel"] == "preview"
    assert job.origin["preview_id"] == preview["preview_id"]
    assert job.webhook_uri == "https://example.com/done"
    assert job.script == MovieScript.from_dict(full_hd).to_dict()

    # The same refusals as a render: credits, then a webhook of its own that is refused.
    poor = await api.client.post(route, headers=headers)
    error = (await documented(poor, "post", template, 402))["error"]
    assert (error["code"], error["required"], error["balance"]) == ("INSUFFICIENT_CREDITS", 3, 2)
    private = await api.client.post(
        route, json={"webhook_uri": "http://10.0.0.1/x"}, headers=headers
    )
    assert (await documented(private, "post", template, 400))["error"]["path"] == "webhook_uri"
    unknown = await api.client.post(route, json={"scenes": []}, headers=headers)
    assert (await documented(unknown, "post", template, 400))["error"]["code"] == "INVALID_REQUEST"


async def test_a_sandbox_preview_is_seen_by_sandbox_keys_only_and_renders_as_a_sandbox_job(
    api_without_workers: Api,
):
    api = api_without_workers
    account = api.runtime.app.open_account(plan="free", credits=0)
    other = api.runtime.app.open_account(plan="free", credits=0)
    preview = await (
        await api.client.post("/api/previews", json=TINY_SCRIPT, headers=key(account, True))
    ).json()
    assert preview["sandbox"] is True
    path = f"/api/previews/{preview['preview_id']}"
    assert (await api.client.get(path, headers=key(account, True))).status == 200
    for stranger in (key(account), key(other, True), key(other)):
        missing = await api.client.get(path, headers=stranger)
        assert await documented(missing, "get", "/api/previews/{preview_id}", 404)
    for malformed in ("/api/previews/prv_123", "/api/previews/" + "0" * 32):
        assert (await api.client.get(malformed, headers=key(account, True))).status == 404
    rendered = await api.client.post(path + "/render", headers=key(account, True))
    assert rendered.status == 202
    job = api.runtime.app.get_job(uuid.UUID((await rendered.json())["job_id"]))
    assert job.sandbox and api.runtime.app.get_account(account.account_id).balance == 0


# --- deleting and expiring ---------------------------------------------------------------


async def test_a_deleted_preview_is_gone_with_its_files(api: Api):
    account = api.runtime.app.open_account(plan="pro", credits=0)
    headers = key(account)
    made = await (await api.client.post("/api/previews", json=TINY_SCRIPT, headers=headers)).json()
    done = await api.wait(made["preview_id"], headers)
    files = [api.path(frame["image_uri"]) for frame in done["storyboard"]]
    files.append(api.path(done["proxy_uri"]))
    preview_id = parse_preview_ref(made["preview_id"])
    assert preview_id is not None
    stored = api.runtime.app.get_preview(preview_id).locations
    assert stored and all(api.runtime.preview_files.exists(key) for key in stored)

    path = f"/api/previews/{made['preview_id']}"
    deleted = await api.client.delete(path, headers=headers)
    assert await documented(deleted, "delete", "/api/previews/{preview_id}", 200) == {
        "preview_id": made["preview_id"],
        "deleted": True,
    }
    assert not any(api.runtime.preview_files.exists(key) for key in stored)
    assert (await api.client.get(path, headers=headers)).status == 404
    assert (await api.client.delete(path, headers=headers)).status == 404
    assert (await api.client.post(path + "/render", headers=headers)).status == 404
    assert (await api.client.get(api.path(done["viewer_url"]))).status == 404
    for file in files:
        assert (await api.client.get(file)).status == 404


async def test_an_expired_preview_answers_expired_and_the_sweeper_deletes_its_files(api: Api):
    account = api.runtime.app.open_account(plan="pro", credits=10)
    headers = key(account)
    made = await (await api.client.post("/api/previews", json=TINY_SCRIPT, headers=headers)).json()
    done = await api.wait(made["preview_id"], headers)
    preview_id = parse_preview_ref(made["preview_id"])
    assert preview_id is not None
    stored = api.runtime.app.get_preview(preview_id).locations
    assert stored and all(api.runtime.preview_files.exists(key) for key in stored)

    # Eight days on, by the sweeper's clock.
    caught_up(api.runtime)
    sweeper = preview_sweeper(api.runtime)
    assert sweeper.sweep() == 0  # not due yet
    sweeper.clock = lambda: datetime.now(UTC) + timedelta(days=8)
    assert sweeper.sweep() == 1
    assert not any(api.runtime.preview_files.exists(key) for key in stored)
    expired = api.runtime.app.get_preview(preview_id)
    last = list(api.runtime.app.events.get(preview_id))[-1]
    assert isinstance(last, Preview.Expired)
    assert sorted(last.files_deleted) == sorted(expired.locations)
    caught_up(api.runtime)
    assert sweeper.sweep() == 0  # recorded once

    # What clients see once it has expired.
    path = f"/api/previews/{made['preview_id']}"
    view = await (await api.client.get(path, headers=headers)).json()
    assert (view["status"], view["storyboard"], view["proxy_uri"], view["proxy"]) == (
        "expired",
        [],
        None,
        None,
    )
    assert (await api.client.get(api.path(done["viewer_url"]))).status == 410
    gone = await api.client.get(api.path(done["proxy_uri"]))
    assert (gone.status, (await gone.json())["error"]["code"]) == (410, "PREVIEW_EXPIRED")
    refused = await api.client.post(path + "/render", headers=headers)
    assert await documented(refused, "post", "/api/previews/{preview_id}/render", 410)
    assert api.runtime.app.get_account(account.account_id).balance == 10


async def test_a_preview_expires_by_the_clock_before_the_sweeper_comes(api_without_workers: Api):
    api = api_without_workers
    account = api.runtime.app.open_account(plan="pro", credits=10)
    preview = api.runtime.app.create_preview(
        account.account_id,
        MovieScript.from_dict(TINY_SCRIPT),
        {"channel": "api"},
        lifetime=timedelta(seconds=0),
    )
    view = await (await api.client.get(f"/api/previews/{preview.ref}", headers=key(account))).json()
    assert view["status"] == "expired"
    page = await api.client.get(f"/previews/{preview.ref}/{preview.viewer_token}")
    assert page.status == 410


# --- ahead of renders ----------------------------------------------------------------------


async def test_a_preview_is_drawn_at_once_while_every_render_thread_is_busy(
    sqlite_settings: Settings,
    server: MediaServer,  # noqa: F811
):
    # Renders that keep their threads busy without using the CPU: their one source
    # trickles in for 10 s.
    system = Embedded(replace(sqlite_settings, allow_private_urls=True))
    async with TestClient(TestServer(system.http_app())) as client:
        api = Api(client, system.runtime)
        account = api.runtime.app.open_account(plan="enterprise", credits=1000)
        headers = key(account)
        slow = {**TINY_SCRIPT, "scenes": [{"duration": 1, "background": {
            "type": "video", "src": server.url("slow")}}]}  # fmt: skip
        renders = []
        for _ in range(3):  # one more than the embedded system's two render threads
            submitted = await api.client.post("/api/render", json=slow, headers=headers)
            renders.append((await submitted.json())["job_id"])
        made = await (
            await api.client.post("/api/previews", json=TINY_SCRIPT, headers=headers)
        ).json()
        await api.wait(made["preview_id"], headers)
        jobs = [
            await (await api.client.get(f"/api/jobs/{job_id}", headers=headers)).json()
            for job_id in renders
        ]
        assert sorted(job["status"] for job in jobs) == ["processing", "processing", "queued"]
        for job_id in renders:
            await api.client.post(f"/api/jobs/{job_id}/cancel", headers=headers)
