"""The published documents: the render JSON Schema and the OpenAPI 3.1 description."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_openapi

from phantomflow.api.app import create_app
from phantomflow.api.openapi import OPERATIONS, openapi_document, render_json_schema
from phantomflow.api.services import Services
from phantomflow.domain.jobs import WebhookAttempt
from phantomflow.domain.script import MovieScript
from phantomflow.projections.runner import FollowerThreads
from tests.conftest import TINY_SCRIPT


@pytest.fixture
async def client(sqlite_runtime) -> AsyncIterator[TestClient]:
    # The read models run, as in production: lists read them, and writes wait for them.
    followers = FollowerThreads([sqlite_runtime.jobs_runner, sqlite_runtime.templates_runner])
    followers.start()
    async with TestClient(TestServer(create_app(Services(sqlite_runtime)))) as test_client:
        yield test_client
    followers.stop()


async def test_the_render_schema_is_served_without_a_key_and_is_the_generated_one(client):
    response = await client.get("/api/render/schema")
    assert response.status == 200
    assert response.content_type == "application/schema+json"
    assert await response.json() == render_json_schema()
    assert Draft202012Validator(await response.json()).is_valid(TINY_SCRIPT)


async def test_the_openapi_document_is_valid_openapi_3_1_and_served_without_a_key(client):
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate_openapi(document)  # raises on any fault
    assert document["openapi"] == "3.1.0"
    # The request body is the same schema the render route validates with.
    body = document["paths"]["/api/render"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/RenderRequest"}
    request = json.dumps(document["components"]["schemas"]["RenderRequest"]["properties"])
    published = json.dumps(render_json_schema()["properties"])
    assert request.replace("#/components/schemas/", "#/$defs/") == published


async def test_every_route_the_app_serves_is_in_the_openapi_document(client):
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in client.server.app.router.routes()
        if route.method not in ("HEAD", "*") and route.resource is not None
    }
    missing = served - set(OPERATIONS)
    assert not missing, (
        f"describe these routes in api/openapi/operations.py OPERATIONS: {sorted(missing)}"
    )
    stale = set(OPERATIONS) - served
    assert not stale, f"OPERATIONS describes routes the app does not serve: {sorted(stale)}"
    paths = openapi_document()["paths"]
    assert all(method in paths[path] for method, path in OPERATIONS)


# --- the API's real answers, checked against the document ---------------------------------


def conforms(body: Any, schema: dict[str, Any]) -> None:
    """`body` is valid against `schema`, a schema of the document (usually a $ref)."""
    document = openapi_document()
    Draft202012Validator({**schema, "components": document["components"]}).validate(body)


async def documented(response: ClientResponse, method: str, route: str, status: int) -> Any:
    """The JSON body of `response`, after checking that it has the `status` the test
    expects, that the document says `method route` can answer it, with a body of that
    status's schema, and, for an error, that the status's description names its code."""
    body = await response.json()
    assert response.status == status, body
    answers = openapi_document()["paths"][route][method]["responses"]
    assert str(status) in answers, f"{method} {route} answered an undocumented {status}"
    conforms(body, answers[str(status)]["content"]["application/json"]["schema"])
    if status >= 400:
        assert f"{body['error']['code']}:" in answers[str(status)]["description"], body
    return body


async def test_what_the_api_answers_matches_the_openapi_response_schemas(client, sqlite_runtime):
    account = sqlite_runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    submitted = await client.post("/api/render", json=TINY_SCRIPT, headers=headers)
    job_id = (await documented(submitted, "post", "/api/render", 202))["job_id"]
    job = await client.get(f"/api/jobs/{job_id}", headers=headers)
    await documented(job, "get", "/api/jobs/{job_id}", 200)
    refused = await client.post("/api/render", json={"scenes": []}, headers=headers)
    await documented(refused, "post", "/api/render", 400)
    cancel = "/api/jobs/{job_id}/cancel"
    cancelled = await client.post(f"/api/jobs/{job_id}/cancel", headers=headers)
    assert (await documented(cancelled, "post", cancel, 200))["status"] == "cancelled"
    again = await client.post(f"/api/jobs/{job_id}/cancel", headers=headers)
    assert (await documented(again, "post", cancel, 409))["error"]["code"] == "JOB_ALREADY_FINISHED"
    job = await client.get(f"/api/jobs/{job_id}", headers=headers)
    assert (await documented(job, "get", "/api/jobs/{job_id}", 200))["status"] == "cancelled"
    listed = await client.get("/api/jobs", params={"status": "cancelled"}, headers=headers)
    await documented(listed, "get", "/api/jobs", 200)


TEMPLATE_SCRIPT = {
    **TINY_SCRIPT,
    "scenes": [
        {
            "duration": "{{duration}}",
            "background": "#FF0000",
            "elements": [{"type": "text", "text": "{{headline}}", "font_size": 24}],
        }
    ],
}


async def test_the_template_routes_answer_as_documented(client, sqlite_runtime):
    owner = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=10).api_key}
    item = "/api/templates/{template_id}"
    created = await client.post(
        "/api/templates", json={"name": "Promo", "script": TEMPLATE_SCRIPT}, headers=owner
    )
    ref = (await documented(created, "post", "/api/templates", 201))["id"]
    url = f"/api/templates/{ref}"
    changed = await client.patch(url, json={"name": "Promo 2", "is_public": True}, headers=owner)
    assert (await documented(changed, "patch", item, 200))["version"] == 2
    replaced = await client.put(url, json={"name": "Promo 3"}, headers=owner)
    await documented(replaced, "put", item, 200)
    refused = await client.put(url, json={"name": " "}, headers=owner)
    assert (await documented(refused, "put", item, 400))["error"]["code"] == "VALIDATION_ERROR"
    listed = await client.get("/api/templates", headers=owner)
    templates = (await documented(listed, "get", "/api/templates", 200))["templates"]
    assert [template["id"] for template in templates] == [ref]
    detail = await documented(await client.get(url, headers=owner), "get", item, 200)
    assert detail["variables"] == ["duration", "headline"]
    first = await client.get(url, params={"version": "1"}, headers=owner)
    assert (await documented(first, "get", item, 200))["name"] == "Promo"
    versions = await client.get(f"{url}/versions", headers=owner)
    await documented(versions, "get", item + "/versions", 200)

    render = "/api/render/template"
    variables = {"duration": 1, "headline": "Hi"}
    body = {"template_id": ref, "variables": variables, "template_version": 2}
    await documented(await client.post(render, json=body, headers=owner), "post", render, 202)
    for wrong, expected, code in (
        ({"template_id": ref}, 400, "VALIDATION_ERROR"),  # missing variables
        ({**body, "template_version": 9}, 404, "TEMPLATE_NOT_FOUND"),
        ({**body, "sound": "on"}, 400, "INVALID_REQUEST"),
    ):
        refused = await client.post(render, json=wrong, headers=owner)
        assert (await documented(refused, "post", render, expected))["error"]["code"] == code

    deleted = await client.delete(url, headers=owner)
    assert await documented(deleted, "delete", item, 200) == {"deleted": True}
    gone = await client.get(url, headers=owner)
    assert (await documented(gone, "get", item, 404))["error"]["code"] == "NOT_FOUND"


async def test_the_key_and_webhook_routes_answer_as_documented(client, sqlite_runtime):
    app = sqlite_runtime.app
    account = app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    created = await client.post("/api/keys", json={"mode": "test"}, headers=headers)
    key_id = (await documented(created, "post", "/api/keys", 201))["id"]
    bad_mode = await client.post("/api/keys", json={"mode": "prod"}, headers=headers)
    assert (await documented(bad_mode, "post", "/api/keys", 400))["error"]["path"] == "mode"
    await documented(await client.get("/api/keys", headers=headers), "get", "/api/keys", 200)
    revoke = "/api/keys/{key_id}"
    revoked = await client.delete(f"/api/keys/{key_id}", headers=headers)
    assert await documented(revoked, "delete", revoke, 200) == {"id": key_id, "revoked": True}
    again = await client.delete(f"/api/keys/{key_id}", headers=headers)
    assert (await documented(again, "delete", revoke, 404))["error"]["code"] == "NOT_FOUND"

    secret = await client.get("/api/webhooks/secret", headers=headers)
    await documented(secret, "get", "/api/webhooks/secret", 200)
    rotated = await client.post("/api/webhooks/secret/rotate", headers=headers)
    await documented(rotated, "post", "/api/webhooks/secret/rotate", 200)

    job_id = ended_job_with_a_failed_webhook(app, account.account_id)
    log = await client.get(f"/api/jobs/{job_id}/webhooks", headers=headers)
    deliveries = await documented(log, "get", "/api/jobs/{job_id}/webhooks", 200)
    assert deliveries["status"] == "retrying"
    redeliver = "/api/jobs/{job_id}/webhooks/redeliver"
    queued = await client.post(f"/api/jobs/{job_id}/webhooks/redeliver", headers=headers)
    assert (await documented(queued, "post", redeliver, 202))["redelivery"] == 1
    running = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    nothing = await client.post(f"/api/jobs/{running}/webhooks/redeliver", headers=headers)
    # Nothing to redeliver yet: the job has not ended.
    conflict = await documented(nothing, "post", redeliver, 409)
    assert conflict["error"]["code"] == "NOTHING_TO_REDELIVER"
    assert "the job is queued" in conflict["error"]["message"]
    silent = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    app.cancel_job(silent)
    # Nor ever, for a job without a webhook_uri.
    never = await client.post(f"/api/jobs/{silent}/webhooks/redeliver", headers=headers)
    conflict = await documented(never, "post", redeliver, 409)
    assert conflict["error"]["code"] == "NOTHING_TO_REDELIVER"
    assert "no webhook_uri" in conflict["error"]["message"]


def ended_job_with_a_failed_webhook(app, account_id: UUID) -> UUID:
    """A completed job whose webhook's first delivery failed and will be retried."""
    job_id = app.submit_render(
        account_id, MovieScript.from_dict(TINY_SCRIPT), "https://example.test/hook", {}
    ).job_id
    app.start_job(app.get_job(job_id), "w", lease_seconds=60)
    app.report_progress(app.get_job(job_id), 0.08, "downloading", {"hits": 1, "misses": 0})
    app.report_progress(app.get_job(job_id), 0.5, "rendering_scene_1")
    app.complete_job(job_id, f"{job_id}.mp4", 1.0, 1234)
    app.record_webhook_attempt(
        job_id,
        WebhookAttempt(
            trigger="automatic",
            sequence=1,
            url="https://example.test/hook",
            status_code=500,
            error=None,
            duration_ms=12,
            next_attempt_at=datetime.now(UTC) + timedelta(minutes=1),
            response_excerpt="try later",
        ),
    )
    return job_id


