"""Metadata that travels: the client's object, kept with its job, returned on every read,
in the final live events, and found again by one of its keys."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import Runtime
from phantomflow.api.services import Services
from phantomflow.domain.metadata import MAX_BYTES
from phantomflow.projections.runner import FollowerThreads
from tests.conftest import TINY_SCRIPT
from tests.test_openapi import documented

ORDER = {"order": "A-1042", "customer": 42, "vip": True, "lines": [{"sku": "x"}], "note": None}


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[TestClient]:
    followers = FollowerThreads([runtime.jobs_runner, runtime.templates_runner])
    followers.start()
    async with TestClient(TestServer(create_app(Services(runtime)))) as test_client:
        yield test_client
    followers.stop()


def caught_up(runtime: Runtime) -> None:
    head = runtime.app.recorder.max_notification_id() or 0
    assert runtime.jobs_runner.wait_for(head, timeout=10)


async def submit(client: TestClient, key: str, metadata: Any, **extra: Any) -> Any:
    return await client.post(
        "/api/render",
        json={**TINY_SCRIPT, "metadata": metadata, **extra},
        headers={"x-api-key": key},
    )


async def test_metadata_is_kept_with_the_job_and_returned_on_every_read(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    job_id = (await (await submit(client, account.api_key, ORDER)).json())["job_id"]

    one = await client.get(f"/api/jobs/{job_id}", headers=headers)
    assert (await documented(one, "get", "/api/jobs/{job_id}", 200))["metadata"] == ORDER
    caught_up(runtime)
    listed = await documented(
        await client.get("/api/jobs", headers=headers), "get", "/api/jobs", 200
    )
    assert listed["jobs"][0]["metadata"] == ORDER
    # Without metadata, an empty object: always there.
    plain = await (await client.post("/api/render", json=TINY_SCRIPT, headers=headers)).json()
    assert (await (await client.get(f"/api/jobs/{plain['job_id']}", headers=headers)).json())[
        "metadata"
    ] == {}
    assert runtime.app.get_job(UUID(job_id)).metadata == ORDER


@pytest.mark.parametrize(
    ("metadata", "path", "message"),
    [
        (["a"], "metadata", "Expected object, received array"),
        ("x", "metadata", "Expected object, received string"),
        ({"has space": 1}, "metadata.has space", "Keys are 1 to 64"),
        ({"k" * 65: 1}, "metadata." + "k" * 65, "Keys are 1 to 64"),
        ({"ref": "x" * 501}, "metadata.ref", "Longer than 500 characters"),
        ({f"k{n}": n for n in range(51)}, "metadata", "At most 50 keys"),
        ({f"k{n}": ["y" * 100] for n in range(40)}, "metadata", f"Larger than {MAX_BYTES} bytes"),
    ],
)
async def test_metadata_outside_its_limits_is_refused_where_it_breaks_them(
    client, runtime, metadata, path, message
):
    account = runtime.app.open_account(plan="pro", credits=10)
    refused = await submit(client, account.api_key, metadata)
    error = (await documented(refused, "post", "/api/render", 400))["error"]
    assert (error["code"], error["path"]) == ("SCHEMA_VALIDATION_ERROR", path)
    assert message in error["message"]


def sized(size: int) -> dict[str, str]:
    """Metadata of exactly `size` bytes as compact JSON, in strings of at most 500."""
    found: dict[str, str] = {}
    number = 0
    while len(json.dumps(found, separators=(",", ":"))) < size:
        key = f"k{number:02d}"
        number += 1
        found[key] = ""
        room = size - len(json.dumps(found, separators=(",", ":")))
        found[key] = "x" * min(500, max(room, 0))
    assert len(json.dumps(found, separators=(",", ":"))) == size
    return found


async def test_metadata_of_exactly_the_limits_is_accepted(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    assert (await submit(client, account.api_key, sized(MAX_BYTES))).status == 202
    assert (await submit(client, account.api_key, sized(MAX_BYTES + 1))).status == 400
    fifty = {f"k{n}": n for n in range(50)}
    assert (await submit(client, account.api_key, fifty)).status == 202
    # Below the top level, strings may be longer than 500 characters.
    assert (await submit(client, account.api_key, {"a": ["é" * 1000]})).status == 202


async def test_jobs_are_found_by_one_top_level_key_of_their_metadata(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    other = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    wanted = (await (await submit(client, account.api_key, ORDER)).json())["job_id"]
    as_text = {"order": "B-7", "customer": "42", "vip": "true"}
    text_job = (await (await submit(client, account.api_key, as_text)).json())["job_id"]
    await submit(client, account.api_key, {"order": "A-1043"})
    await submit(client, other.api_key, ORDER)
    await submit(client, account.test_api_key, ORDER)
    caught_up(runtime)

    async def found(query: str) -> list[str]:
        response = await client.get(f"/api/jobs?{query}", headers=headers)
        body = await documented(response, "get", "/api/jobs", 200)
        assert body["total"] == len(body["jobs"])
        return [job["job_id"] for job in body["jobs"]]

    assert await found("metadata.order=A-1042") == [wanted]
    # A number or boolean matches as JSON writes it, and so does the same text.
    assert await found("metadata.customer=42") == [text_job, wanted]
    assert await found("metadata.vip=true&status=queued") == [text_job, wanted]
    assert await found("metadata.order=a-1042") == []
    # Objects, arrays and null are returned, but not searched.
    assert await found("metadata.lines=x") == [] and await found("metadata.note=null") == []

    for query, path in (
        ("metadata.order=A-1042&metadata.vip=true", "metadata.vip"),
        ("metadata.bad%20key=1", "metadata.bad key"),
    ):
        refused = await client.get(f"/api/jobs?{query}", headers=headers)
        error = (await documented(refused, "get", "/api/jobs", 400))["error"]
        assert (error["code"], error["path"]) == ("INVALID_REQUEST", path)


async def test_a_template_fills_in_its_metadata_and_a_request_replaces_it(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    script = {**TINY_SCRIPT, "metadata": {"campaign": "{{campaign}}", "fixed": 1}}
    created = await client.post(
        "/api/templates", json={"name": "promo", "script": script}, headers=headers
    )
    template_id = (await created.json())["id"]

    async def job_metadata(body: dict) -> dict:
        rendered = await client.post("/api/render/template", json=body, headers=headers)
        assert rendered.status == 202, await rendered.json()
        return runtime.app.get_job(UUID((await rendered.json())["job_id"])).metadata

    variables = {"campaign": "spring"}
    assert await job_metadata({"template_id": template_id, "variables": variables}) == {
        "campaign": "spring",
        "fixed": 1,
    }
    own = {"template_id": template_id, "variables": variables, "metadata": {"mine": "yes"}}
    assert await job_metadata(own) == {"mine": "yes"}
    bad = {"template_id": template_id, "variables": variables, "metadata": {"a b": 1}}
    refused = await client.post("/api/render/template", json=bad, headers=headers)
    assert (await refused.json())["error"]["path"] == "metadata.a b"


async def test_a_preview_keeps_its_metadata_for_its_render_unless_the_render_brings_its_own(
    client, runtime
):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    made = await client.post(
        "/api/previews", json={**TINY_SCRIPT, "metadata": {"draft": 3}}, headers=headers
    )
    preview = await made.json()
    assert preview["metadata"] == {"draft": 3}
    route = f"/api/previews/{preview['preview_id']}/render"
    kept = await (await client.post(route, headers=headers)).json()
    replaced = await (
        await client.post(route, json={"metadata": {"final": True}}, headers=headers)
    ).json()
    assert runtime.app.get_job(UUID(kept["job_id"])).metadata == {"draft": 3}
    assert runtime.app.get_job(UUID(replaced["job_id"])).metadata == {"final": True}


async def read_stream(response: Any, until: int = 1) -> list[tuple[str, dict]]:
    """(event name, data) until `until` final events have come."""
    events: list[tuple[str, dict]] = []
    name = ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
            if sum(1 for n, _ in events if n in ("complete", "error")) >= until:
                break
    return events


async def test_the_final_live_events_carry_the_jobs_metadata(client, runtime):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    app = runtime.app
    done = UUID((await (await submit(client, account.api_key, {"order": 1})).json())["job_id"])
    failed = UUID((await (await submit(client, account.api_key, {"order": 2})).json())["job_id"])
    for job_id in (done, failed):
        app.start_job(app.get_job(job_id), "worker", lease_seconds=60)
    app.complete_job(done, f"{done}.mp4", 1.0, 1000)
    app.fail_job(failed, "RENDER_FAILED", "the font is missing")

    complete = await read_stream(await client.get(f"/api/jobs/{done}/progress", headers=headers))
    assert complete[-1][0] == "complete" and complete[-1][1]["metadata"] == {"order": 1}
    error = await read_stream(await client.get(f"/api/jobs/{failed}/progress", headers=headers))
    assert error[-1] == (
        "error",
        {"code": "RENDER_FAILED", "message": "the font is missing", "metadata": {"order": 2}},
    )
    # The account's stream, from the start: both endings, each with its own job's.
    account_stream = await client.get("/api/events", headers={**headers, "Last-Event-ID": "0"})
    endings = [e for e in await read_stream(account_stream, until=2) if e[0] != "progress"]
    assert [(name, data["jobId"], data["metadata"]) for name, data in endings] == [
        ("complete", str(done), {"order": 1}),
        ("error", str(failed), {"order": 2}),
    ]
