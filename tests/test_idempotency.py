"""Idempotent submissions: the same key and body answer the first response and charge once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.domain.accounts import CreditAccount
from phantomflow.domain.idempotency import IdempotencyRecord
from phantomflow.domain.script import MovieScript
from phantomflow.domain.templates import template_ref
from tests.conftest import TINY_SCRIPT
from tests.test_templates_api import TINY_TEMPLATE, TINY_VARIABLES


@pytest.fixture
async def client(runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(Services(runtime)))) as test_client:
        yield test_client


def charges(runtime, account_id) -> list:
    return [
        e for e in runtime.app.events.get(account_id) if isinstance(e, CreditAccount.CreditsCharged)
    ]


async def test_a_retry_with_the_same_key_returns_the_first_response_and_charges_once(
    client, runtime
):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key, "Idempotency-Key": "order-1234"}
    first = await client.post("/api/render", json=TINY_SCRIPT, headers=headers)
    retry = await client.post("/api/render", json=TINY_SCRIPT, headers=headers)
    assert (first.status, retry.status) == (202, 202)
    assert await retry.json() == await first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(charges(runtime, account.account_id)) == 1
    assert runtime.app.get_account(account.account_id).balance == 9


async def test_concurrent_retries_with_one_key_charge_once(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key, "Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(client.post("/api/render", json=TINY_SCRIPT, headers=headers) for _ in range(8))
    )
    bodies = [await response.json() for response in responses]
    assert {response.status for response in responses} == {202}
    assert len({body["job_id"] for body in bodies}) == 1
    assert len(charges(runtime, account.account_id)) == 1


async def test_the_same_key_with_a_different_body_is_refused(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key, "Idempotency-Key": "k"}
    await client.post("/api/render", json=TINY_SCRIPT, headers=headers)
    changed = {**TINY_SCRIPT, "fps": 24}
    response = await client.post("/api/render", json=changed, headers=headers)
    assert response.status == 422
    error = (await response.json())["error"]
    assert (error["code"], error["path"]) == ("IDEMPOTENCY_KEY_REUSED", "Idempotency-Key")
    assert len(charges(runtime, account.account_id)) == 1


async def test_keys_belong_to_one_account(client, runtime):
    first = runtime.app.open_account(plan="pro", credits=10)
    second = runtime.app.open_account(plan="pro", credits=10)
    for account in (first, second):
        response = await client.post(
            "/api/render",
            json=TINY_SCRIPT,
            headers={"x-api-key": account.api_key, "Idempotency-Key": "shared-name"},
        )
        assert response.status == 202 and "Idempotent-Replayed" not in response.headers


async def test_an_unusable_key_is_a_clear_error(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    response = await client.post(
        "/api/render",
        json=TINY_SCRIPT,
        headers={"x-api-key": account.api_key, "Idempotency-Key": "x" * 256},
    )
    assert response.status == 400
    assert (await response.json())["error"]["path"] == "Idempotency-Key"


def test_a_key_expires_after_24_hours_and_then_stands_for_a_new_request(runtime, monkeypatch):
    account = runtime.app.open_account(plan="pro", credits=10)
    key = ("daily", "fingerprint-a")
    first = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}, key
    )
    assert runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}, key
    ).replayed

    real_is_live = IdempotencyRecord.is_live
    monkeypatch.setattr(
        IdempotencyRecord,
        "is_live",
        lambda record, now: real_is_live(record, now + timedelta(hours=24, seconds=1)),
    )
    later = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}, ("daily", "fingerprint-b")
    )
    assert not later.replayed and later.job_id != first.job_id
    assert len(charges(runtime, account.account_id)) == 2


@pytest.mark.parametrize(
    ("age", "replayed"),
    [(timedelta(hours=24) - timedelta(seconds=1), True), (timedelta(hours=24, seconds=1), False)],
    ids=["alive-just-before-24h", "dead-just-after-24h"],
)
def test_a_key_answers_with_its_first_response_until_24_hours_and_not_after(
    runtime, monkeypatch, age, replayed
):
    account = runtime.app.open_account(plan="pro", credits=10)
    key = ("boundary", "fingerprint")
    first = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}, key
    )

    real_is_live = IdempotencyRecord.is_live
    monkeypatch.setattr(
        IdempotencyRecord, "is_live", lambda record, now: real_is_live(record, now + age)
    )
    again = runtime.app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}, key
    )
    assert again.replayed is replayed
    assert (again.job_id == first.job_id) is replayed
    assert len(charges(runtime, account.account_id)) == (1 if replayed else 2)


async def test_template_renders_are_idempotent_too(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    created = runtime.app.create_template(account.account_id, "promo", TINY_TEMPLATE, False)
    body = {"template_id": template_ref(created.template.id), "variables": TINY_VARIABLES}
    headers = {"x-api-key": account.api_key, "Idempotency-Key": "campaign-7"}

    responses = await asyncio.gather(
        *(client.post("/api/render/template", json=body, headers=headers) for _ in range(4))
    )
    assert {response.status for response in responses} == {202}
    assert len({(await response.json())["job_id"] for response in responses}) == 1
    assert len(charges(runtime, account.account_id)) == 1

    other_variables = {**body, "variables": {**TINY_VARIABLES, "headline": "Bye"}}
    refused = await client.post("/api/render/template", json=other_variables, headers=headers)
    assert refused.status == 422
    assert (await refused.json())["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # The same key on the other submission route is another request, not a replay.
    plain = await client.post("/api/render", json=TINY_SCRIPT, headers=headers)
    assert plain.status == 422
    assert len(charges(runtime, account.account_id)) == 1
