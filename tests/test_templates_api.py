"""Templates over HTTP: the contract's shapes, versions, rendering, errors, and who may do what."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.domain.templates import template_ref
from phantomflow.projections.runner import FollowerThreads
from tests.conftest import TINY_SCRIPT

# The contract's own template (GET /api/templates/:id) and render example.
CONTRACT_TEMPLATE_SCRIPT = {
    "width": 1920,
    "height": 1080,
    "scenes": [
        {
            "duration": 5,
            "elements": [{"type": "text", "text": "{{headline}}", "font_size": 64}],
        }
    ],
}
CONTRACT_VARIABLES = {"headline": "Summer Sale", "discount": "50% Off"}

# Tiny, with placeholders for text, timing and colour.
TINY_TEMPLATE = {
    "width": 320,
    "height": 240,
    "fps": 15,
    "quality": "low",
    "scenes": [
        {
            "duration": "{{duration}}",
            "background": "{{background}}",
            "elements": [{"type": "text", "text": "{{headline}}", "font_size": 24}],
        }
    ],
}
TINY_VARIABLES = {"duration": 1, "background": "#FF0000", "headline": "Hello"}


@pytest.fixture
async def client(runtime) -> AsyncIterator[TestClient]:
    followers = FollowerThreads([runtime.jobs_runner, runtime.templates_runner])
    followers.start()
    async with TestClient(TestServer(create_app(Services(runtime)))) as test_client:
        yield test_client
    followers.stop()


@pytest.fixture
def owner(runtime):
    return runtime.app.open_account(plan="pro", credits=1000)


@pytest.fixture
def other(runtime):
    return runtime.app.open_account(plan="pro", credits=1000)


def key(account) -> dict[str, str]:
    return {"x-api-key": account.api_key}


async def error_of(response, status: int) -> dict:
    body = await response.json()
    assert response.status == status, body
    assert set(body) == {"error"}
    return body["error"]


async def create(client, account, script=TINY_TEMPLATE, public=False, name="Promo") -> str:
    response = await client.post(
        "/api/templates",
        json={"name": name, "script": script, "is_public": public},
        headers=key(account),
    )
    body = await response.json()
    assert response.status == 201, body
    return body["id"]


def job_of(runtime, job_id: str):
    return runtime.app.get_job(uuid.UUID(job_id))


def version_of(runtime, ref: str) -> int:
    return runtime.app.repository.get(uuid.UUID(ref[len("tpl_") :])).version


# --- the contract's shapes -----------------------------------------------------------------


async def test_the_contract_example_is_created_read_listed_and_rendered(client, runtime, owner):
    response = await client.post(
        "/api/templates",
        json={"name": "Product Demo", "script": CONTRACT_TEMPLATE_SCRIPT},
        headers=key(owner),
    )
    assert response.status == 201
    created = await response.json()
    assert set(created) == {"id", "name", "is_public", "created_at", "version"}
    assert created["id"].startswith("tpl_")
    assert (created["name"], created["is_public"], created["version"]) == ("Product Demo", False, 1)
    assert created["created_at"].endswith("Z")

    detail = await (await client.get(f"/api/templates/{created['id']}", headers=key(owner))).json()
    assert detail == {
        "id": created["id"],
        "name": "Product Demo",
        "script": CONTRACT_TEMPLATE_SCRIPT,
        "is_public": False,
        "variables": ["headline"],
        "version": 1,
        "created_at": created["created_at"],
        "updated_at": created["created_at"],
    }

    listed = await (await client.get("/api/templates", headers=key(owner))).json()
    assert listed == {
        "templates": [
            {
                key_: detail[key_]
                for key_ in ("id", "name", "is_public", "version", "created_at", "updated_at")
            }
        ]
    }

    response = await client.post(
        "/api/render/template",
        json={"template_id": created["id"], "variables": CONTRACT_VARIABLES},
        headers=key(owner),
    )
    assert response.status == 202
    submitted = await response.json()
    assert set(submitted) == {"job_id", "status", "estimated_credits", "credits_remaining"}
    assert (submitted["status"], submitted["estimated_credits"]) == ("queued", 5)
    assert submitted["credits_remaining"] == 995
    job = job_of(runtime, submitted["job_id"])
    assert job.script["scenes"][0]["elements"][0]["text"] == "Summer Sale"
    assert job.origin["channel"] == "template"
    assert (job.origin["template_id"], job.origin["template_version"]) == (created["id"], 1)


async def test_a_template_render_is_charged_and_answered_like_the_same_script_posted(
    client, runtime, owner, other
):
    ref = await create(client, owner, public=True)
    variables = {"duration": 7.5, "background": "#00FF00", "headline": "Typed"}
    by_template = await client.post(
        "/api/render/template",
        json={"template_id": ref, "variables": variables},
        headers=key(other),
    )
    assert by_template.status == 202
    from_template = await by_template.json()

    script = copy.deepcopy(TINY_TEMPLATE)
    script["scenes"][0].update(duration=7.5, background="#00FF00")
    script["scenes"][0]["elements"][0]["text"] = "Typed"
    direct = await (await client.post("/api/render", json=script, headers=key(other))).json()

    assert set(from_template) == set(direct)
    assert from_template["estimated_credits"] == direct["estimated_credits"] == 1
    assert direct["credits_remaining"] == from_template["credits_remaining"] - 1
    # The template's owner pays nothing; the account that renders pays.
    assert runtime.app.get_account(owner.account_id).balance == 1000
    assert (
        job_of(runtime, from_template["job_id"]).script == job_of(runtime, direct["job_id"]).script
    )


async def test_a_render_request_may_set_the_webhook(client, runtime, owner):
    ref = await create(client, owner)
    response = await client.post(
        "/api/render/template",
        json={
            "template_id": ref,
            "variables": TINY_VARIABLES,
            "webhook_uri": "https://example.test/hook",
        },
        headers=key(owner),
    )
    assert response.status == 202
    job = job_of(runtime, (await response.json())["job_id"])
    assert job.webhook_uri == "https://example.test/hook"


# --- versions ------------------------------------------------------------------------------


async def test_put_and_patch_change_only_the_fields_given_and_each_change_is_a_version(
    client, owner
):
    ref = await create(client, owner, name="First")
    url = f"/api/templates/{ref}"

    patched = await client.patch(url, json={"is_public": True}, headers=key(owner))
    assert patched.status == 200
    body = await patched.json()
    assert set(body) == {"id", "name", "is_public", "updated_at", "version"}
    assert (body["id"], body["name"], body["is_public"], body["version"]) == (ref, "First", True, 2)

    new_script = copy.deepcopy(TINY_TEMPLATE)
    new_script["scenes"][0]["elements"][0]["text"] = "{{title}} by {{author}}"
    put = await client.put(url, json={"name": "Second", "script": new_script}, headers=key(owner))
    assert (await put.json())["version"] == 3

    unchanged = await client.patch(url, json={"name": "Second"}, headers=key(owner))
    assert (await unchanged.json())["version"] == 3

    detail = await (await client.get(url, headers=key(owner))).json()
    assert (detail["name"], detail["is_public"], detail["version"]) == ("Second", True, 3)
    assert detail["script"] == new_script
    assert detail["variables"] == ["duration", "background", "title", "author"]

    first = await (await client.get(f"{url}?version=1", headers=key(owner))).json()
    assert (first["name"], first["is_public"], first["version"]) == ("First", False, 1)
    assert first["script"] == TINY_TEMPLATE
    assert first["variables"] == ["duration", "background", "headline"]

    versions = await (await client.get(f"{url}/versions", headers=key(owner))).json()
    assert versions["id"] == ref
    assert [
        (v["version"], v["name"], v["is_public"], v["changed"]) for v in versions["versions"]
    ] == [
        (3, "Second", True, ["name", "script"]),
        (2, "First", True, ["is_public"]),
        (1, "First", False, ["name", "script", "is_public"]),
    ]
    for absent in ("4", "0", "x"):
        response = await client.get(f"{url}?version={absent}", headers=key(owner))
        assert response.status in (400, 404)


async def test_a_render_may_pin_an_earlier_version_and_the_job_records_it(client, runtime, owner):
    ref = await create(client, owner)
    new_script = copy.deepcopy(TINY_TEMPLATE)
    new_script["scenes"][0]["elements"][0]["text"] = "v2: {{headline}}"
    await client.patch(f"/api/templates/{ref}", json={"script": new_script}, headers=key(owner))

    async def render(**pin) -> tuple[int, dict]:
        response = await client.post(
            "/api/render/template",
            json={"template_id": ref, "variables": TINY_VARIABLES, **pin},
            headers=key(owner),
        )
        return response.status, await response.json()

    status, latest = await render()
    assert status == 202
    job = job_of(runtime, latest["job_id"])
    assert job.script["scenes"][0]["elements"][0]["text"] == "v2: Hello"
    assert job.origin["template_version"] == 2

    status, pinned = await render(template_version=1)
    assert status == 202
    job = job_of(runtime, pinned["job_id"])
    assert job.script["scenes"][0]["elements"][0]["text"] == "Hello"
    assert (job.origin["template_id"], job.origin["template_version"]) == (ref, 1)

    status, missing = await render(template_version=3)
    assert (status, missing["error"]["code"]) == (404, "TEMPLATE_NOT_FOUND")


# --- errors --------------------------------------------------------------------------------


async def test_render_errors_say_what_is_missing_or_wrong(client, owner):
    ref = await create(client, owner)

    async def render(body) -> tuple[int, dict]:
        response = await client.post("/api/render/template", json=body, headers=key(owner))
        return response.status, (await response.json())["error"]

    status, error = await render({"variables": TINY_VARIABLES})
    assert (status, error["code"], error["path"]) == (400, "INVALID_REQUEST", "template_id")

    status, error = await render({"template_id": ref, "variables": {"headline": "x"}})
    assert (status, error["code"], error["path"]) == (400, "VALIDATION_ERROR", "variables")
    assert error["missing"] == ["duration", "background"]
    assert "duration, background" in error["message"]

    status, error = await render({"template_id": ref})
    assert (status, error["code"]) == (400, "VALIDATION_ERROR")
    assert error["missing"] == ["duration", "background", "headline"]

    bad_duration = {**TINY_VARIABLES, "duration": "long"}
    status, error = await render({"template_id": ref, "variables": bad_duration})
    assert (status, error["code"], error["path"]) == (
        400,
        "SCHEMA_VALIDATION_ERROR",
        "scenes.0.duration",
    )
    assert "Expected number, received string" in error["message"]

    too_long = {**TINY_VARIABLES, "duration": 301}
    status, error = await render({"template_id": ref, "variables": too_long})
    assert (status, error["path"]) == (400, "scenes.0.duration")

    status, error = await render({"template_id": ref, "variables": {**TINY_VARIABLES, "x": [1]}})
    assert (status, error["code"], error["path"]) == (400, "VALIDATION_ERROR", "variables.x")

    status, error = await render({"template_id": ref, "variables": "headline=x"})
    assert (status, error["code"], error["path"]) == (400, "INVALID_REQUEST", "variables")

    status, error = await render({"template_id": ref, "template_version": "1"})
    assert (status, error["code"], error["path"]) == (400, "INVALID_REQUEST", "template_version")

    status, error = await render({"template_id": ref, "variables": {}, "colour": "red"})
    assert (status, error["code"], error["path"]) == (400, "INVALID_REQUEST", "colour")

    for unknown in ("tpl_abc123", "tpl_" + uuid.uuid4().hex, str(uuid.uuid4())):
        status, error = await render({"template_id": unknown, "variables": TINY_VARIABLES})
        assert (status, error["code"]) == (404, "TEMPLATE_NOT_FOUND")


async def test_a_template_id_that_names_another_kind_of_aggregate_is_not_found(
    client, runtime, owner
):
    job = await (await client.post("/api/render", json=TINY_SCRIPT, headers=key(owner))).json()
    ref = "tpl_" + uuid.UUID(job["job_id"]).hex
    assert (await client.get(f"/api/templates/{ref}", headers=key(owner))).status == 404
    response = await client.post(
        "/api/render/template", json={"template_id": ref}, headers=key(owner)
    )
    assert (await error_of(response, 404))["code"] == "TEMPLATE_NOT_FOUND"


BAD_TEMPLATE_BODIES = [
    ({"script": TINY_TEMPLATE}, 400, "INVALID_REQUEST", "name"),
    ({"name": "x"}, 400, "INVALID_REQUEST", "script"),
    ({"name": "  ", "script": TINY_TEMPLATE}, 400, "VALIDATION_ERROR", "name"),
    ({"name": "x" * 201, "script": TINY_TEMPLATE}, 400, "VALIDATION_ERROR", "name"),
    ({"name": 5, "script": TINY_TEMPLATE}, 400, "INVALID_REQUEST", "name"),
    ({"name": "x", "script": TINY_TEMPLATE, "is_public": "yes"}, 400, "INVALID_REQUEST", "is_public"),
    ({"name": "x", "script": TINY_TEMPLATE, "owner": "me"}, 400, "INVALID_REQUEST", "owner"),
    ({"name": "x", "script": [TINY_TEMPLATE]}, 400, "INVALID_REQUEST", "script"),
    ({"name": "x", "script": {"scenes": []}}, 400, "SCHEMA_VALIDATION_ERROR", "script.scenes"),
    ({"name": "x", "script": {"scenes": [{"duration": "5"}]}}, 400, "SCHEMA_VALIDATION_ERROR", "script.scenes.0.duration"),
    ({"name": "x", "script": {"width": 321, "scenes": [{"duration": "{{d}}"}]}}, 400, "SCHEMA_VALIDATION_ERROR", "script.width"),
    ({"name": "x", "script": {"scenes": [{"duration": 1, "durration": "{{d}}"}]}}, 400, "SCHEMA_VALIDATION_ERROR", "script.scenes.0.durration"),
    ([1], 400, "INVALID_REQUEST", ""),
]  # fmt: skip


async def test_template_bodies_are_checked_with_the_documented_codes(client, owner):
    answers = []
    for body, *_ in BAD_TEMPLATE_BODIES:
        response = await client.post("/api/templates", json=body, headers=key(owner))
        error = (await response.json())["error"]
        answers.append((response.status, error["code"], error["path"]))
    assert answers == [tuple(expected) for _, *expected in BAD_TEMPLATE_BODIES]
    listed = await (await client.get("/api/templates", headers=key(owner))).json()
    assert listed == {"templates": []}


async def test_placeholders_may_stand_for_numbers_and_colours_in_a_stored_template(client, owner):
    script = {
        "width": "{{width}}",
        "quality": "{{quality}}",
        "scenes": [
            {
                "duration": "{{duration}}",
                "background": "#{{hex}}",
                "elements": [{"type": "text", "text": "{{t}}", "font_size": "{{size}}"}],
            }
        ],
    }
    ref = await create(client, owner, script=script)
    detail = await (await client.get(f"/api/templates/{ref}", headers=key(owner))).json()
    assert detail["variables"] == ["width", "quality", "duration", "hex", "t", "size"]
    # A field without a placeholder is still checked on update.
    broken = copy.deepcopy(script)
    broken["scenes"][0]["elements"][0]["color"] = "red"
    response = await client.patch(
        f"/api/templates/{ref}", json={"script": broken}, headers=key(owner)
    )
    error = await error_of(response, 400)
    assert (error["code"], error["path"]) == (
        "SCHEMA_VALIDATION_ERROR",
        "script.scenes.0.elements.0.color",
    )
    response = await client.post(
        "/api/render/template",
        json={
            "template_id": ref,
            "variables": {
                "width": 320, "quality": "low", "duration": 1, "hex": "abcdef", "t": "Hi", "size": 30,
            },
        },
        headers=key(owner),
    )  # fmt: skip
    assert response.status == 202


async def test_an_empty_name_on_update_is_a_validation_error_and_changes_nothing(
    client, runtime, owner
):
    ref = await create(client, owner)
    response = await client.put(f"/api/templates/{ref}", json={"name": ""}, headers=key(owner))
    error = await error_of(response, 400)
    assert (error["code"], error["path"]) == ("VALIDATION_ERROR", "name")
    assert version_of(runtime, ref) == 1


async def test_sandbox_keys_manage_templates_and_render_them_without_spending_credits(
    client, owner, runtime
):
    sandbox = {"x-api-key": owner.test_api_key}
    response = await client.post(
        "/api/templates", json={"name": "Sandbox", "script": TINY_TEMPLATE}, headers=sandbox
    )
    assert response.status == 201
    ref = (await response.json())["id"]
    response = await client.post(
        "/api/render/template",
        json={"template_id": ref, "variables": TINY_VARIABLES},
        headers=sandbox,
    )
    assert response.status == 202
    submitted = await response.json()
    balance = runtime.app.get_account(owner.account_id).balance
    assert submitted["credits_remaining"] == balance
    assert runtime.app.get_job(uuid.UUID(submitted["job_id"])).sandbox


async def test_a_write_is_read_back_even_when_the_read_models_lead_is_not_running(
    runtime, owner, monkeypatch
):
    """Read-your-writes without a clock: with no follower running (a lead stalled by a
    busy machine, or stopped), a write brings the read model up to itself."""
    monkeypatch.setattr("phantomflow.api.services.READ_YOUR_WRITES_SECONDS", 0.05)
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        ref = await create(client, owner)
        listed = await (await client.get("/api/templates", headers=key(owner))).json()
        assert [t["id"] for t in listed["templates"]] == [ref]
        changed = await client.patch(
            f"/api/templates/{ref}", json={"name": "Renamed"}, headers=key(owner)
        )
        assert changed.status == 200
        read = await (await client.get(f"/api/templates/{ref}", headers=key(owner))).json()
        assert read["name"] == "Renamed"


async def test_template_routes_need_a_key(client):
    for method, url in (
        ("GET", "/api/templates"),
        ("POST", "/api/templates"),
        ("GET", "/api/templates/tpl_x"),
        ("POST", "/api/render/template"),
    ):
        response = await client.request(method, url, json={})
        assert (await error_of(response, 401))["code"] == "UNAUTHORIZED"


async def test_a_template_is_readable_before_the_read_model_has_seen_it(runtime, owner, other):
    # No followers run here, and the template is written as another API process would
    # write it: the read model has not seen it.
    ref = template_ref(runtime.app.create_template(owner.account_id, "Promo", TINY_TEMPLATE,
                                                   False).template.id)  # fmt: skip
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        assert runtime.templates.get(ref) is None
        response = await client.get(f"/api/templates/{ref}", headers=key(owner))
        assert response.status == 200
        assert (await response.json())["variables"] == ["duration", "background", "headline"]
        hidden = await client.get(f"/api/templates/{ref}", headers=key(other))
        assert hidden.status == 404


# --- ownership and visibility: every route × (owner, other) × (private, public, deleted) ---

ROUTES = (
    "list",
    "read",
    "read_v1",
    "versions",
    "put",
    "patch",
    "patch_invalid",
    "delete",
    "render",
)
OK = {
    "list": (200, "listed"),
    "read": (200, None),
    "read_v1": (200, None),
    "versions": (200, None),
    "put": (200, None),
    "patch": (200, None),
    "patch_invalid": (400, "VALIDATION_ERROR"),
    "delete": (200, None),
    "render": (202, None),
}
HIDDEN = {
    "list": (200, "not listed"),
    **{route: (404, "NOT_FOUND") for route in ROUTES if route not in ("list", "render")},
    "render": (404, "TEMPLATE_NOT_FOUND"),
}
READ_ONLY = {
    **OK,
    "list": (200, "not listed"),
    **{route: (403, "FORBIDDEN") for route in ("put", "patch", "patch_invalid", "delete")},
}
# situation: (who asks, template public?, template deleted?, expected per route)
SITUATIONS = {
    "owner, private": ("owner", False, False, OK),
    "owner, public": ("owner", True, False, OK),
    "other, private": ("other", False, False, HIDDEN),
    "other, public": ("other", True, False, READ_ONLY),
    "owner, deleted": ("owner", True, True, HIDDEN),
    "other, deleted": ("other", True, True, HIDDEN),
    "owner, unknown id": ("owner", None, False, HIDDEN),
}


def request_for(route: str, ref: str) -> tuple[str, str, object]:
    url = f"/api/templates/{ref}"
    return {
        "list": ("GET", "/api/templates", None),
        "read": ("GET", url, None),
        "read_v1": ("GET", f"{url}?version=1", None),
        "versions": ("GET", f"{url}/versions", None),
        "put": ("PUT", url, {"name": "Changed", "script": TINY_TEMPLATE}),
        "patch": ("PATCH", url, {"is_public": False}),
        "patch_invalid": ("PATCH", url, {"name": ""}),
        "delete": ("DELETE", url, None),
        "render": ("POST", "/api/render/template", {"template_id": ref, "variables": TINY_VARIABLES}),
    }[route]  # fmt: skip


async def test_who_may_do_what_with_a_template(client, runtime, owner, other):
    accounts = {"owner": owner, "other": other}
    # A template of its own for each (situation, route), so no route's effect leaks
    # into another's; made in the domain directly, then seen by the read model.
    refs: dict[tuple[str, str], str] = {}
    for situation, (_, public, deleted, _) in SITUATIONS.items():
        for route in ROUTES:
            if public is None:
                refs[situation, route] = "tpl_" + uuid.uuid4().hex
                continue
            change = runtime.app.create_template(owner.account_id, "Promo", TINY_TEMPLATE, public)
            if deleted:
                runtime.app.delete_template(change.template.id, owner.account_id)
            refs[situation, route] = change.template.ref
    assert runtime.templates_runner.wait_for(runtime.app.recorder.max_notification_id(), 10)

    outcomes: dict[str, dict[str, tuple[int, str | None]]] = {}
    for situation, (asker, public, _, _) in SITUATIONS.items():
        outcomes[situation] = {}
        for route in ROUTES:
            ref = refs[situation, route]
            before = version_of(runtime, ref) if public is not None else None
            method, url, body = request_for(route, ref)
            response = await client.request(method, url, json=body, headers=key(accounts[asker]))
            answer = await response.json()
            if route == "list":
                listed = ref in [t["id"] for t in answer["templates"]]
                outcomes[situation][route] = (response.status, "listed" if listed else "not listed")
            elif response.status >= 400:
                assert set(answer) == {"error"}
                outcomes[situation][route] = (response.status, answer["error"]["code"])
                assert before is None or version_of(runtime, ref) == before, (
                    f"{situation}: {route} changed a template it refused to change"
                )
            else:
                outcomes[situation][route] = (response.status, None)
                if route in ("read", "read_v1"):
                    assert answer["id"] == ref and answer["script"] == TINY_TEMPLATE
    assert outcomes == {situation: spec[3] for situation, spec in SITUATIONS.items()}
