"""`phantomflow mcp` driven by the MCP client of the same package over stdio: an agent's
whole render, by tool calls, against the live embedded server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from PIL import Image

from phantomflow_client import Client
from tests.conftest import TINY_SCRIPT
from tests.live_server import LiveServer

TOOLS = {
    "check_script",
    "check_template",
    "preview_script",
    "preview_template",
    "get_preview",
    "render_preview",
    "render_script",
    "render_template",
    "get_job",
    "wait_for_job",
    "cancel_job",
    "list_jobs",
    "list_templates",
    "get_template",
    "upload_asset",
    "list_assets",
    "get_asset",
    "delete_asset",
    "get_script_schema",
    "get_credits",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("mcp-server")).start()
    yield live
    live.stop()


def mcp_process(url: str, api_key: str) -> StdioServerParameters:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PHANTOMFLOW_URL", "PHANTOMFLOW_API_KEY")
    }
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "phantomflow.api.cli", "mcp"],
        env={**env, "PHANTOMFLOW_URL": url, "PHANTOMFLOW_API_KEY": api_key},
    )


@asynccontextmanager
async def session_of(url: str, api_key: str) -> AsyncIterator[ClientSession]:
    """An agent's session with `phantomflow mcp`, started as a process of its own."""
    async with (
        stdio_client(mcp_process(url, api_key)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


class Progress(list[tuple[float, float | None, str | None]]):
    """The progress notifications of a tool call, as (done, total, message)."""

    async def __call__(self, done: float, total: float | None, message: str | None) -> None:
        self.append((done, total, message))


def result_of(called: Any) -> dict[str, Any]:
    assert not called.is_error, called.content
    if called.structured_content is not None:
        return called.structured_content
    return json.loads(called.content[0].text)


def test_an_agent_renders_a_script_end_to_end_by_tool_calls(server: LiveServer):
    account = server.open_account(plan="pro", credits=100)
    progress = Progress()

    async def agent() -> dict[str, Any]:
        async with session_of(server.url, account.api_key) as session:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            schema = result_of(await session.call_tool("get_script_schema", {}))
            before = result_of(await session.call_tool("get_credits", {}))
            quote = result_of(await session.call_tool("check_script", {"script": TINY_SCRIPT}))
            job = result_of(
                await session.call_tool(
                    "render_script", {"script": TINY_SCRIPT}, progress_callback=progress
                )
            )
            again = result_of(await session.call_tool("get_job", {"job_id": job["job_id"]}))
            listed = result_of(await session.call_tool("list_jobs", {"limit": 5}))
            after = result_of(await session.call_tool("get_credits", {}))
            refused = await session.call_tool("render_script", {"script": {"scenes": []}})
            return {
                "tools": tools,
                "schema": schema,
                "before": before,
                "quote": quote,
                "job": job,
                "again": again,
                "listed": listed,
                "after": after,
                "refused": refused,
            }

    seen = asyncio.run(asyncio.wait_for(agent(), 120))

    assert seen["tools"] == TOOLS
    assert "scenes" in seen["schema"]["properties"]
    assert seen["job"]["status"] == "completed" and seen["job"]["output_uri"].endswith(".mp4")
    assert seen["again"]["job_id"] == seen["job"]["job_id"]
    assert seen["job"]["job_id"] in [job["job_id"] for job in seen["listed"]["jobs"]]
    assert (seen["before"]["credits"], seen["after"]["credits"]) == (100, 99)
    assert seen["quote"] == {
        "valid": True,
        "estimated_credits": 1,
        "credits_remaining": 99,
        "duration_seconds": 1.0,
    }
    assert progress and progress[-1][0] == 100 and progress[-1][2] == "complete"
    assert [done for done, _, _ in progress] == sorted(done for done, _, _ in progress)
    assert seen["refused"].is_error and "SCHEMA_VALIDATION_ERROR" in seen["refused"].content[0].text


def test_an_agent_renders_a_template_and_waits_for_a_job(server: LiveServer):
    account = server.open_account(plan="pro", credits=100)
    script = {
        **TINY_SCRIPT,
        "scenes": [{"duration": 1, "elements": [{"type": "text", "text": "{{headline}}"}]}],
    }
    with Client(account.test_api_key, base_url=server.url) as client:
        template = client.templates.create("Headline", script)

    async def agent() -> tuple[dict, dict, dict, dict]:
        async with session_of(server.url, account.test_api_key) as session:
            listed = result_of(await session.call_tool("list_templates", {}))
            detail = result_of(
                await session.call_tool("get_template", {"template_id": template.id})
            )
            queued = result_of(
                await session.call_tool(
                    "render_template",
                    {"template_id": template.id, "variables": {"headline": "Hi"}, "wait": False},
                )
            )
            waited = result_of(
                await session.call_tool(
                    "wait_for_job", {"job_id": queued["job_id"], "timeout_seconds": 60}
                )
            )
            return listed, detail, queued, waited

    listed, detail, queued, waited = asyncio.run(asyncio.wait_for(agent(), 120))

    assert [t["id"] for t in listed["templates"]] == [template.id]
    assert detail["variables"] == ["headline"]
    assert queued["status"] == "queued"
    assert waited["job_id"] == queued["job_id"] and waited["status"] == "completed"


def test_an_agent_prices_and_previews_before_paying_then_renders_the_preview(
    server: LiveServer,
):
    account = server.open_account(plan="pro", credits=100)
    template_script = {**TINY_SCRIPT, "scenes": [{"duration": "{{seconds}}"}]}
    with Client(account.api_key, base_url=server.url) as client:
        template = client.templates.create("Teaser", template_script)
    progress = Progress()

    async def agent() -> dict[str, Any]:
        async with session_of(server.url, account.api_key) as session:
            call = session.call_tool
            priced = result_of(
                await call(
                    "check_template", {"template_id": template.id, "variables": {"seconds": 2}}
                )
            )
            preview = result_of(
                await call("preview_script", {"script": TINY_SCRIPT}, progress_callback=progress)
            )
            got = result_of(await call("get_preview", {"preview_id": preview["preview_id"]}))
            from_template = result_of(
                await call(
                    "preview_template",
                    {"template_id": template.id, "variables": {"seconds": 2}, "wait": False},
                )
            )
            balance = result_of(await call("get_credits", {}))
            job = result_of(
                await call(
                    "render_preview",
                    {"preview_id": preview["preview_id"], "metadata": {"order": 42}},
                )
            )
            # The list reads the jobs read model, which may be a moment behind.
            for _ in range(200):
                found = result_of(await call("list_jobs", {"metadata": {"order": 42}}))
                if found["jobs"]:
                    break
                await asyncio.sleep(0.1)
            return locals()

    seen = asyncio.run(asyncio.wait_for(agent(), 120))

    assert seen["priced"]["estimated_credits"] == 1 and seen["priced"]["duration_seconds"] == 2
    assert seen["preview"]["status"] == "completed" and seen["preview"]["viewer_url"]
    assert [frame["kind"] for frame in seen["preview"]["storyboard"]] == ["scene"]
    assert "storyboard_ready" in [message for _, _, message in progress]
    assert progress[-1][2] == "complete"
    assert seen["got"]["proxy_uri"] == seen["preview"]["proxy_uri"]
    assert seen["from_template"]["duration_seconds"] == 2
    assert seen["balance"]["credits"] == 100  # previews are free
    assert seen["job"]["status"] == "completed" and seen["job"]["metadata"] == {"order": 42}
    assert (
        seen["found"]["jobs"] == [] or seen["found"]["jobs"][0]["job_id"] == seen["job"]["job_id"]
    )


def test_an_agent_uploads_a_file_renders_with_it_and_deletes_it(server: LiveServer, tmp_path: Path):
    account = server.open_account(plan="pro", credits=100)
    logo = tmp_path / "logo.png"
    Image.new("RGB", (64, 48), (255, 0, 0)).save(logo)

    async def agent() -> dict[str, Any]:
        async with session_of(server.url, account.api_key) as session:
            call = session.call_tool
            uploaded = result_of(await call("upload_asset", {"path": str(logo)}))
            missing = await call("upload_asset", {"path": str(tmp_path / "nothing.png")})
            script = {
                **TINY_SCRIPT,
                "scenes": [{"duration": 1, "background": {"type": "image",
                                                           "src": uploaded["id"]}}],
            }  # fmt: skip
            job = result_of(await call("render_script", {"script": script}))
            listed = result_of(await call("list_assets", {"type": "image"}))
            got = result_of(await call("get_asset", {"asset_id": uploaded["id"]}))
            deleted = result_of(await call("delete_asset", {"asset_id": uploaded["id"]}))
            gone = await call("get_asset", {"asset_id": uploaded["id"]})
            return locals()

    seen = asyncio.run(asyncio.wait_for(agent(), 120))

    assert seen["uploaded"]["id"].startswith("asset_") and seen["uploaded"]["type"] == "image"
    assert (seen["uploaded"]["width"], seen["uploaded"]["height"]) == (64, 48)
    assert seen["missing"].is_error and "nothing.png" in seen["missing"].content[0].text
    assert seen["job"]["status"] == "completed"
    assert [asset["id"] for asset in seen["listed"]["assets"]] == [seen["uploaded"]["id"]]
    assert seen["got"]["sha256"] == seen["uploaded"]["sha256"]
    assert seen["deleted"]["deleted"] is True
    assert seen["gone"].is_error and "404 NOT_FOUND" in seen["gone"].content[0].text


def test_without_a_key_the_server_says_what_is_missing(server: LiveServer):
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PHANTOMFLOW_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "phantomflow.api.cli", "mcp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2 and "PHANTOMFLOW_API_KEY" in done.stderr
