"""The HTTP contract: response shapes, authentication, and every error this API can meet."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.projections.runner import FollowerThreads
from tests.conftest import TINY_SCRIPT

CONTRACT_EXAMPLE = {
    "width": 1920,
    "height": 1080,
    "quality": "high",
    "scenes": [
        {
            "duration": 5,
            "background": "#000000",
            "elements": [
                {
                    "type": "text",
                    "text": "Hello World",
                    "font_size": 48,
                    "color": "#FFFFFF",
                    "position": "center",
                }
            ],
        }
    ],
}


@pytest.fixture
async def client(runtime) -> AsyncIterator[TestClient]:
    followers = FollowerThreads([runtime.jobs_runner])
    followers.start()
    async with TestClient(TestServer(create_app(Services(runtime)))) as test_client:
        yield test_client
    followers.stop()


@pytest.fixture
def account(runtime):
    return runtime.app.open_account(plan="pro", credits=1000)


def key(account) -> dict[str, str]:
    return {"x-api-key": account.api_key}


async def error_of(response, status: int) -> dict:
    assert response.status == status
    body = await response.json()
    assert set(body) == {"error"}
    return body["error"]


async def test_contract_example_is_accepted_with_its_documented_response(client, account):
    response = await client.post("/api/render", json=CONTRACT_EXAMPLE, headers=key(account))
    assert response.status == 202
    body = await response.json()
    assert set(body) == {"job_id", "status", "estimated_credits", "credits_remaining"}
    assert (body["status"], body["estimated_credits"], body["credits_remaining"]) == (
        "queued",
        5,
        995,
    )


async def test_a_job_is_readable_straight_after_submission(client, account):
    submitted = await (
        await client.post("/api/render", json=TINY_SCRIPT, headers=key(account))
    ).json()
    response = await client.get(f"/api/jobs/{submitted['job_id']}", headers=key(account))
    assert response.status == 200
    job = await response.json()
    assert job["job_id"] == submitted["job_id"]
    assert (job["status"], job["progress"], job["estimated_credits"]) == ("queued", 0, 1)
    for field in ("stage", "output_uri", "duration_seconds", "credits_used", "completed_at"):
        assert job[field] is None
    assert job["created_at"].endswith("Z")


async def test_a_submission_parses_its_script_once(client, account, runtime, monkeypatch):
    from tests.test_worker import count_script_parses

    parsed = count_script_parses(monkeypatch)
    response = await client.post("/api/render", json=TINY_SCRIPT, headers=key(account))
    assert response.status == 202
    job = runtime.app.get_job(uuid.UUID((await response.json())["job_id"]))
    assert len(parsed) == 1
    # The process that took the job prices its cancellation without parsing it again.
    runtime.app.start_job(job, "worker", lease_seconds=60)
    runtime.app.report_progress(runtime.app.get_job(job.id), 0.5, "rendering_scene_1")
    assert runtime.app.cancel_job(job.id).credits_used > 0
    assert len(parsed) == 1


async def test_invalid_json_is_reported_as_such(client, account):
    response = await client.post(
        "/api/render",
        data=b'{"scenes": [',
        headers={**key(account), "content-type": "application/json"},
    )
    error = await error_of(response, 400)
    assert error["code"] == "INVALID_JSON"


def scene(s):
    return s["scenes"][0]


def element(s):
    return s["scenes"][0]["elements"][0]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda s: scene(s).update(duration="5"), "scenes.0.duration", "Expected number, received string"),
        (lambda s: s.pop("scenes"), "scenes", "Required field is missing"),
        (lambda s: s.update(scenes=[]), "scenes", "Must contain 1 to 50 scenes"),
        (lambda s: s.update(width=321), "width", "Must be an even number"),
        (lambda s: s.update(width=True), "width", "Expected integer, received boolean"),
        (lambda s: s.update(quality="ultra"), "quality", "Expected one of: low, medium, high"),
        (lambda s: scene(s).update(background="red"), "scenes.0.background", "Expected a hex colour"),
        (lambda s: element(s).update(color=7), "scenes.0.elements.0.color", "Expected string, received number"),
        (lambda s: element(s).update(type="hologram"), "scenes.0.elements.0.type", "Unsupported element type"),
        (lambda s: element(s).update(position="middle"), "scenes.0.elements.0.position", "Expected one of"),
        (lambda s: scene(s).update(durration=5), "scenes.0.durration", "Unknown field"),
        (lambda s: s.update(scenes=[{"duration": 300}] * 2 + [{"duration": 1}]), "scenes", "over the limit"),
        (lambda s: s.update(webhook_uri="ftp://example.test/x"), "webhook_uri", "Expected an absolute http(s) URL"),
    ],
)  # fmt: skip
async def test_schema_errors_name_the_failing_path_and_say_what_is_wrong(
    client, account, change, path, message
):
    script = {
        **TINY_SCRIPT,
        "scenes": [
            dict(s, elements=[dict(e) for e in s["elements"]]) for s in TINY_SCRIPT["scenes"]
        ],
    }
    change(script)
    response = await client.post("/api/render", json=script, headers=key(account))
    error = await error_of(response, 400)
    assert error["code"] == "SCHEMA_VALIDATION_ERROR"
    assert error["path"] == path
    assert message in error["message"]


async def test_a_body_that_is_not_an_object_is_a_schema_error(client, account):
    error = await error_of(await client.post("/api/render", json=[1], headers=key(account)), 400)
    assert (error["code"], error["message"]) == (
        "SCHEMA_VALIDATION_ERROR",
        "Expected object, received array",
    )


@pytest.mark.parametrize(
    "headers", [{}, {"x-api-key": "ve_live_wrong"}, {"x-api-key": "Bearer abc"}]
)
async def test_missing_or_invalid_keys_are_unauthorized(client, headers):
    for method, url in (("POST", "/api/render"), ("GET", "/api/jobs"), ("GET", "/api/jobs/x")):
        response = await client.request(method, url, json=TINY_SCRIPT, headers=headers)
        error = await error_of(response, 401)
        assert error["code"] == "UNAUTHORIZED"


async def test_insufficient_credits_says_what_was_needed_and_what_there_is(client, runtime):
    poor = runtime.app.open_account(plan="free", credits=4)
    response = await client.post("/api/render", json=CONTRACT_EXAMPLE, headers=key(poor))
    error = await error_of(response, 402)
    assert (error["code"], error["required"], error["balance"]) == ("INSUFFICIENT_CREDITS", 5, 4)


async def test_another_accounts_job_is_not_found(client, runtime, account):
    other = runtime.app.open_account(plan="pro", credits=100)
    submitted = await (
        await client.post("/api/render", json=TINY_SCRIPT, headers=key(other))
    ).json()
    for job_id in (submitted["job_id"], "00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        error = await error_of(await client.get(f"/api/jobs/{job_id}", headers=key(account)), 404)
        assert error["code"] == "NOT_FOUND"


async def test_job_list_pages_newest_first_and_filters_by_status(client, runtime, account):
    ids = []
    for _ in range(5):
        response = await client.post("/api/render", json=TINY_SCRIPT, headers=key(account))
        ids.append((await response.json())["job_id"])
    failed_id = ids[0]
    runtime.app.fail_job(uuid.UUID(failed_id), "RENDER_FAILED", "test")
    runtime.jobs_runner.wait_for(runtime.app.recorder.max_notification_id(), 5)

    page = await (await client.get("/api/jobs?page=1&limit=2", headers=key(account))).json()
    assert (page["total"], page["page"], page["limit"]) == (5, 1, 2)
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1][:2]
    last = await (await client.get("/api/jobs?page=3&limit=2", headers=key(account))).json()
    assert [j["job_id"] for j in last["jobs"]] == [ids[0]]

    failed = await (await client.get("/api/jobs?status=failed", headers=key(account))).json()
    assert [j["job_id"] for j in failed["jobs"]] == [failed_id]
    assert failed["jobs"][0]["error"] == {"code": "RENDER_FAILED", "message": "test"}
    queued = await (await client.get("/api/jobs?status=queued", headers=key(account))).json()
    assert queued["total"] == 4


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "page=0", "limit=ten", "status=done"])
async def test_bad_list_parameters_are_refused_clearly(client, account, query):
    error = await error_of(await client.get(f"/api/jobs?{query}", headers=key(account)), 400)
    assert error["code"] == "INVALID_REQUEST"
    assert error["path"] == query.split("=")[0]


async def test_unexpected_errors_answer_500_without_internals_and_log_the_request_id(
    client, runtime, account, monkeypatch, caplog
):
    def broken(*args):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(runtime.jobs, "page", broken)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/api/jobs", headers=key(account))
    error = await error_of(response, 500)
    assert error["code"] == "INTERNAL_ERROR"
    assert "secret" not in error["message"] and "Traceback" not in error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]
    assert error["request_id"] in caplog.text and "secret internals" in caplog.text


async def test_unknown_routes_answer_in_the_error_shape(client, account):
    error = await error_of(await client.get("/api/nothing-here", headers=key(account)), 404)
    assert error["code"] == "NOT_FOUND"


async def test_a_job_is_readable_before_the_read_model_has_seen_it(runtime, account):
    # No followers run here: the read model never sees the job.
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        submitted = await (
            await client.post("/api/render", json=TINY_SCRIPT, headers=key(account))
        ).json()
        response = await client.get(f"/api/jobs/{submitted['job_id']}", headers=key(account))
        assert response.status == 200
        assert (await response.json())["status"] == "queued"
        other = runtime.app.open_account(plan="pro", credits=0)
        hidden = await client.get(f"/api/jobs/{submitted['job_id']}", headers=key(other))
        assert hidden.status == 404
