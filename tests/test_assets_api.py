"""Assets over HTTP, on both storage backends (a local folder and a real S3 server):
uploads streamed, probed from their content, stored once per content, counted against
the plan's quota, listed, served, deleted; and scripts that name them."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.asset_files import spool_folder
from phantomflow.adapters.settings import Settings
from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import Runtime, build_runtime, render_service
from phantomflow.api.services import Services
from phantomflow.domain import plans
from phantomflow.domain.jobs import RenderJob
from phantomflow.domain.plans import MB
from phantomflow.projections.runner import FollowerThreads
from tests import upload_files as files
from tests.conftest import TINY_SCRIPT
from tests.media import frame_rgb
from tests.servers.s3 import S3Bucket
from tests.test_openapi import documented


@dataclasses.dataclass
class Library:
    client: TestClient
    runtime: Runtime
    backend: str
    key: str  # a pro account's live key
    account_id: uuid.UUID
    test_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.key}

    def stored_keys(self) -> list[str]:
        """Every object under assets/ in the backend."""
        storage = self.runtime.storage
        if self.backend == "file":
            root = Path(storage.url.removeprefix("file://")) / "assets"
            return sorted(str(p.relative_to(root.parent)) for p in root.rglob("*") if p.is_file())
        client = storage.client  # type: ignore[attr-defined]
        listed = client.list_objects_v2(Bucket=storage.bucket, Prefix=storage._object_key("assets"))  # type: ignore[attr-defined]
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def spooled(self) -> set[Path]:
        folder = spool_folder(self.runtime.storage)
        return set(folder.glob("upload-*")) if folder.is_dir() else set()


@pytest.fixture(params=["file", "s3"])
async def library(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch
) -> AsyncIterator[Library]:
    settings = Settings(data_dir=tmp_path / "data", media_cache_dir=tmp_path / "media-cache")
    if request.param == "s3":
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        for name, value in bucket.endpoint.env().items():
            monkeypatch.setenv(name, value)
        settings = dataclasses.replace(
            settings, storage_url=f"s3://{bucket.name}/out", s3_serve="proxy"
        )
    runtime = build_runtime(settings)
    account = runtime.app.open_account(plan="pro", credits=100)
    followers = FollowerThreads(runtime.read_models)
    followers.start()
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        yield Library(
            client,
            runtime,
            request.param,
            account.api_key,
            account.account_id,
            account.test_api_key,
        )
    followers.stop()
    runtime.close()


def form(*parts: tuple[str, str, bytes]) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for field, name, content in parts:
        data.add_field(field, content, filename=name, content_type="application/octet-stream")
    return data


async def upload(
    library: Library, *parts: tuple[str, str, bytes], key: str | None = None
) -> tuple[int, Any]:
    response = await library.client.post(
        "/api/assets", data=form(*parts), headers={"x-api-key": key or library.key}
    )
    return response.status, await response.json()


async def error_code(response_status: int, body: Any, status: int, code: str) -> dict:
    assert response_status == status, body
    assert body["error"]["code"] == code, body
    return body["error"]


async def storage_used(library: Library) -> int:
    response = await library.client.get("/api/assets", headers=library.headers)
    return (await response.json())["storage"]["used_bytes"]


async def test_an_uploaded_file_is_probed_stored_listed_and_served(library):
    png = files.png()
    status, body = await upload(library, ("file", "logo.png", png))
    assert status == 201, body
    (asset,) = body["assets"]
    assert asset["id"].startswith("asset_")
    assert (asset["name"], asset["type"], asset["mime_type"]) == ("logo.png", "image", "image/png")
    assert (asset["size"], asset["width"], asset["height"]) == (len(png), 32, 24)
    assert asset["duration_seconds"] is None
    import hashlib

    assert asset["sha256"] == hashlib.sha256(png).hexdigest()
    assert asset["url"].endswith(f"/api/assets/{asset['id']}/content")

    listed = await (await library.client.get("/api/assets", headers=library.headers)).json()
    assert [a["id"] for a in listed["assets"]] == [asset["id"]]
    assert listed["assets"][0] == asset
    assert (listed["total"], listed["page"], listed["limit"]) == (1, 1, 20)
    assert listed["storage"] == {"used_bytes": len(png), "limit_bytes": 50 * 1024 * MB}

    one = await library.client.get(f"/api/assets/{asset['id']}", headers=library.headers)
    assert await one.json() == asset
    content = await library.client.get(
        f"/api/assets/{asset['id']}/content", headers=library.headers
    )
    assert content.status == 200
    assert content.headers["Content-Type"] == "image/png"
    assert "public" not in content.headers["Cache-Control"]  # read with a key: no shared cache
    assert await content.read() == png
    unauthenticated = await library.client.get(f"/api/assets/{asset['id']}/content")
    assert unauthenticated.status == 401
    assert library.stored_keys() and all(asset["sha256"] in k for k in library.stored_keys())


async def test_several_files_are_typed_by_their_content_never_their_name(library):
    status, body = await upload(
        library,
        ("files", "actually-a-png.mp4", files.png()),
        ("files", "clip.bin", files.mp4()),
        ("files", "tone", files.wav()),
        ("files", "font.png", files.ttf()),
    )
    assert status == 201, body
    kinds = [(a["type"], a["mime_type"]) for a in body["assets"]]
    assert kinds == [
        ("image", "image/png"),
        ("video", "video/mp4"),
        ("audio", "audio/wav"),
        ("font", "font/ttf"),
    ]
    video = body["assets"][1]
    assert (video["width"], video["height"], video["duration_seconds"]) == (64, 48, 1.0)
    images = await library.client.get("/api/assets?type=image", headers=library.headers)
    assert [a["name"] for a in (await images.json())["assets"]] == ["actually-a-png.mp4"]
    bad = await library.client.get("/api/assets?type=pdf", headers=library.headers)
    await error_code(bad.status, await bad.json(), 400, "INVALID_REQUEST")


async def test_the_same_content_uploaded_twice_is_stored_once_and_counted_once(library):
    png = files.png(colour="green")
    _, first = await upload(library, ("file", "a.png", png))
    status, second = await upload(library, ("file", "b.png", png), ("files", "c.png", png))
    assert status == 201
    ids = {first["assets"][0]["id"], *(a["id"] for a in second["assets"])}
    assert len(ids) == 1
    assert len(library.stored_keys()) == 1
    assert await storage_used(library) == len(png)


async def test_hostile_files_are_refused_by_name_and_nothing_is_stored(library):
    for name, content in files.hostile().items():
        status, body = await upload(library, ("file", name, content))
        error = await error_code(status, body, 400, "UNSUPPORTED_FILE_TYPE")
        assert error["name"] == name
        assert name in error["message"]
    # One bad file among good ones: none of them is kept.
    status, body = await upload(
        library, ("files", "good.png", files.png()), ("files", "page.mp4", files.HTML)
    )
    assert (await error_code(status, body, 400, "UNSUPPORTED_FILE_TYPE"))["name"] == "page.mp4"
    assert library.stored_keys() == []
    assert library.spooled() == set()
    assert await storage_used(library) == 0


async def test_a_file_name_is_only_a_display_name(library):
    # Sent raw: aiohttp's client refuses to send a control character in a header, and
    # an attacker's client would not. RFC 5987 encoding carries what a plain name cannot.
    boundary = "pfname"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; '
            "filename*=UTF-8''..%2F..%2Fetc%2Fevil%01name.png\r\n\r\n"
        ).encode()
        + files.png()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = await library.client.post(
        "/api/assets",
        data=body,
        headers={**library.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 201, await response.json()
    assert (await response.json())["assets"][0]["name"] == "evil_name.png"
    assert all("evil" not in key and ".." not in key for key in library.stored_keys())


async def test_uploads_without_files_with_empty_or_too_many_files_are_refused(library):
    client, headers = library.client, library.headers
    for sent in (
        {"data": b"--b--\r\n", "headers": {"Content-Type": "multipart/form-data; boundary=b"}},
        {},
    ):
        refused = await client.post(
            "/api/assets", data=sent.get("data"), headers={**headers, **sent.get("headers", {})}
        )
        await error_code(refused.status, await refused.json(), 400, "NO_FILES")
    unknown = await client.post("/api/assets", data=form(("note", "n.png", b"x")), headers=headers)
    assert (await error_code(unknown.status, await unknown.json(), 400, "INVALID_REQUEST"))[
        "path"
    ] == "note"
    status, body = await upload(library, ("file", "nothing.png", b""))
    assert (await error_code(status, body, 400, "EMPTY_FILE"))["name"] == "nothing.png"
    many = [("files", f"{n}.png", files.png()) for n in range(21)]
    status, body = await upload(library, *many)
    assert (await error_code(status, body, 400, "TOO_MANY_FILES"))["limit"] == 20
    json_body = await client.post("/api/assets", json={"file": "x"}, headers=headers)
    assert json_body.status == 415
    assert library.stored_keys() == [] and library.spooled() == set()


async def test_a_file_over_the_plans_single_file_limit_is_refused(library, monkeypatch):
    monkeypatch.setitem(
        plans.STORAGE_LIMITS, "pro", plans.StorageLimits(storage_bytes=50 * MB, max_file_bytes=MB)
    )
    status, body = await upload(library, ("file", "big.wav", files.wav(1) + b"\0" * MB))
    error = await error_code(status, body, 413, "FILE_TOO_LARGE")
    assert (error["name"], error["limit_bytes"]) == ("big.wav", MB)
    assert library.stored_keys() == [] and library.spooled() == set()


async def test_files_over_the_quota_are_refused_with_the_numbers_and_nothing_is_stored(library):
    png, wav = files.png(), files.wav(2)
    library.runtime.app.change_plan(library.account_id, "enterprise", storage_bytes=len(png) + 10)
    await upload(library, ("file", "a.png", png))
    status, body = await upload(library, ("file", "w.wav", wav), ("files", "w2.wav", wav))
    error = await error_code(status, body, 402, "STORAGE_LIMIT_EXCEEDED")
    assert (error["used_bytes"], error["limit_bytes"]) == (len(png), len(png) + 10)
    assert error["required_bytes"] == len(wav)  # the same content twice needs room once
    assert len(library.stored_keys()) == 1
    assert library.spooled() == set()
    assert await storage_used(library) == len(png)
    # Content the account holds already needs no room.
    status, _ = await upload(library, ("file", "again.png", png))
    assert status == 201


async def test_a_client_that_disconnects_mid_upload_leaves_nothing_behind(library):
    server = library.client.server
    boundary = "pfboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    sent = head + files.mp4() * 20
    request = (
        f"POST /api/assets HTTP/1.1\r\nHost: {server.host}\r\nx-api-key: {library.key}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(sent) * 4}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    raw = await loop.run_in_executor(None, socket.create_connection, (server.host, server.port))
    try:
        await loop.run_in_executor(None, raw.sendall, request + sent)
        # The upload has begun: its spool file exists.
        for _ in range(400):
            if library.spooled():
                break
            await asyncio.sleep(0.025)
        assert library.spooled()
    finally:
        raw.close()
    # The handler notices the lost connection on its next read; wait until it has.
    for _ in range(400):
        if not library.spooled():
            break
        await asyncio.sleep(0.025)
    assert library.spooled() == set()
    assert library.stored_keys() == []
    assert await storage_used(library) == 0
    listed = await library.client.get("/api/assets", headers=library.headers)
    assert (await listed.json())["total"] == 0


async def test_an_asset_a_queued_job_uses_cannot_be_deleted_until_the_job_ends(library):
    client, headers = library.client, library.headers
    _, body = await upload(library, ("file", "logo.png", files.png()))
    ref = body["assets"][0]["id"]
    script = {
        **TINY_SCRIPT,
        "scenes": [
            {"duration": 1, "background": "#000000", "elements": [{"type": "image", "src": ref}]}
        ],
    }
    submitted = await client.post("/api/render", json=script, headers=headers)
    assert submitted.status == 202, await submitted.json()
    job_id = (await submitted.json())["job_id"]
    refused = await client.delete(f"/api/assets/{ref}", headers=headers)
    error = await error_code(refused.status, await refused.json(), 409, "ASSET_IN_USE")
    assert error["job_ids"] == [job_id]
    assert len(library.stored_keys()) == 1
    assert (await client.post(f"/api/jobs/{job_id}/cancel", headers=headers)).status == 200
    deleted = await client.delete(f"/api/assets/{ref}", headers=headers)
    assert (deleted.status, await deleted.json()) == (200, {"id": ref, "deleted": True})
    assert library.stored_keys() == []
    assert await storage_used(library) == 0
    gone = await client.get(f"/api/assets/{ref}", headers=headers)
    await error_code(gone.status, await gone.json(), 404, "NOT_FOUND")
    again = await client.post("/api/render", json=script, headers=headers)
    error = await error_code(again.status, await again.json(), 400, "SCHEMA_VALIDATION_ERROR")
    assert error["path"] == "scenes.0.elements.0.src"


async def test_scripts_may_use_only_the_callers_own_assets_of_the_right_type(library):
    client, headers = library.client, library.headers
    _, body = await upload(
        library, ("files", "a.wav", files.wav()), ("files", "f.ttf", files.ttf())
    )
    audio, font = (a["id"] for a in body["assets"])
    other = library.runtime.app.open_account(plan="pro", credits=10)
    _, foreign = await upload(library, ("file", "x.png", files.png()), key=other.api_key)
    foreign_ref = foreign["assets"][0]["id"]
    _, sandboxed = await upload(
        library, ("file", "s.png", files.png(colour="blue")), key=library.test_key
    )
    sandbox_ref = sandboxed["assets"][0]["id"]

    def image(ref: str) -> dict:
        return {
            **TINY_SCRIPT,
            "scenes": [
                {
                    "duration": 1,
                    "background": "#000000",
                    "elements": [{"type": "image", "src": ref}],
                }
            ],
        }

    def text(family: str) -> dict:
        return {
            **TINY_SCRIPT,
            "scenes": [
                {"duration": 1, "background": "#000000",
                 "elements": [{"type": "text", "text": "Hi", "font_family": family}]}
            ],
        }  # fmt: skip

    cases = [
        (image(audio), "scenes.0.elements.0.src", "audio"),
        (image(foreign_ref), "scenes.0.elements.0.src", "No asset"),
        (image(sandbox_ref), "scenes.0.elements.0.src", "No asset"),
        (text(audio), "scenes.0.elements.0.font_family", "audio"),
    ]
    for script, path, words in cases:
        for route in ("/api/render", "/api/render?dry_run=true", "/api/previews"):
            response = await client.post(route, json=script, headers=headers)
            error = await error_code(
                response.status, await response.json(), 400, "SCHEMA_VALIDATION_ERROR"
            )
            assert (error["path"], words in error["message"]) == (path, True), (route, error)
    created = await client.post(
        "/api/templates",
        json={"name": "t", "script": image("{{logo}}")},
        headers=headers,
    )
    assert created.status == 201, await created.json()
    template_id = (await created.json())["id"]
    templated = await client.post(
        "/api/render/template",
        json={"template_id": template_id, "variables": {"logo": foreign_ref}},
        headers=headers,
    )
    error = await error_code(
        templated.status, await templated.json(), 400, "SCHEMA_VALIDATION_ERROR"
    )
    assert error["path"] == "scenes.0.elements.0.src"
    ok = await client.post("/api/render?dry_run=true", json=text(font), headers=headers)
    assert ok.status == 200, await ok.json()
    malformed = await client.post("/api/render", json=image("asset_nothex"), headers=headers)
    await error_code(malformed.status, await malformed.json(), 400, "SCHEMA_VALIDATION_ERROR")


async def test_sandbox_and_live_keys_keep_their_assets_apart(library):
    client = library.client
    _, live = await upload(library, ("file", "l.png", files.png()))
    live_ref = live["assets"][0]["id"]
    sandbox = {"x-api-key": library.test_key}
    listed = await (await client.get("/api/assets", headers=sandbox)).json()
    assert listed["assets"] == []
    for method in ("get", "delete"):
        response = await getattr(client, method)(f"/api/assets/{live_ref}", headers=sandbox)
        await error_code(response.status, await response.json(), 404, "NOT_FOUND")
    # The same content with the sandbox key: an asset of its own, with its own file.
    _, mine = await upload(library, ("file", "l.png", files.png()), key=library.test_key)
    assert mine["assets"][0]["id"] != live_ref
    assert len(library.stored_keys()) == 2
    await client.delete(f"/api/assets/{mine['assets'][0]['id']}", headers=sandbox)
    assert len(library.stored_keys()) == 1  # the live asset's
    served = await client.get(f"/api/assets/{live_ref}/content", headers=library.headers)
    assert served.status == 200


async def test_a_job_renders_with_an_uploaded_image_and_font_from_storage(library, tmp_path):
    client, headers = library.client, library.headers
    _, body = await upload(
        library, ("files", "bg.png", files.png(320, 240, "blue")), ("files", "f.ttf", files.ttf())
    )
    image, font = (a["id"] for a in body["assets"])
    script = {
        **TINY_SCRIPT,
        "scenes": [
            {
                "duration": 1,
                "background": {"type": "image", "src": image},
                "elements": [
                    {"type": "text", "text": "Hi", "font_family": font, "position": "top-left"}
                ],
            }
        ],
    }
    submitted = await client.post("/api/render", json=script, headers=headers)
    assert submitted.status == 202, await submitted.json()
    job_id = uuid.UUID((await submitted.json())["job_id"])
    service = render_service(library.runtime)
    outcome = await asyncio.get_running_loop().run_in_executor(None, service.run, job_id)
    job = library.runtime.app.get_job(job_id)
    assert outcome == "completed", job.error
    output = tmp_path / "out.mp4"
    output.write_bytes(b"".join(library.runtime.storage.read(job.output_location)))
    red, green, blue = frame_rgb(output, 0.5, 300, 220)
    assert blue > 200 and red < 60 and green < 60  # the uploaded image, bottom right
    # Ended: its assets are free to go.
    deleted = await client.delete(f"/api/assets/{image}", headers=headers)
    assert deleted.status == 200


async def test_an_asset_is_downloaded_once_per_host_and_its_cache_use_is_in_the_events(library):
    _, body = await upload(library, ("file", "bg.png", files.png(320, 240, "blue")))
    image = body["assets"][0]["id"]
    script = {**TINY_SCRIPT, "scenes": [{"duration": 1, "background": {"type": "image", "src": image}}]}  # fmt: skip
    service = render_service(library.runtime)
    said = []
    for _ in range(2):
        submitted = await library.client.post("/api/render", json=script, headers=library.headers)
        job_id = uuid.UUID((await submitted.json())["job_id"])
        outcome = await asyncio.get_running_loop().run_in_executor(None, service.run, job_id)
        assert outcome == "completed", library.runtime.app.get_job(job_id).error
        events = library.runtime.app.events.get(job_id)
        said += [
            e.media_cache
            for e in events
            if isinstance(e, RenderJob.ProgressReported) and e.media_cache is not None
        ]

    if library.backend == "s3":
        # Read from the bucket by the first job, from the host's cache (by content) after.
        assert said == [{"hits": 0, "misses": 1}, {"hits": 1, "misses": 0}]
    else:
        # A local folder's file is read where it is stored: nothing to download.
        assert said == [{"hits": 0, "misses": 0}, {"hits": 0, "misses": 0}]


async def test_the_asset_routes_answer_as_the_openapi_document_says(library, monkeypatch):
    client, headers = library.client, library.headers
    sent = await client.post(
        "/api/assets", data=form(("file", "a.png", files.png())), headers=headers
    )
    ref = (await documented(sent, "post", "/api/assets", 201))["assets"][0]["id"]
    await documented(await client.get("/api/assets", headers=headers), "get", "/api/assets", 200)
    one = "/api/assets/{asset_id}"
    await documented(await client.get(f"/api/assets/{ref}", headers=headers), "get", one, 200)
    for data, status in (
        (form(("file", "x.mp4", files.TEXT)), 400),
        (form(("file", "x.png", b"")), 400),
        (form(*[("files", "x.png", b"x")] * 21), 400),
    ):
        refused = await client.post("/api/assets", data=data, headers=headers)
        await documented(refused, "post", "/api/assets", status)
    monkeypatch.setitem(
        plans.STORAGE_LIMITS, "pro", plans.StorageLimits(storage_bytes=10, max_file_bytes=10**6)
    )
    full = await client.post(
        "/api/assets", data=form(("file", "w.wav", files.wav())), headers=headers
    )
    await documented(full, "post", "/api/assets", 402)
    monkeypatch.setitem(
        plans.STORAGE_LIMITS, "pro", plans.StorageLimits(storage_bytes=10**9, max_file_bytes=10)
    )
    large = await client.post(
        "/api/assets", data=form(("file", "w.wav", files.wav())), headers=headers
    )
    await documented(large, "post", "/api/assets", 413)
    script = {
        **TINY_SCRIPT,
        "scenes": [{"duration": 1, "background": {"type": "image", "src": ref}, "elements": []}],
    }
    await client.post("/api/render", json=script, headers=headers)
    await documented(await client.delete(f"/api/assets/{ref}", headers=headers), "delete", one, 409)
    missing = f"/api/assets/asset_{'0' * 32}"
    await documented(await client.get(missing, headers=headers), "get", one, 404)


async def test_the_asset_list_is_a_read_model_rebuilt_from_the_events(library):
    client, headers = library.client, library.headers
    _, body = await upload(
        library, ("files", "a.png", files.png()), ("files", "b.wav", files.wav())
    )
    first, second = (a["id"] for a in body["assets"])
    await client.delete(f"/api/assets/{first}", headers=headers)
    before = await (await client.get("/api/assets", headers=headers)).json()
    assert [a["id"] for a in before["assets"]] == [second]
    library.runtime.assets_runner.rebuild()
    after = await (await client.get("/api/assets", headers=headers)).json()
    assert after == before


async def test_a_file_larger_than_any_json_body_is_streamed_through(library):
    from phantomflow.api.app import MAX_BODY_BYTES

    wav = files.wav(40)  # 3.5 MB: bodies read whole stop at 2 MiB
    assert len(wav) > MAX_BODY_BYTES
    status, body = await upload(library, ("file", "long.wav", wav))
    assert status == 201, body
    assert body["assets"][0]["size"] == len(wav)
    ref = body["assets"][0]["id"]
    content = await library.client.get(f"/api/assets/{ref}/content", headers=library.headers)
    assert await content.read() == wav


async def test_content_deleted_and_uploaded_again_is_a_new_asset_with_a_file_of_its_own(library):
    # Each asset's file is its own, so a deletion racing an upload of the same content
    # can only take the deleted asset's file, never the new one's.
    client, headers = library.client, library.headers
    png = files.png(colour="yellow")
    _, first = await upload(library, ("file", "a.png", png))
    old_keys = library.stored_keys()
    await client.delete(f"/api/assets/{first['assets'][0]['id']}", headers=headers)
    _, again = await upload(library, ("file", "a.png", png))
    assert again["assets"][0]["id"] != first["assets"][0]["id"]
    assert library.stored_keys() != old_keys and len(library.stored_keys()) == 1
    served = await client.get(f"/api/assets/{again['assets'][0]['id']}/content", headers=headers)
    assert await served.read() == png
