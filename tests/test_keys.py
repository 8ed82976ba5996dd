"""Account keys: minted with the secret shown once, listed by prefix, revoked at once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import build_runtime
from phantomflow.api.cli import main
from phantomflow.api.services import Services


@pytest.fixture
async def client(runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(Services(runtime)))) as test_client:
        yield test_client


async def test_a_minted_key_works_at_once_and_is_then_listed_by_prefix_only(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=0)
    created = await client.post(
        "/api/keys", json={"mode": "test"}, headers={"x-api-key": account.api_key}
    )
    assert created.status == 201
    key = await created.json()
    assert key["api_key"].startswith("ve_test_") and key["api_key"].startswith(key["prefix"])

    listed = await (await client.get("/api/keys", headers={"x-api-key": key["api_key"]})).json()
    assert len(listed["keys"]) == 2  # a sandbox key sees the sandbox keys: the first and this
    assert key["api_key"] not in str(listed)
    assert {k["prefix"] for k in listed["keys"]} >= {key["prefix"]}


async def test_a_misspelt_field_mints_no_key(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=0)
    refused = await client.post(
        "/api/keys", json={"mdoe": "test"}, headers={"x-api-key": account.api_key}
    )
    assert refused.status == 400
    error = (await refused.json())["error"]
    assert (error["code"], error["path"]) == ("INVALID_REQUEST", "mdoe")
    listed = await (await client.get("/api/keys", headers={"x-api-key": account.api_key})).json()
    assert len(listed["keys"]) == 2


async def test_a_revoked_key_answers_401_at_once_on_every_api_process(client, runtime, settings):
    account = runtime.app.open_account(plan="pro", credits=0)
    spare = await (
        await client.post("/api/keys", json={}, headers={"x-api-key": account.api_key})
    ).json()
    other_process = build_runtime(settings)
    try:
        async with TestClient(TestServer(create_app(Services(other_process)))) as elsewhere:
            headers = {"x-api-key": spare["api_key"]}
            assert (await elsewhere.get("/api/jobs", headers=headers)).status == 200
            revoked = await client.delete(
                f"/api/keys/{spare['id']}", headers={"x-api-key": account.api_key}
            )
            assert await revoked.json() == {"id": spare["id"], "revoked": True}
            assert (await elsewhere.get("/api/jobs", headers=headers)).status == 401
            assert (await client.get("/api/jobs", headers=headers)).status == 401
            again = await client.delete(
                f"/api/keys/{spare['id']}", headers={"x-api-key": account.api_key}
            )
            assert again.status == 404
    finally:
        other_process.close()


async def test_another_accounts_key_cannot_be_revoked(client, runtime):
    owner = runtime.app.open_account(plan="pro", credits=0)
    other = runtime.app.open_account(plan="pro", credits=0)
    key_id = next(iter(runtime.app.get_account(owner.account_id).api_keys))
    response = await client.delete(f"/api/keys/{key_id}", headers={"x-api-key": other.api_key})
    assert response.status == 404
    assert runtime.app.authenticate(owner.api_key) is not None


def test_key_commands_mint_and_revoke(sqlite_settings, monkeypatch, capsys):
    monkeypatch.setenv("PHANTOMFLOW_DATA_DIR", str(sqlite_settings.data_dir))
    runtime = build_runtime(sqlite_settings)
    account = runtime.app.open_account(plan="pro", credits=0)
    runtime.close()
    capsys.readouterr()
    assert main(["keys", "create", str(account.account_id), "--mode", "live"]) == 0
    minted = json.loads(capsys.readouterr().out)
    assert main(["keys", "revoke", str(account.account_id), minted["id"]]) == 0
    runtime = build_runtime(sqlite_settings)
    try:
        assert runtime.app.authenticate(minted["api_key"]) is None
        assert runtime.app.authenticate(account.api_key) is not None
    finally:
        runtime.close()