Event = tuple[str, str, dict[str, Any]]  # (id, event name, data)


async def read_stream(
    client: TestClient, path: str, headers: dict[str, str], count: int
) -> list[Event]:
    """The first `count` events of an event stream (streams that stay open are left)."""
    response = await client.get(path, headers=headers)
    assert response.status == 200 and response.content_type == "text/event-stream"
    events: list[Event] = []
    async with asyncio.timeout(10):
        while len(events) < count:
            frame = (await response.content.readuntil(b"\n\n")).decode()
            fields = dict(
                line.split(": ", 1)
                for line in frame.splitlines()
                if line and not line.startswith(":")
            )
            if fields:  # not a keep-alive comment
                events.append((fields["id"], fields["event"], json.loads(fields["data"])))
    response.close()
    return events


def check_events(events: list[Event], route: str) -> None:
    """Each event, as an SSE parser reads it, has the schema of the route's stream (so its
    name is one the route documents), and its data the schema that name's frame gives."""
    document = openapi_document()
    stream = document["paths"][route]["get"]["responses"]["200"]["content"]
    schema = stream["text/event-stream"]["schema"]
    frames = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for position, name, data in events:
        conforms({"id": position, "event": name, "data": json.dumps(data)}, schema)
        frame = frames["discriminator"]["mapping"][name].rsplit("/", 1)[1]
        frame_schema = document["components"]["schemas"][frame]
        conforms(data, frame_schema["properties"]["data"]["contentSchema"])


