"""A sandbox key (ve_test_) holds no live power: it sees and manages sandbox things only.

The rules (docs/api.md, "Sandbox keys"): a sandbox key lists, mints and revokes sandbox
keys only; it reads and rotates the sandbox webhook secret, which signs sandbox jobs'
webhooks and nothing else; it sees sandbox jobs only, on every job route and stream.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.settings import Settings
from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import Runtime, build_runtime
from phantomflow.api.services import Services
from phantomflow.domain.keys import LIVE, TEST
from phantomflow.domain.script import MovieScript
from tests import test_webhooks
from tests.conftest import TINY_SCRIPT, assert_credits_reconcile
from tests.test_webhooks import ended_job, verify, wait_for

# Fixtures of the webhook tests: local receivers and the delivery pipeline.
receive = test_webhooks.receive
deliveries = test_webhooks.deliveries


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """With a secrets key, so that production (PostgreSQL) may store integrations."""
    built = build_runtime(replace(settings, secrets_key=base64.b64encode(os.urandom(32)).decode()))
    yield built
    try:
        assert_credits_reconcile(built)
    finally:
        built.close()


@pytest.fixture
async def api(runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        yield client


def ended_sandbox_job(runtime, account_id: UUID, webhook_uri: str | None) -> UUID:
    app = runtime.app
    job_id = app.submit_render(
        account_id, MovieScript.from_dict(TINY_SCRIPT), webhook_uri, {}, sandbox=True
    ).job_id
    app.start_job(app.get_job(job_id), "worker", lease_seconds=60)
    app.complete_job(job_id, f"{job_id}.mp4", 1.0, 2048)
    return job_id


async def keys_seen(api: TestClient, key: str) -> list[dict[str, Any]]:
    response = await api.get("/api/keys", headers={"x-api-key": key})
    assert response.status == 200
    return (await response.json())["keys"]


async def test_a_sandbox_key_cannot_mint_a_live_key(api, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    refused = await api.post(
        "/api/keys", json={"mode": "live"}, headers={"x-api-key": account.test_api_key}
    )
    assert refused.status == 403
    error = (await refused.json())["error"]
    assert error["code"] == "FORBIDDEN" and "sandbox" in error["message"]
    modes = [k["mode"] for k in runtime.app.get_account(account.account_id).api_keys.values()]
    assert sorted(modes) == [LIVE, TEST]  # nothing minted


async def test_a_sandbox_key_mints_sandbox_keys_and_a_live_key_still_mints_live_by_default(
    api, runtime
):
    account = runtime.app.open_account(plan="pro", credits=10)
    sandbox = await api.post("/api/keys", json={}, headers={"x-api-key": account.test_api_key})
    assert sandbox.status == 201
    minted = await sandbox.json()
    assert minted["mode"] == TEST and minted["api_key"].startswith("ve_test_")
    principal = runtime.app.authenticate(minted["api_key"])
    assert principal is not None and principal.is_sandbox

    live = await (
        await api.post("/api/keys", json={}, headers={"x-api-key": account.api_key})
    ).json()
    assert live["mode"] == LIVE


async def test_a_sandbox_key_lists_and_revokes_sandbox_keys_only(api, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    keys = runtime.app.get_account(account.account_id).api_keys
    live_id = next(key_id for key_id, key in keys.items() if key["mode"] == LIVE)
    spare = await (
        await api.post("/api/keys", json={}, headers={"x-api-key": account.test_api_key})
    ).json()

    seen = await keys_seen(api, account.test_api_key)
    assert {k["mode"] for k in seen} == {TEST} and len(seen) == 2
    assert len(await keys_seen(api, account.api_key)) == 3  # a live key sees every key

    refused = await api.delete(f"/api/keys/{live_id}", headers={"x-api-key": account.test_api_key})
    assert refused.status == 404
    assert (await refused.json())["error"]["code"] == "NOT_FOUND"
    assert runtime.app.authenticate(account.api_key) is not None

    revoked = await api.delete(
        f"/api/keys/{spare['id']}", headers={"x-api-key": account.test_api_key}
    )
    assert revoked.status == 200
    assert runtime.app.authenticate(spare["api_key"]) is None


async def test_a_sandbox_key_reads_and_rotates_the_sandbox_webhook_secret_only(api, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    live, sandbox = {"x-api-key": account.api_key}, {"x-api-key": account.test_api_key}
    live_secret = (await (await api.get("/api/webhooks/secret", headers=live)).json())["secret"]
    sandbox_secret = (await (await api.get("/api/webhooks/secret", headers=sandbox)).json())[
        "secret"
    ]
    assert sandbox_secret.startswith("whsec_") and sandbox_secret != live_secret

    rotated = await api.post("/api/webhooks/secret/rotate", headers=sandbox)
    assert rotated.status == 200
    new_sandbox_secret = (await rotated.json())["secret"]
    assert new_sandbox_secret not in (sandbox_secret, live_secret)
    assert (await (await api.get("/api/webhooks/secret", headers=live)).json())[
        "secret"
    ] == live_secret
    now = datetime.now(UTC)
    assert runtime.app.webhook_signing_secrets(account.account_id, now, LIVE) == [live_secret]
    assert runtime.app.webhook_signing_secrets(account.account_id, now, TEST) == [
        new_sandbox_secret,
        sandbox_secret,
    ]


async def test_a_sandbox_jobs_webhook_is_signed_with_the_sandbox_secret_alone(
    api, runtime, receive, deliveries
):
    receiver = await receive(200)
    account = runtime.app.open_account(plan="pro", credits=10)
    live_secret = runtime.app.webhook_secret(account.account_id, LIVE)
    sandbox_secret = runtime.app.webhook_secret(account.account_id, TEST)
    ended_sandbox_job(runtime, account.account_id, receiver.url)
    deliveries()
    await wait_for(lambda: len(receiver.requests) == 1)
    headers, body = receiver.requests[0]
    assert verify(sandbox_secret, headers, body)
    assert not verify(live_secret, headers, body)


async def test_a_sandbox_key_sees_no_live_job_on_any_job_route_and_a_live_key_no_sandbox_one(
    api, runtime
):
    account = runtime.app.open_account(plan="pro", credits=10)
    live_job = ended_job(runtime, account.account_id, "https://example.com/hook")
    sandbox_job = ended_sandbox_job(runtime, account.account_id, "https://example.com/hook")
    for key, other_mode_job, own_job in (
        (account.test_api_key, live_job, sandbox_job),
        (account.api_key, sandbox_job, live_job),
    ):
        headers = {"x-api-key": key}
        for method, path in (
            ("GET", "/api/jobs/{}"),
            ("GET", "/api/jobs/{}/events"),
            ("GET", "/api/jobs/{}/webhooks"),
            ("POST", "/api/jobs/{}/webhooks/redeliver"),
            ("POST", "/api/jobs/{}/cancel"),
            ("GET", "/api/jobs/{}/progress"),
        ):
            hidden = await api.request(method, path.format(other_mode_job), headers=headers)
            assert (hidden.status, path) == (404, path)
            seen = await api.request(method, path.format(own_job), headers=headers)
            assert seen.status != 404, path
    # Nothing was redelivered for the hidden jobs: only the visible ones asked.
    assert runtime.app.get_job(live_job).webhook_redeliveries == 1
    assert runtime.app.get_job(sandbox_job).webhook_redeliveries == 1


async def test_the_account_stream_of_a_sandbox_key_carries_sandbox_jobs_only(api, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    start = runtime.app.recorder.max_notification_id() or 0
    live_job = ended_job(runtime, account.account_id, None)
    sandbox_job = ended_sandbox_job(runtime, account.account_id, None)
    seen: dict[str, set[str]] = {}
    for mode, key in ((TEST, account.test_api_key), (LIVE, account.api_key)):
        response = await api.get(
            "/api/events", headers={"x-api-key": key, "Last-Event-ID": str(start)}
        )
        assert response.status == 200
        text = ""
        try:
            async with asyncio.timeout(5):
                while text.count("event: complete") < 1:
                    text += (await response.content.read(4096)).decode()
        except TimeoutError:
            pass
        response.close()
        seen[mode] = {job for job in (str(live_job), str(sandbox_job)) if job in text}
    assert seen == {TEST: {str(sandbox_job)}, LIVE: {str(live_job)}}


# What a sandbox key may do on each key, webhook and integration route. A new route
# under these prefixes fails the test below until its sandbox rule is decided here (and
# written down in docs/api.md).
SANDBOX_RULES = {
    ("GET", "/api/keys"): "its sandbox keys only",
    ("POST", "/api/keys"): "mints sandbox keys only (live: 403)",
    ("DELETE", "/api/keys/{key_id}"): "revokes sandbox keys only (live: 404)",
    ("GET", "/api/webhooks/secret"): "the sandbox secret",
    ("POST", "/api/webhooks/secret/rotate"): "rotates the sandbox secret",
    ("GET", "/api/jobs/{job_id}/webhooks"): "sandbox jobs only",
    ("POST", "/api/jobs/{job_id}/webhooks/redeliver"): "sandbox jobs only",
    ("GET", "/api/integrations"): "its sandbox integrations only",
    ("POST", "/api/integrations"): "makes sandbox integrations",
    ("GET", "/api/integrations/{integration_id}"): "sandbox integrations only (live: 404)",
    ("DELETE", "/api/integrations/{integration_id}"): "sandbox integrations only (live: 404)",
}
LIVE_INTEGRATION = {
    "type": "ftp",
    "name": "the live archive",
    "settings": {"host": "ftp.example.com", "port": 21, "username": "archive", "tls": False},
    "secrets": {"password": "not-a-real-one"},
}
GUARDED_PREFIXES = ("/api/keys", "/api/webhooks", "/api/integrations")


def guarded_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in ("HEAD", "OPTIONS"):
            continue
        if path.startswith(GUARDED_PREFIXES) or path.startswith("/api/jobs/{job_id}/webhooks"):
            found.add((route.method, path))
    return found


async def test_every_key_webhook_and_integration_route_has_a_sandbox_rule_that_holds(api, runtime):
    assert guarded_routes(api.app) == set(SANDBOX_RULES), (
        "decide (and document) what a sandbox key may do on each of these routes"
    )
    account = runtime.app.open_account(plan="pro", credits=10)
    live_job = ended_job(runtime, account.account_id, "https://example.com/hook")
    live_keys = dict(runtime.app.get_account(account.account_id).api_keys)
    live_secret = runtime.app.webhook_secret(account.account_id, LIVE)
    created = await api.post(
        "/api/integrations",
        json=LIVE_INTEGRATION,
        headers={"x-api-key": account.api_key},
    )
    assert created.status == 201, await created.text()
    live_integration = (await created.json())["id"]
    sandbox = {"x-api-key": account.test_api_key}
    for method, path in SANDBOX_RULES:
        concrete = path.format(
            key_id=next(iter(live_keys)), job_id=live_job, integration_id=live_integration
        )
        body = {"mode": "live"} if method == "POST" and path == "/api/keys" else None
        response = await api.request(method, concrete, json=body, headers=sandbox)
        assert response.status < 500, (method, path)
        assert live_secret not in await response.text(), (method, path)
    # Whatever the sandbox key did, the live side is as it was.
    after = runtime.app.get_account(account.account_id)
    assert {k: v for k, v in after.api_keys.items() if v["mode"] == LIVE} == {
        k: v for k, v in live_keys.items() if v["mode"] == LIVE
    }
    assert after.webhook_signing_secrets(datetime.now(UTC), LIVE) == [live_secret]
    assert runtime.app.get_job(live_job).webhook_redeliveries == 0
    still = await api.get(
        f"/api/integrations/{live_integration}", headers={"x-api-key": account.api_key}
    )
    assert still.status == 200  # a sandbox key cannot delete a live integration


async def test_a_sandbox_key_reads_the_balance_but_not_the_ledger_or_its_history(api, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    sandbox = {"x-api-key": account.test_api_key}
    balance = await api.get("/api/credits", headers=sandbox)
    assert (balance.status, (await balance.json())["credits"]) == (200, 10)
    for path in (
        "/api/credits/ledger",
        "/api/credits/ledger?format=csv",
        "/api/credits/balance?at=2030-01-01T00:00:00Z",
    ):
        refused = await api.get(path, headers=sandbox)
        assert (refused.status, (await refused.json())["error"]["code"]) == (403, "FORBIDDEN")
        allowed = await api.get(path, headers={"x-api-key": account.api_key})
        assert allowed.status == 200
