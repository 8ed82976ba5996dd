"""Dry runs (`?dry_run=true`) price and check a render exactly as a submission would and
record nothing; `GET /api/account` tells a key's plan and limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.app import create_app
from phantomflow.api.openapi import openapi_document
from phantomflow.api.services import Services
from phantomflow.projections.runner import FollowerThreads
from tests.conftest import TINY_SCRIPT
from tests.test_api import CONTRACT_EXAMPLE
from tests.test_openapi import documented


@pytest.fixture
async def client(runtime) -> AsyncIterator[TestClient]:
    followers = FollowerThreads([runtime.jobs_runner, runtime.templates_runner])
    followers.start()
    async with TestClient(TestServer(create_app(Services(runtime)))) as test_client:
        yield test_client
    followers.stop()


def history_length(runtime) -> int:
    return runtime.app.recorder.max_notification_id() or 0


async def test_a_dry_run_prices_the_script_and_records_nothing(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=12)
    headers = {"x-api-key": account.api_key}
    before = history_length(runtime)
    response = await client.post("/api/render?dry_run=true", json=CONTRACT_EXAMPLE, headers=headers)
    assert await documented(response, "post", "/api/render", 200) == {
        "valid": True,
        "estimated_credits": 5,
        "credits_remaining": 7,
        "duration_seconds": 5.0,
    }
    assert history_length(runtime) == before
    assert runtime.app.get_account(account.account_id).balance == 12
    listed = await (await client.get("/api/jobs", headers=headers)).json()
    assert listed["total"] == 0


async def test_a_dry_run_answers_the_errors_a_submission_would(client, runtime):
    poor = runtime.app.open_account(plan="free", credits=4)
    headers = {"x-api-key": poor.api_key}
    refused = await client.post("/api/render?dry_run=true", json=CONTRACT_EXAMPLE, headers=headers)
    error = (await documented(refused, "post", "/api/render", 402))["error"]
    assert (error["code"], error["required"], error["balance"]) == ("INSUFFICIENT_CREDITS", 5, 4)

    broken = {**TINY_SCRIPT, "scenes": [{"duration": -1}]}
    invalid = await client.post("/api/render?dry_run=true", json=broken, headers=headers)
    error = (await documented(invalid, "post", "/api/render", 400))["error"]
    assert (error["code"], error["path"]) == ("SCHEMA_VALIDATION_ERROR", "scenes.0.duration")

    # The free plan runs two jobs at once: the third is refused, dry or not.
    for _ in range(2):
        assert (await client.post("/api/render", json=TINY_SCRIPT, headers=headers)).status == 202
    busy = await client.post("/api/render?dry_run=true", json=TINY_SCRIPT, headers=headers)
    assert (await busy.json())["error"]["code"] == "CONCURRENCY_LIMIT_EXCEEDED"

    unclear = await client.post("/api/render?dry_run=yes", json=TINY_SCRIPT, headers=headers)
    assert (await unclear.json())["error"]["path"] == "dry_run"


async def test_a_sandbox_dry_run_charges_nothing_like_a_sandbox_job(client, runtime):
    account = runtime.app.open_account(plan="free", credits=0)
    headers = {"x-api-key": account.test_api_key}
    response = await client.post("/api/render?dry_run=true", json=CONTRACT_EXAMPLE, headers=headers)
    quote = await response.json()
    assert (response.status, quote["estimated_credits"], quote["credits_remaining"]) == (200, 5, 0)


async def test_a_template_dry_run_substitutes_prices_and_records_nothing(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    script = {
        **TINY_SCRIPT,
        "scenes": [{"duration": "{{seconds}}", "elements": [{"type": "text", "text": "{{t}}"}]}],
    }
    created = await client.post(
        "/api/templates", json={"name": "promo", "script": script}, headers=headers
    )
    template_id = (await created.json())["id"]
    before = history_length(runtime)
    body = {"template_id": template_id, "variables": {"seconds": 8, "t": "Hi"}}
    response = await client.post("/api/render/template?dry_run=true", json=body, headers=headers)
    quote = await documented(response, "post", "/api/render/template", 200)
    # 8 s at 320×240 low: ceil(8 × 0.25 × 0.5) = 1 credit.
    assert (quote["estimated_credits"], quote["duration_seconds"]) == (1, 8.0)
    assert history_length(runtime) == before

    missing = {"template_id": template_id, "variables": {"seconds": 8}}
    refused = await client.post("/api/render/template?dry_run=true", json=missing, headers=headers)
    assert (await refused.json())["error"]["missing"] == ["t"]


async def test_the_account_route_tells_the_plan_its_limits_and_the_calling_key(client, runtime):
    account = runtime.app.open_account(plan="starter", credits=40)
    headers = {"x-api-key": account.api_key}
    await client.post("/api/render", json=TINY_SCRIPT, headers=headers)
    response = await client.get("/api/account", headers=headers)
    body = await documented(response, "get", "/api/account", 200)
    assert body["account_id"] == str(account.account_id)
    assert (body["plan"], body["limits"]) == (
        "starter",
        {"requests_per_minute": 60, "concurrent_jobs": 5},
    )
    assert (body["active_jobs"], body["credits"]) == (1, 39)
    assert body["key"] == {"prefix": body["key"]["prefix"], "mode": "live"}
    assert account.api_key.startswith(body["key"]["prefix"])


def test_the_dry_run_parameter_is_in_the_openapi_document():
    for path in ("/api/render", "/api/render/template"):
        operation = openapi_document()["paths"][path]["post"]
        assert "dry_run" in [p["name"] for p in operation["parameters"]]
        assert "200" in operation["responses"]