def two_ended_jobs(app) -> tuple[Any, UUID, UUID]:
    """An account with a completed job (whose webhook failed once) and a cancelled one."""
    account = app.open_account(plan="pro", credits=10)
    completed = ended_job_with_a_failed_webhook(app, account.account_id)
    cancelled = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    app.cancel_job(cancelled)
    return account, completed, cancelled


async def test_the_event_streams_send_the_documented_events(client, sqlite_runtime):
    account, completed, cancelled = two_ended_jobs(sqlite_runtime.app)
    headers = {"x-api-key": account.api_key}
    progress = "/api/jobs/{job_id}/progress"

    whole = await read_stream(
        client, f"/api/jobs/{completed}/progress", {**headers, "Last-Event-ID": "0"}, 5
    )
    assert [name for _, name, _ in whole] == ["progress"] * 4 + ["complete"]
    assert whole[2][2]["mediaCache"] == {"hits": 1, "misses": 0}
    check_events(whole, progress)
    ended = await read_stream(client, f"/api/jobs/{cancelled}/progress", headers, 1)
    assert [(name, data["code"]) for _, name, data in ended] == [("error", "CANCELLED")]
    check_events(ended, progress)
    after_the_end = await client.get(
        f"/api/jobs/{completed}/progress", headers={**headers, "Last-Event-ID": whole[-1][0]}
    )
    assert after_the_end.status == 204
    assert "204" in openapi_document()["paths"][progress]["get"]["responses"]

    # The account's stream, from the start: both jobs, and the webhook attempt.
    from_the_start = {"Last-Event-ID": "0"}
    everything = await read_stream(
        client, f"/api/events?apiKey={account.api_key}", from_the_start, 8
    )
    assert sorted({name for _, name, _ in everything}) == [
        "complete",
        "error",
        "progress",
        "webhook",
    ]
    check_events(everything, "/api/events")


