"""Exports through the whole system: integrations over HTTP, a render, every target's
real server on loopback, the job's page, its SSE stream and its webhook.

The system is the embedded one (API, render worker, export worker and followers in
this process, on SQLite), with short retry delays; the targets are the session's real
servers (tests/servers)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.secrets import SecretsUnavailable
from phantomflow.adapters.settings import Settings
from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import Embedded
from phantomflow.api.routes import job_history
from phantomflow.api.services import Services
from phantomflow.domain.integrations import Integration
from tests.conftest import TINY_SCRIPT, free_port
from tests.servers import ftp, sftp, smtp
from tests.servers.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Bucket


@dataclasses.dataclass
class Api:
    client: TestClient
    system: Embedded
    hooks: list[bytes]
    hook_url: str

    @property
    def runtime(self):
        return self.system.runtime

    async def call(self, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
        response = await self.client.request(method, path, json=body, headers={"x-api-key": key})
        return response.status, await response.json()

    async def integration(self, key: str, type_: str, settings: dict, secrets: dict) -> str:
        status, body = await self.call(
            "POST", "/api/integrations", key,
            {"type": type_, "name": f"my {type_}", "settings": settings, "secrets": secrets},
        )  # fmt: skip
        assert status == 201, body
        return body["id"]

    async def settled(self, key: str, job_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            _, job = await self.call("GET", f"/api/jobs/{job_id}", key)
            exports_done = all(
                e["status"] in ("succeeded", "failed", "skipped") for e in job["exports"]
            )
            if job["status"] in ("completed", "failed", "cancelled") and exports_done:
                return job
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.1)


def system_settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        allow_private_urls=True,
        export_retry_delays=(0.2, 0.2),
        webhook_retry_delays=(0.2,),
        **changes,
    )


@pytest.fixture
async def api(tmp_path: Path, youtube_server) -> AsyncIterator[Api]:
    hooks: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        hooks.append(await request.read())
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    hook_server = TestServer(receiver, host="127.0.0.1")
    await hook_server.start_server()
    port = free_port()
    settings = system_settings(
        tmp_path,
        public_url=f"http://127.0.0.1:{port}",
        google_token_url=youtube_server.token_url,
        youtube_upload_url=youtube_server.upload_url,
    )
    system = Embedded(settings)
    system.start()
    server = TestServer(create_app(Services(system.runtime)), host="127.0.0.1", port=port)
    async with TestClient(server) as client:
        yield Api(client, system, hooks, f"http://127.0.0.1:{hook_server.port}/hook")
    system.stop()
    await hook_server.close()


def s3_settings(bucket: S3Bucket) -> dict:
    return {"bucket": bucket.name, "region": REGION, "endpoint_url": bucket.endpoint.url,
            "access_key_id": ACCESS_KEY}  # fmt: skip


async def test_a_render_reaches_every_target_and_the_webhook_waits_for_them_all(
    api: Api, s3_bucket: S3Bucket, ftp_server, sftp_server, smtp_server, youtube_server
):
    account = api.runtime.app.open_account(plan="pro", credits=100)
    key = account.api_key
    ids = {
        "s3": await api.integration(key, "s3", s3_settings(s3_bucket),
                                    {"secret_access_key": SECRET_KEY}),
        "ftp": await api.integration(key, "ftp", ftp_server.settings(), {"password": ftp.PASSWORD}),
        "sftp": await api.integration(key, "sftp", sftp_server.settings(),
                                      {"password": sftp.PASSWORD}),
        "email": await api.integration(key, "email", smtp_server.settings(),
                                       {"password": smtp.PASSWORD}),
        "youtube": await api.integration(key, "youtube", youtube_server.settings(),
                                         youtube_server.secrets()),
    }  # fmt: skip
    folder = uuid.uuid4().hex[:8]
    mails = len(smtp_server.mailbox.messages)
    exports = [
        {"type": "s3", "integration_id": ids["s3"], "prefix": folder},
        {"type": "ftp", "integration_id": ids["ftp"], "path": folder},
        {"type": "sftp", "integration_id": ids["sftp"], "path": folder, "filename": "v.mp4"},
        {"type": "email", "integration_id": ids["email"], "to": ["team@example.com"]},
        {"type": "youtube", "integration_id": ids["youtube"], "title": "Our video"},
    ]
    status, submitted = await api.call(
        "POST", "/api/render", key,
        {**TINY_SCRIPT, "exports": exports, "webhook_uri": api.hook_url},
    )  # fmt: skip
    assert status == 202, submitted
    job_id = submitted["job_id"]

    job = await api.settled(key, job_id)
    assert job["status"] == "completed"
    assert [e["status"] for e in job["exports"]] == ["succeeded"] * 5, job["exports"]
    assert [e["type"] for e in job["exports"]] == ["s3", "ftp", "sftp", "email", "youtube"]
    assert all(e["attempts"] == 1 and e["error"] is None for e in job["exports"])
    rendered = await (await api.client.get(f"/outputs/{job_id}.mp4")).read()

    s3_key = f"{folder}/{job_id}.mp4"
    assert job["exports"][0]["location"] == f"s3://{s3_bucket.name}/{s3_key}"
    s3_object = s3_bucket.client().get_object(Bucket=s3_bucket.name, Key=s3_key)
    assert s3_object["Body"].read() == rendered
    assert (ftp_server.root / folder / f"{job_id}.mp4").read_bytes() == rendered
    assert (sftp_server.root / folder / "v.mp4").read_bytes() == rendered
    recipients, mail = smtp_server.mailbox.messages[mails]
    assert recipients == ["team@example.com"]
    assert job["output_uri"] in mail.get_body(("plain",)).get_content()
    video_id = job["exports"][4]["location"].rsplit("=", 1)[1]
    assert youtube_server.videos[video_id].path.read_bytes() == rendered

    # The webhook: once, after the last export, carrying every outcome.
    deadline = time.monotonic() + 10
    while not api.hooks:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert len(api.hooks) == 1
    payload = json.loads(api.hooks[0])
    assert payload["exports"] == job["exports"]

    # The job's stream: its outcome and its exports' outcomes, then it closes.
    response = await api.client.get(f"/api/jobs/{job_id}/progress", headers={"x-api-key": key})
    text = await asyncio.wait_for(response.text(), 10)
    names = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert names[0] == "complete" and names.count("export") == 10  # started, succeeded × 5
    datas = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert {d["index"] for d in datas if d.get("status") == "succeeded"} == {0, 1, 2, 3, 4}
    last_id = [line[4:] for line in text.splitlines() if line.startswith("id: ")][-1]
    again = await api.client.get(
        f"/api/jobs/{job_id}/progress", headers={"x-api-key": key, "Last-Event-ID": last_id}
    )
    assert again.status == 204


async def test_a_failing_export_is_retried_then_fails_without_touching_the_render(
    api: Api, sftp_server
):
    account = api.runtime.app.open_account(plan="pro", credits=100)
    key = account.api_key
    closed = {"host": "127.0.0.1", "port": free_port(), "username": "u", "tls": False}
    ftp_id = await api.integration(key, "ftp", closed, {"password": "p"})
    import asyncssh

    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    sftp_id = await api.integration(
        key, "sftp", sftp_server.settings(impostor), {"password": sftp.PASSWORD}
    )
    status, submitted = await api.call(
        "POST", "/api/render", key,
        {**TINY_SCRIPT, "exports": [{"type": "ftp", "integration_id": ftp_id},
                                    {"type": "sftp", "integration_id": sftp_id}]},
    )  # fmt: skip
    assert status == 202
    job = await api.settled(key, submitted["job_id"])

    ftp_export, sftp_export = job["exports"]
    # Connection refused: retried on the schedule (two retries here), then final.
    assert (ftp_export["status"], ftp_export["attempts"]) == ("failed", 3)
    assert ftp_export["error"]["code"] == "CONNECTION_FAILED"
    # A host key that is not the pinned one: no point retrying.
    assert (sftp_export["status"], sftp_export["attempts"]) == ("failed", 1)
    assert sftp_export["error"]["code"] == "HOST_KEY_MISMATCH"
    # The render is untouched: completed, charged as settled, its file served.
    assert job["status"] == "completed" and job["credits_used"] >= 1
    balance = api.runtime.app.get_account(account.account_id).balance
    assert balance == 100 - job["credits_used"]
    assert (await api.client.get(f"/outputs/{submitted['job_id']}.mp4")).status == 200
    history = job_history(api.runtime.app, uuid.UUID(submitted["job_id"]))
    failed = [e["data"] for e in history if e["type"] == "ExportFailed"]
    assert [(f["index"], f["attempt"], f["final"]) for f in failed if f["index"] == 0] == [
        (0, 1, False), (0, 2, False), (0, 3, True),
    ]  # fmt: skip


async def test_bad_exports_are_refused_at_their_path(api: Api, sftp_server):
    app = api.runtime.app
    mine, other = app.open_account("pro", 100), app.open_account("pro", 100)
    sftp_id = await api.integration(mine.api_key, "sftp", sftp_server.settings(),
                                    {"password": sftp.PASSWORD})  # fmt: skip
    theirs = await api.integration(other.api_key, "sftp", sftp_server.settings(),
                                   {"password": sftp.PASSWORD})  # fmt: skip
    sandboxed = await api.integration(mine.test_api_key, "sftp", sftp_server.settings(),
                                      {"password": sftp.PASSWORD})  # fmt: skip
    deleted = await api.integration(mine.api_key, "sftp", sftp_server.settings(),
                                    {"password": sftp.PASSWORD})  # fmt: skip
    assert (await api.call("DELETE", f"/api/integrations/{deleted}", mine.api_key))[0] == 200
    good = {"type": "sftp", "integration_id": sftp_id}
    cases = [
        ([{"type": "dropbox", "integration_id": sftp_id}], "exports.0.type", "Unsupported"),
        ([good, {"type": "sftp", "integration_id": "int_123"}], "exports.1.integration_id",
         "Expected an integration id"),
        ([good, {"type": "sftp", "integration_id": "int_" + "0" * 32}],
         "exports.1.integration_id", "No integration"),
        ([{"type": "sftp", "integration_id": theirs}], "exports.0.integration_id",
         "No integration"),
        ([{"type": "sftp", "integration_id": sandboxed}], "exports.0.integration_id",
         "live integrations"),
        ([{"type": "sftp", "integration_id": deleted}], "exports.0.integration_id",
         "No integration"),
        ([{"type": "ftp", "integration_id": sftp_id}], "exports.0.integration_id",
         "is of type sftp"),
        ([{"type": "email", "integration_id": sftp_id, "to": []}], "exports.0.to", ""),
        ([{"type": "youtube", "integration_id": sftp_id}], "exports.0.title", "Required"),
        ([{"type": "sftp", "integration_id": sftp_id, "path": "../etc"}], "exports.0.path", ""),
        ([good] * 11, "exports", "At most 10"),
    ]  # fmt: skip
    for exports, path, message in cases:
        status, body = await api.call("POST", "/api/render", mine.api_key,
                                      {**TINY_SCRIPT, "exports": exports})  # fmt: skip
        assert status == 400, (exports, body)
        assert body["error"]["code"] == "SCHEMA_VALIDATION_ERROR"
        assert (body["error"]["path"], message in body["error"]["message"]) == (path, True), body
    # Nothing was charged or queued by any of them.
    assert app.get_account(mine.account_id).balance == 100
    assert (await api.call("GET", "/api/jobs", mine.api_key))[1]["total"] == 0


async def test_sandbox_keys_export_the_sample_to_storage_and_skip_email(
    api: Api, sftp_server, smtp_server
):
    account = api.runtime.app.open_account(plan="free", credits=0)
    key = account.test_api_key
    sftp_id = await api.integration(key, "sftp", sftp_server.settings(),
                                    {"password": sftp.PASSWORD})  # fmt: skip
    email_id = await api.integration(key, "email", smtp_server.settings(),
                                     {"password": smtp.PASSWORD})  # fmt: skip
    mails = len(smtp_server.mailbox.messages)
    folder = uuid.uuid4().hex[:8]
    status, submitted = await api.call(
        "POST", "/api/render", key,
        {**TINY_SCRIPT, "exports": [
            {"type": "sftp", "integration_id": sftp_id, "path": folder},
            {"type": "email", "integration_id": email_id, "to": ["anyone@example.com"]}]},
    )  # fmt: skip
    assert status == 202, submitted
    job = await api.settled(key, submitted["job_id"])
    assert [e["status"] for e in job["exports"]] == ["succeeded", "skipped"]
    assert job["exports"][1]["error"]["code"] == "SANDBOX_SKIPPED"
    from phantomflow.adapters.samples import SANDBOX_SAMPLE

    landed = sftp_server.root / folder / f"{submitted['job_id']}.mp4"
    assert landed.read_bytes() == SANDBOX_SAMPLE.read_bytes()
    assert len(smtp_server.mailbox.messages) == mails
    # A live key does not see the sandbox key's integrations, nor the other way round.
    assert (await api.call("GET", "/api/integrations", account.api_key))[1]["integrations"] == []


async def test_integrations_keep_secrets_sealed_and_deleting_one_shreds_its_secret(
    api: Api, sftp_server, caplog
):
    account = api.runtime.app.open_account(plan="pro", credits=10)
    key = account.api_key
    password = "a-very-secret-password-6789"
    integration_id = await api.integration(key, "sftp", sftp_server.settings(),
                                           {"password": password})  # fmt: skip
    status, listed = await api.call("GET", "/api/integrations", key)
    assert status == 200
    [shown] = listed["integrations"]
    assert shown["id"] == integration_id and shown["type"] == "sftp"
    assert shown["settings"]["host_key"] == sftp_server.host_key
    assert shown["secrets"] == {"password": {"set": True, "last4": "6789"}}
    assert (await api.call("GET", f"/api/integrations/{integration_id}", key))[1] == shown
    # Nowhere in plain text: not in any answer, the event store's file or the logs.
    raw = (api.system.runtime.settings.data_dir / "events.sqlite3").read_bytes()
    assert password.encode() not in raw and password not in json.dumps(listed)
    assert password not in caplog.text

    uid = uuid.UUID(hex=integration_id[4:])
    stored = api.runtime.app.get_integration(uid)
    assert api.runtime.vault.open(uid, stored.sealed_secrets) == {"password": password}
    status, body = await api.call("DELETE", f"/api/integrations/{integration_id}", key)
    assert (status, body) == (200, {"id": integration_id, "deleted": True})
    with pytest.raises(SecretsUnavailable):
        api.runtime.vault.open(uid, stored.sealed_secrets)  # the sealed text outlives it
    assert isinstance(api.runtime.app.get_integration(uid), Integration)
    assert (await api.call("GET", "/api/integrations", key))[1] == {"integrations": []}
    assert (await api.call("GET", f"/api/integrations/{integration_id}", key))[0] == 404
    assert (await api.call("DELETE", f"/api/integrations/{integration_id}", key))[0] == 404


@pytest.mark.parametrize(
    ("body", "status", "code", "path"),
    [
        ({"type": "gdrive", "name": "x", "settings": {}, "secrets": {}}, 400,
         "VALIDATION_ERROR", "type"),
        ({"type": "ftp", "name": "x", "settings": {"host": "h", "username": "u"},
          "secrets": {}}, 400, "INVALID_REQUEST", "secrets.password"),
        ({"type": "ftp", "name": "x", "settings": {"host": "10.1.2.3", "username": "u"},
          "secrets": {"password": "p"}}, 400, "VALIDATION_ERROR", "settings.host"),
        ({"type": "sftp", "name": "x", "settings": {"host": "h.example", "username": "u",
          "host_key": "not a key"}, "secrets": {"password": "p"}}, 400, "VALIDATION_ERROR",
         "settings.host_key"),
        ({"type": "sftp", "name": "x", "settings": {"host": "h.example", "username": "u",
          "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
          "secrets": {}}, 400, "INVALID_REQUEST", "secrets.password"),
        ({"type": "s3", "name": "x", "settings": {"bucket": "b!", "access_key_id": "k"},
          "secrets": {"secret_access_key": "s"}}, 400, "VALIDATION_ERROR", "settings.bucket"),
        ({"type": "email", "name": "x", "settings": {"host": "smtp.example",
          "from_address": "nope"}, "secrets": {}}, 400, "VALIDATION_ERROR",
         "settings.from_address"),
        ({"type": "youtube", "name": "x", "settings": {"client_id": "c"},
          "secrets": {"client_secret": "s"}}, 400, "INVALID_REQUEST", "secrets.refresh_token"),
    ],
)  # fmt: skip
async def test_bad_integrations_are_refused_at_their_path(tmp_path: Path, body, status, code, path):
    system = Embedded(Settings(data_dir=tmp_path / "data"))  # the address policy in force
    account = system.runtime.app.open_account("pro", 0)
    async with TestClient(TestServer(create_app(Services(system.runtime)))) as client:
        response = await client.post(
            "/api/integrations", json=body, headers={"x-api-key": account.api_key}
        )
        assert response.status == status
        error = (await response.json())["error"]
    system.runtime.close()
    assert (error["code"], error["path"]) == (code, path), error


async def test_production_without_a_secrets_key_refuses_to_store_integrations(
    postgres_settings: Settings,
):
    from phantomflow.api.bootstrap import build_runtime

    runtime = build_runtime(postgres_settings)
    account = runtime.app.open_account("pro", 0)
    try:
        async with TestClient(TestServer(create_app(Services(runtime)))) as client:
            response = await client.post(
                "/api/integrations",
                json={"type": "ftp", "name": "x", "settings": {"host": "ftp.example",
                      "username": "u"}, "secrets": {"password": "p"}},
                headers={"x-api-key": account.api_key},
            )  # fmt: skip
            assert response.status == 503
            assert (await response.json())["error"]["code"] == "SECRETS_KEY_MISSING"
    finally:
        runtime.close()
