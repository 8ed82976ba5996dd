"""`phantomflow mcp`: a Model Context Protocol server over stdio, so an agent can render.

Tools: check a script (a dry run: valid? what would it cost?), render a script, render
a template with variables, get a job, wait for a job
(with progress notifications), cancel one, list jobs, list and read templates, get the
script's JSON Schema, get the credit balance. Each calls the API with the async SDK at
PHANTOMFLOW_URL with PHANTOMFLOW_API_KEY; results are the API's own JSON. An API error
comes back to the agent as a tool error carrying the contract's code, path and message.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from phantomflow_client import AsyncClient
from phantomflow_client._client import settings
from phantomflow_client._version import __version__
from phantomflow_client.errors import PhantomFlowError
from phantomflow_client.models import CompleteEvent, ErrorEvent, JobEvent, ProgressEvent

INSTRUCTIONS = """PhantomFlow renders MP4 videos from JSON movie scripts (scenes of text,
images, video and audio). Call get_script_schema for the script's format, render_script
to render one (it waits for the video by default and returns the job with its
output_uri), or list_templates and render_template to fill a saved template's
{{variables}}. check_script validates a script and prices it without rendering.
Rendering spends credits (get_credits); jobs started with wait=false can be followed
with wait_for_job."""

Variables = dict[str, str | int | float | bool]
Tool = TypeVar("Tool", bound=Callable[..., Awaitable[Any]])


def explained(tool: Tool) -> Tool:
    """An API error as a tool error the agent reads (code, path, message), instead of
    the generic "error executing tool" an unexpected exception becomes."""

    @functools.wraps(tool)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await tool(*args, **kwargs)
        except PhantomFlowError as error:
            raise ToolError(str(error)) from error

    return cast(Tool, call)


def build_server(client: AsyncClient) -> MCPServer:
    server = MCPServer("phantomflow", instructions=INSTRUCTIONS, version=__version__)

    async def finished(job_id: str, timeout_seconds: float, ctx: Context) -> dict[str, Any]:
        """The job once it has ended, or as it is when `timeout_seconds` have passed."""

        async def report(event: JobEvent) -> None:
            await ctx.report_progress(*_progress_of(event))

        try:
            async with asyncio.timeout(timeout_seconds):
                await client.jobs.wait(job_id, on_event=report)
        except TimeoutError:
            pass  # the job goes on; the agent sees its status and may wait again
        return (await client.jobs.get(job_id)).to_dict()

    @server.tool()
    @explained
    async def render_script(
        script: dict[str, Any],
        ctx: Context,
        wait: bool = True,
        timeout_seconds: float = 600,
    ) -> dict[str, Any]:
        """Render a movie script (the body of POST /api/render; see get_script_schema).
        With wait (the default) follow the render, reporting progress, and return the
        job when it ends: status completed with output_uri, or failed with error.
        Without wait, return the submission (job_id, estimated_credits) at once."""
        submission = await client.renders.create(script)
        if not wait:
            return submission.to_dict()
        return await finished(submission.job_id, timeout_seconds, ctx)

    @server.tool()
    @explained
    async def check_script(script: dict[str, Any]) -> dict[str, Any]:
        """Check a movie script without rendering it: whether it is valid (a tool error
        names the failing field otherwise), how long the video would be, what it would
        cost and how many credits would be left. Nothing is charged or recorded."""
        return (await client.renders.quote(script)).to_dict()

    @server.tool()
    @explained
    async def render_template(
        template_id: str,
        ctx: Context,
        variables: Variables | None = None,
        version: int | None = None,
        wait: bool = True,
        timeout_seconds: float = 600,
    ) -> dict[str, Any]:
        """Render a saved template, its {{placeholders}} replaced by `variables` (see
        get_template for the names). `version` pins a version. Waits as render_script."""
        submission = await client.templates.render(template_id, variables, version=version)
        if not wait:
            return submission.to_dict()
        return await finished(submission.job_id, timeout_seconds, ctx)

    @server.tool()
    @explained
    async def get_job(job_id: str) -> dict[str, Any]:
        """A job's status, stage, progress (0-1), credits and, once completed, output_uri."""
        return (await client.jobs.get(job_id)).to_dict()

    @server.tool()
    @explained
    async def wait_for_job(
        job_id: str, ctx: Context, timeout_seconds: float = 600
    ) -> dict[str, Any]:
        """Follow a job live, reporting progress, until it ends or `timeout_seconds`
        pass; returns the job as it then is."""
        return await finished(job_id, timeout_seconds, ctx)

    @server.tool()
    @explained
    async def cancel_job(job_id: str) -> dict[str, Any]:
        """Cancel a queued or processing job; what it did not render is refunded."""
        return (await client.jobs.cancel(job_id)).to_dict()

    @server.tool()
    @explained
    async def list_jobs(
        status: str | None = None, page: int = 1, limit: int = 20
    ) -> dict[str, Any]:
        """The account's jobs, newest first: a page of `limit` (1-100) with the total.
        `status`: queued, processing, completed, failed or cancelled."""
        return (await client.jobs.list(page=page, limit=limit, status=status)).to_dict()

    @server.tool()
    @explained
    async def list_templates() -> dict[str, Any]:
        """The account's templates (id, name, version, is_public), newest first."""
        return {"templates": [t.to_dict() for t in await client.templates.list()]}

    @server.tool()
    @explained
    async def get_template(template_id: str, version: int | None = None) -> dict[str, Any]:
        """A template with its script and the names of its variables."""
        return (await client.templates.get(template_id, version=version)).to_dict()

    @server.tool()
    @explained
    async def get_script_schema() -> dict[str, Any]:
        """The JSON Schema of a movie script, with every field, limit and default."""
        return await client.schema.script()

    @server.tool()
    @explained
    async def get_credits() -> dict[str, Any]:
        """The account's credit balance."""
        return (await client.credits.balance()).to_dict()

    return server


def _progress_of(event: JobEvent) -> tuple[float, float, str]:
    """(progress, total, message) of an MCP progress notification: percent and stage."""
    if isinstance(event, CompleteEvent):
        return 100.0, 100.0, "complete"
    if isinstance(event, ErrorEvent):
        return 100.0, 100.0, f"{event.code}: {event.message}"
    assert isinstance(event, ProgressEvent)
    return round(event.progress * 100, 1), 100.0, event.stage


def serve_stdio() -> int:
    key, url = settings(None, None)
    if not key:
        print("phantomflow mcp: set PHANTOMFLOW_API_KEY (and PHANTOMFLOW_URL)", file=sys.stderr)
        return 2

    async def run() -> None:
        async with AsyncClient(key, base_url=url) as client:
            await build_server(client).run_stdio_async()

    asyncio.run(run())
    return 0