# --- where the document and the server used to disagree (issue 11, defect 8) -----------


def parameter_schema(route: str, name: str, method: str = "get") -> dict[str, Any]:
    for parameter in openapi_document()["paths"][route][method]["parameters"]:
        if parameter["name"] == name:
            return parameter["schema"]
    raise AssertionError(f"{method} {route} has no parameter {name}")


def allowed(value: Any, schema: dict[str, Any]) -> bool:
    """Whether the document allows `value` for a parameter of `schema`, formats included."""
    return Draft202012Validator(schema, format_checker=FormatChecker()).is_valid(value)


@pytest.mark.parametrize("route", ["/api/jobs", "/api/credits/ledger"])
async def test_the_last_page_the_server_serves_is_the_documented_maximum(
    client, sqlite_runtime, route
):
    headers = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=0).api_key}
    page = parameter_schema(route, "page")
    last = page["maximum"]
    served = await client.get(route, params={"page": str(last)}, headers=headers)
    assert (await documented(served, "get", route, 200))["page"] == last
    beyond = await client.get(route, params={"page": str(last + 1)}, headers=headers)
    assert not allowed(last + 1, page)
    assert (await documented(beyond, "get", route, 400))["error"]["path"] == "page"


@pytest.mark.parametrize(
    ("route", "name"),
    [
        ("/api/credits/balance", "at"),
        ("/api/credits/ledger", "from"),
        ("/api/credits/ledger", "to"),
    ],
)
async def test_an_empty_instant_is_refused_by_the_document_and_the_server(
    client, sqlite_runtime, route, name
):
    headers = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=0).api_key}
    schema = parameter_schema(route, name)
    assert not allowed("", schema)
    refused = await client.get(route, params={name: ""}, headers=headers)
    assert (await documented(refused, "get", route, 400))["error"]["path"] == name


