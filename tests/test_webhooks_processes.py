"""Live progress and webhooks as a user meets them: processes started by the CLI.

Once on the embedded default (`phantomflow serve`), once as production processes (`api`,
`worker`, `projections` on PostgreSQL and Redis), where the API process holding the
stream never sees the render: its events come from the database, and the webhook is
scheduled by `projections` and sent by `worker`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import TINY_SCRIPT, free_port
from tests.processes import RunningSystem, base_env, start_embedded, start_production
from tests.test_sse import read_events
from tests.test_webhooks import Receiver, verify


def env_for_webhooks(tmp_path: Path) -> dict[str, str]:
    env = base_env(tmp_path)
    env["PHANTOMFLOW_ALLOW_PRIVATE_URLS"] = "1"  # the receiver is on 127.0.0.1
    env["PHANTOMFLOW_WEBHOOK_RETRY_DELAYS"] = "0.2,0.2"
    return env


@pytest.fixture
def embedded_system(tmp_path: Path) -> Iterator[RunningSystem]:
    system = start_embedded(tmp_path, env_for_webhooks(tmp_path))
    yield system
    system.stop()


@pytest.fixture
def production_system(
    tmp_path: Path, postgres_schema: str, redis_url: str, redis_namespace: str
) -> Iterator[RunningSystem]:
    system = start_production(
        tmp_path, env_for_webhooks(tmp_path), postgres_schema, redis_url, redis_namespace
    )
    yield system
    system.stop()


@pytest.fixture(params=["embedded", "production"])
def system(request: pytest.FixtureRequest) -> RunningSystem:
    return request.getfixturevalue(f"{request.param}_system")


async def test_progress_streams_from_another_process_and_the_signed_webhook_arrives_after_a_retry(
    system: RunningSystem,
):
    await asyncio.to_thread(system.wait_until_up)
    account = await asyncio.to_thread(system.cli, "accounts", "create", "--credits", "20")
    key = account["api_key"]
    receiver = Receiver([500, 200])
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    hook = f"http://127.0.0.1:{port}/hook"
    try:
        async with aiohttp.ClientSession(headers={"x-api-key": key}, raise_for_status=True) as http:
            submitted = await (
                await http.post(
                    f"{system.base_url}/api/render", json={**TINY_SCRIPT, "webhook_uri": hook}
                )
            ).json()
            job_id = submitted["job_id"]
            events = await read_events(
                f"{system.base_url}/api/jobs/{job_id}/progress?apiKey={key}", timeout=90
            )
            assert events[-1][1] == "complete", system.output()
            assert events[-1][2]["outputUri"] == f"{system.base_url}/outputs/{job_id}.mp4"
            progress = [data["progress"] for _, name, data in events if name == "progress"]
            assert progress == sorted(progress) and len(progress) >= 3

            async with asyncio.timeout(30):
                while len(receiver.requests) < 2:
                    await asyncio.sleep(0.05)
                log: dict = {}
                while log.get("status") != "delivered":
                    log = await (
                        await http.get(f"{system.base_url}/api/jobs/{job_id}/webhooks")
                    ).json()
                    await asyncio.sleep(0.05)
            secret = (await (await http.get(f"{system.base_url}/api/webhooks/secret")).json())[
                "secret"
            ]
    finally:
        await runner.cleanup()

    assert [a["status_code"] for a in log["attempts"]] == [500, 200], system.output()
    for headers, body in receiver.requests:
        assert verify(secret, headers, body)
    payload = json.loads(receiver.requests[-1][1])
    assert (payload["job_id"], payload["status"]) == (job_id, "completed")
    assert payload["output_uri"] == events[-1][2]["outputUri"]
