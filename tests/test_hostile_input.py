"""Hostile and careless input: nothing a request sends can crash the API, stall it, or get
an answer outside the documented shape."""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.domain.templates import template_ref
from tests.conftest import TINY_SCRIPT
from tests.processes import RunningSystem, base_env, call, start_embedded

DEEP_ARRAYS = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECTS = b'{"a":' * 100 + b"1" + b"}" * 100  # parses, but no request goes this deep


@pytest.fixture
async def api(runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        yield client


def body_routes(runtime, account_id: uuid.UUID) -> list[tuple[str, str]]:
    """Every route that reads a JSON body."""
    template = runtime.app.create_template(account_id, "t", TINY_SCRIPT, False).template
    ref = template_ref(template.id)
    return [
        ("POST", "/api/render"),
        ("POST", "/api/render/template"),
        ("POST", "/api/templates"),
        ("PUT", f"/api/templates/{ref}"),
        ("PATCH", f"/api/templates/{ref}"),
        ("POST", "/api/keys"),
    ]


@pytest.mark.parametrize("body", [DEEP_ARRAYS, DEEP_OBJECTS], ids=["10000-arrays", "100-objects"])
async def test_deeply_nested_json_is_invalid_json_on_every_route_that_reads_a_body(
    api, runtime, body
):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key, "content-type": "application/json"}
    for method, path in body_routes(runtime, account.account_id):
        response = await api.request(method, path, data=body, headers=headers)
        error = (await response.json())["error"]
        assert (response.status, error["code"], path) == (400, "INVALID_JSON", path)
        assert "nested more than 64 levels" in error["message"]
    assert runtime.app.get_account(account.account_id).balance == 10


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_not_sent_as_application_json_is_refused_with_415_and_not_charged(
    api, runtime, content_type
):
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    if content_type:
        headers["content-type"] = content_type
    response = await api.post("/api/render", data=json.dumps(TINY_SCRIPT).encode(), headers=headers)
    error = (await response.json())["error"]
    assert (response.status, error["code"], error["path"]) == (
        415,
        "INVALID_REQUEST",
        "Content-Type",
    )
    assert "application/json" in error["message"]
    assert runtime.app.get_account(account.account_id).balance == 10
    charset = {**headers, "content-type": "application/json; charset=utf-8"}
    accepted = await api.post("/api/render", data=json.dumps(TINY_SCRIPT), headers=charset)
    assert accepted.status == 202


async def test_a_method_a_route_does_not_take_is_405_with_allow_in_the_documented_body(
    api, runtime
):
    account = runtime.app.open_account(plan="pro", credits=10)
    response = await api.delete("/api/render", headers={"x-api-key": account.api_key})
    assert response.status == 405
    assert "POST" in response.headers["Allow"]
    assert (await response.json())["error"]["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize("size", [9 * 1024, 60 * 1024])
async def test_a_header_over_8_kib_gets_the_documented_body(api, runtime, size):
    account = runtime.app.open_account(plan="pro", credits=10)
    response = await api.get(
        "/api/jobs", headers={"x-api-key": account.api_key, "X-Padding": "a" * size}
    )
    assert response.status == 431
    assert response.content_type == "application/json"
    error = (await response.json())["error"]
    assert (error["code"], error["path"]) == ("INVALID_REQUEST", "X-Padding")
    fine = await api.get(
        "/api/jobs", headers={"x-api-key": account.api_key, "X-Padding": "a" * 7000}
    )
    assert fine.status == 200


@pytest.mark.parametrize(
    ("offered", "kept"),
    [("3f2a9c1e-8b7d-4e6f-a5c4-1b2d3e4f5a6b", True), ("trace.01HZX3:span-7", True),
     ("a" * 8000, False), ("<script>alert(1)</script>", False), ("two words", False),
     ("", False)],
)  # fmt: skip
async def test_a_clients_request_id_is_kept_only_if_it_is_a_short_safe_token(
    api, runtime, offered, kept
):
    account = runtime.app.open_account(plan="pro", credits=10)
    response = await api.post(
        "/api/render",
        json=TINY_SCRIPT,
        headers={"x-api-key": account.api_key, "X-Request-Id": offered},
    )
    assert response.status == 202
    echoed = response.headers["X-Request-Id"]
    job = runtime.app.get_job(uuid.UUID((await response.json())["job_id"]))
    assert job.origin["request_id"] == echoed
    if kept:
        assert echoed == offered
    else:
        assert echoed != offered and len(echoed) == 32 and echoed.isalnum()


# --- a flood of large bodies ------------------------------------------------------------

FLOOD_SCENE = {"duration": 1, "background": "#FF0000",
               "elements": [{"type": "text", "text": "Hello", "font_size": 24}]}  # fmt: skip
# Just under the 2 MiB body limit: 19,400 scenes where 50 are allowed.
FLOOD_BODY = json.dumps({**TINY_SCRIPT, "scenes": [FLOOD_SCENE] * 19_400}).encode()
FLOOD_SECONDS = 6.0
FLOOD_CLIENTS = 20


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[RunningSystem]:
    system = start_embedded(tmp_path, base_env(tmp_path))
    yield system
    system.stop()


def post_raw(url: str, key: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("x-api-key", key)
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


def test_a_flood_of_large_bodies_leaves_other_requests_p99_under_100_ms(embedded):
    assert 1.9 * 1024 * 1024 < len(FLOOD_BODY) <= 2 * 1024 * 1024
    embedded.wait_until_up()
    account = embedded.cli("accounts", "create", "--plan", "pro", "--credits", "10")
    embedded.cli("accounts", "plan", account["account_id"], "enterprise",
                 "--requests-per-minute", "1000000")  # fmt: skip
    key, base = account["api_key"], embedded.base_url
    assert call("GET", f"{base}/api/credits", key)[0] == 200

    def probe(seconds: float) -> list[float]:
        found = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.monotonic()
            status = call("GET", f"{base}/api/credits", key)[0]
            found.append(time.monotonic() - began)
            assert status == 200
            time.sleep(0.01)
        return found

    quiet = probe(2.0)
    stop = threading.Event()
    flood_answers: list[int] = []

    def flood() -> None:
        while not stop.is_set():
            flood_answers.append(post_raw(f"{base}/api/render", key, FLOOD_BODY))

    flooders = [threading.Thread(target=flood) for _ in range(FLOOD_CLIENTS)]
    for thread in flooders:
        thread.start()
    latencies = []
    try:
        time.sleep(0.5)  # the flood under way
        latencies = probe(FLOOD_SECONDS)
    finally:
        stop.set()
        for thread in flooders:
            thread.join(60)

    p99 = statistics.quantiles(latencies, n=100)[98]
    quiet_p99 = statistics.quantiles(quiet, n=100)[98]
    print(f"\n{len(flood_answers)} flood bodies refused; unrelated GET p50 "
          f"{statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
          f"(without the flood: p99 {quiet_p99 * 1000:.0f} ms)")  # fmt: skip
    assert set(flood_answers) == {400}
    assert p99 < 0.100