@pytest.mark.parametrize(
    "instant",
    [
        "2026-01-15T10:30:00Z",
        "2026-01-15T10:30:00.5+02:00",
        # Before the year 1 and after 9999 once moved to UTC: valid RFC 3339 all the same.
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
    ],
)
async def test_every_documented_instant_is_accepted(client, sqlite_runtime, instant):
    account = sqlite_runtime.app.open_account(plan="pro", credits=7)
    headers = {"x-api-key": account.api_key}
    assert allowed(instant, parameter_schema("/api/credits/balance", "at"))
    balance = await client.get("/api/credits/balance", params={"at": instant}, headers=headers)
    # The account was opened (with its 7 credits) after every instant but the last.
    expected = 7 if instant.startswith("9999") else 0
    assert (await documented(balance, "get", "/api/credits/balance", 200))["credits"] == expected
    ledger = await client.get(
        "/api/credits/ledger", params={"from": instant, "to": instant}, headers=headers
    )
    assert (await documented(ledger, "get", "/api/credits/ledger", 200))["entries"] == []


async def test_the_server_takes_exactly_the_last_event_ids_the_document_allows(
    client, sqlite_runtime
):
    app = sqlite_runtime.app
    account = app.open_account(plan="pro", credits=10)
    job_id = app.submit_render(
        account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
    ).job_id
    app.cancel_job(job_id)
    schema = next(
        parameter["schema"]
        for parameter in openapi_document()["paths"]["/api/events"]["get"]["parameters"]
        if parameter["name"] == "Last-Event-ID"
    )
    route = "/api/jobs/{job_id}/progress"
    # Empty is no id at all, as in the SSE standard: the ended job's final event.
    for value in ("", "0", "9" * 18):
        assert allowed(value, schema), value
        response = await client.get(
            f"/api/jobs/{job_id}/progress",
            headers={"x-api-key": account.api_key, "Last-Event-ID": value},
        )
        assert response.status == (204 if value.startswith("9") else 200), value
        response.close()
    for value in ("-1", "+5", "1_0", "٣", "1.0", "1" * 19, "abc"):
        assert not allowed(value, schema), value
        response = await client.get(
            f"/api/jobs/{job_id}/progress",
            headers={"x-api-key": account.api_key, "Last-Event-ID": value},
        )
        body = await documented(response, "get", route, 400)
        assert body["error"]["path"] == "Last-Event-ID", value


PLACEHOLDER_SCENE = {
    "duration": "{{seconds}}",
    "background": "{{colour}}",
    "elements": [
        {"type": "text", "text": "Hi {{name}}", "font_size": "{{size}}", "color": "#{{hex}}"},
        {"type": "{{kind}}", "src": "{{url}}", "anything": "goes"},
        "{{element}}",
    ],
    "transition": "{{transition}}",
}


@pytest.mark.parametrize(
    ("script", "valid"),
    [
        ({}, False),  # no scenes: missing, not a value a variable could give
        ({"scenes": "{{scenes}}"}, True),
        ({"scenes": []}, False),
        ({"scenes": [PLACEHOLDER_SCENE], "soundtrack": "{{music}}", "fps": "{{fps}}"}, True),
        ({"scenes": [{**PLACEHOLDER_SCENE, "mood": "{{mood}}"}]}, False),  # unknown field
        ({"scenes": [{"duration": 2, "background": "#{{hex}}"}], "width": 321}, False),
        ({"scenes": [{"duration": 2, "elements": [{"type": "text"}]}]}, False),  # no text
        ({"scenes": [{"duration": None}]}, False),
        ({"scenes": ["{{scene}}", {"duration": 1}], "webhook_uri": "{{hook}}"}, True),
    ],
)
async def test_the_server_takes_exactly_the_template_scripts_the_document_allows(
    client, sqlite_runtime, script, valid
):
    headers = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=0).api_key}
    body = {"name": "Promo", "script": script}
    body_schema = {"$ref": "#/components/schemas/NewTemplate"}
    document = openapi_document()
    validator = Draft202012Validator({**body_schema, "components": document["components"]})
    assert validator.is_valid(body) == valid
    created = await client.post("/api/templates", json=body, headers=headers)
    answer = await documented(created, "post", "/api/templates", 201 if valid else 400)
    if not valid:
        assert answer["error"]["code"] == "SCHEMA_VALIDATION_ERROR"
        assert answer["error"]["path"].startswith("script")


async def test_a_jobs_history_and_the_ledger_answer_in_their_documented_types(
    client, sqlite_runtime
):
    account, job_id, _ = two_ended_jobs(sqlite_runtime.app)
    headers = {"x-api-key": account.api_key}
    route = "/api/jobs/{job_id}/events"
    history = await documented(
        await client.get(f"/api/jobs/{job_id}/events", headers=headers), "get", route, 200
    )
    assert [event["type"] for event in history["events"]] == [
        "Submitted",
        "Started",
        "ProgressReported",
        "ProgressReported",
        "Completed",
        "WebhookAttempted",
    ]
    assert history["events"][2]["data"]["media_cache"] == {"hits": 1, "misses": 0}
    sqlite_runtime.ledger_runner.catch_up()
    ledger = await documented(
        await client.get("/api/credits/ledger", headers=headers), "get", "/api/credits/ledger", 200
    )
    kinds = [entry["type"] for entry in ledger["entries"]]
    assert kinds[0] == "grant" and kinds[-1] == "cancellation_refund"
    assert ledger["totals"]["grant"] == 10


async def test_the_ledger_downloads_as_csv_from_its_own_operation(client, sqlite_runtime):
    app = sqlite_runtime.app
    account = app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    app.cancel_job(
        app.submit_render(account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}).job_id
    )
    sqlite_runtime.ledger_runner.catch_up()
    operation = openapi_document()["paths"]["/api/credits/ledger.csv"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["text/csv"]
    download = await client.get("/api/credits/ledger.csv", headers=headers)
    assert download.status == 200 and download.content_type == "text/csv"
    assert download.headers["Content-Disposition"] == 'attachment; filename="ledger.csv"'
    rows = list(csv.DictReader(io.StringIO(await download.text())))
    assert [row["type"] for row in rows] == ["grant", "charge", "cancellation_refund"]
    filtered = await client.get(
        "/api/credits/ledger.csv", params={"type": "grant"}, headers=headers
    )
    assert len(list(csv.DictReader(io.StringIO(await filtered.text())))) == 1
    # The older form, kept for clients from before the CSV had its own route.
    older = await client.get("/api/credits/ledger", params={"format": "csv"}, headers=headers)
    assert await older.text() == await download.text()
    refused = await client.get("/api/credits/ledger.csv", params={"type": "gift"}, headers=headers)
    route = "/api/credits/ledger.csv"
    assert (await documented(refused, "get", route, 400))["error"]["path"] == "type"


def test_every_operation_has_a_unique_id_and_a_tag():
    operations = [
        operation
        for methods in openapi_document()["paths"].values()
        for operation in methods.values()
    ]
    ids = [operation["operationId"] for operation in operations]
    assert len(ids) == len(set(ids)) == len(OPERATIONS)
    assert all(len(operation["tags"]) == 1 for operation in operations)


async def test_a_csv_download_still_refuses_a_malformed_page_or_limit(client, sqlite_runtime):
    headers = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=0).api_key}
    route = "/api/credits/ledger"
    for name, value in (("limit", "false"), ("page", "0")):
        assert not allowed(value, parameter_schema(route, name))
        refused = await client.get(route, params={"format": "csv", name: value}, headers=headers)
        assert (await documented(refused, "get", route, 400))["error"]["path"] == name


def test_every_link_leads_to_an_operation_and_one_of_its_parameters():
    paths = openapi_document()["paths"]
    operations = {op["operationId"]: op for methods in paths.values() for op in methods.values()}
    links = [
        link
        for op in operations.values()
        for answer in op["responses"].values()
        for link in answer.get("links", {}).values()
    ]
    assert len(links) >= 10
    for link in links:
        target = operations[link["operationId"]]
        names = {parameter["name"] for parameter in target.get("parameters", [])}
        assert set(link.get("parameters", {})) <= names, link
        body = target.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "requestBody" in link:
            schema = openapi_document()["components"]["schemas"][
                body["schema"]["$ref"].rsplit("/", 1)[1]
            ]
            assert set(link["requestBody"]) <= set(schema["properties"]), link


@pytest.mark.parametrize("name", ["x" * 300, "é" * 200, "a\x00b"])
async def test_an_output_name_the_filesystem_cannot_hold_is_not_found(client, name):
    missing = await client.get(f"/outputs/{quote(name)}")
    assert (await documented(missing, "get", "/outputs/{name}", 404))["error"][
        "code"
    ] == "NOT_FOUND"


async def test_the_server_takes_exactly_the_idempotency_keys_the_document_allows(
    client, sqlite_runtime
):
    headers = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=100).api_key}
    schema = parameter_schema("/api/render", "Idempotency-Key", "post")
    for key in ("a", "order-1234", "a b", "x" * 255):
        assert allowed(key, schema), key
        taken = await client.post(
            "/api/render", json=TINY_SCRIPT, headers={**headers, "Idempotency-Key": key}
        )
        await documented(taken, "post", "/api/render", 202)
    for key in ("x" * 256, "é", "a\tb", "caf\u00e9", "<key>\u2028"):
        assert not allowed(key, schema), key
        refused = await client.post(
            "/api/render", json=TINY_SCRIPT, headers={**headers, "Idempotency-Key": key}
        )
        answer = await documented(refused, "post", "/api/render", 400)
        assert answer["error"]["path"] == "Idempotency-Key", key


@pytest.mark.parametrize(
    ("route", "path"),
    [
        ("/", "/"),
        ("/dashboard", "/dashboard"),
        ("/dashboard/{page}", "/dashboard/jobs"),
        ("/dashboard/{page}", "/dashboard/%0Ajobs"),
        ("/dashboard/static/{name}", "/dashboard/static/app.css"),
        ("/dashboard/static/{name}", "/dashboard/static/nothing.js"),
    ],
)
async def test_the_dashboards_pages_answer_as_documented(client, route, path):
    response = await client.get(path, allow_redirects=False)
    answers = openapi_document()["paths"][route]["get"]["responses"]
    assert str(response.status) in answers, (path, response.status)
    documented_types = answers[str(response.status)].get("content", {})
    if documented_types:
        assert response.content_type in documented_types, (path, response.content_type)


@pytest.mark.parametrize("dry_run", ["false", "true"])
async def test_a_webhook_uri_with_a_port_that_is_no_number_is_refused(
    client, sqlite_runtime, dry_run
):
    headers = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=100).api_key}
    body = {**TINY_SCRIPT, "webhook_uri": "http://example.com:s/hook"}
    refused = await client.post(
        "/api/render", json=body, params={"dry_run": dry_run}, headers=headers
    )
    answer = await documented(refused, "post", "/api/render", 400)
    assert answer["error"]["path"] == "webhook_uri"


@pytest.mark.parametrize("length", [30, 600])
async def test_an_export_path_that_almost_matches_is_refused_at_once(
    client, sqlite_runtime, length
):
    # Found by Schemathesis (its generator hung on the pattern): `(?:name/?)*` took 2 s
    # for 25 letters and a `!`, doubling with each letter, on the event loop.
    headers = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=100).api_key}
    target = {"type": "sftp", "integration_id": f"int_{'0' * 32}", "path": "a" * length + "!"}
    started = time.monotonic()
    refused = await client.post(
        "/api/render", json={**TINY_SCRIPT, "exports": [target]}, headers=headers
    )
    answer = await documented(refused, "post", "/api/render", 400)
    assert answer["error"]["path"] == "exports.0.path"
    assert time.monotonic() - started < 5  # not hours


async def test_the_integration_routes_answer_as_documented(client, sqlite_runtime):
    headers = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=0).api_key}
    body = {
        "type": "s3",
        "name": "Archive",
        "settings": {"bucket": "my-videos", "access_key_id": "AKIAEXAMPLE"},
        "secrets": {"secret_access_key": "s" * 40},
    }
    new = {"$ref": "#/components/schemas/NewIntegration"}
    assert Draft202012Validator({**new, "components": openapi_document()["components"]}).is_valid(
        body
    )
    created = await client.post("/api/integrations", json=body, headers=headers)
    integration = await documented(created, "post", "/api/integrations", 201)
    item = "/api/integrations/{integration_id}"
    url = f"/api/integrations/{integration['id']}"
    await documented(await client.get(url, headers=headers), "get", item, 200)
    listed = await client.get("/api/integrations", headers=headers)
    await documented(listed, "get", "/api/integrations", 200)
    await documented(await client.delete(url, headers=headers), "delete", item, 200)

    # Each type's settings are its own: an s3 integration without its bucket breaks the
    # document as it breaks the server.
    without = {**body, "settings": {"access_key_id": "AKIAEXAMPLE"}}
    assert not Draft202012Validator(
        {**new, "components": openapi_document()["components"]}
    ).is_valid(without)
    refused = await client.post("/api/integrations", json=without, headers=headers)
    answer = await documented(refused, "post", "/api/integrations", 400)
    assert answer["error"]["path"] == "settings.bucket"


def email_integration(**settings: str) -> dict[str, Any]:
    """The body of POST /api/integrations for an email integration, with `settings`."""
    base = {"host": "smtp.example.com", "from_address": "a@example.com"}
    return {"type": "email", "name": "Mail", "settings": {**base, **settings}, "secrets": {}}


async def test_a_certificate_that_is_not_ascii_is_refused_not_a_500(client, sqlite_runtime):
    headers = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=0).api_key}
    for certificate in ("é", "not a certificate"):
        body = email_integration(ca_certificate=certificate)
        refused = await client.post("/api/integrations", json=body, headers=headers)
        answer = await documented(refused, "post", "/api/integrations", 400)
        assert answer["error"]["path"] == "settings.ca_certificate"


@pytest.mark.parametrize("address", ["d\x1cx@example.com", "a\x85b@example.com", "x\ufeff@a.co"])
async def test_an_email_address_with_a_control_or_space_is_refused_by_both(
    client, sqlite_runtime, address
):
    headers = {"x-api-key": sqlite_runtime.app.open_account(plan="pro", credits=0).api_key}
    schema = openapi_document()["components"]["schemas"]["EmailSettings"]
    assert not allowed(address, schema["properties"]["from_address"])
    body = email_integration(from_address=address)
    refused = await client.post("/api/integrations", json=body, headers=headers)
    answer = await documented(refused, "post", "/api/integrations", 400)
    assert answer["error"]["path"] == "settings.from_address"
