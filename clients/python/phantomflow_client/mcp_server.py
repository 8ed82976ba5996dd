"""`phantomflow mcp`: a Model Context Protocol server over stdio, so an agent can render.

Tools: check a script or a template render (a dry run: valid? what would it cost?),
preview a script or a template for free (a storyboard, a watermarked proxy and a page to
watch it on) and render the preview, render a script, render a template with variables,
get a job, wait for a job (with progress notifications), cancel one, list jobs (by
status or metadata), list and read templates, upload a file as an asset (from the
machine this server runs on) and list, read and delete assets, get the script's JSON
Schema, get the credit balance. Each calls the API with the async SDK at
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
from phantomflow_client.models import ErrorEvent, Event, ProgressEvent, StoryboardEvent

INSTRUCTIONS = """PhantomFlow renders MP4 videos from JSON movie scripts (scenes of text,
images, video and audio). Call get_script_schema for the script's format, render_script
to render one (it waits for the video by default and returns the job with its
output_uri), or list_templates and render_template to fill a saved template's
{{variables}}. check_script (check_template for a template) validates and prices a
render without rendering. Before paying, preview_script (or preview_template) draws a
free storyboard and a small watermarked proxy with a viewer_url a person can open;
render_preview then renders that preview for real. Rendering spends credits
(get_credits); jobs started with wait=false can be followed with wait_for_job.
`metadata` (your own JSON object) is kept with a job and can find it (list_jobs).
upload_asset stores a local file (image, video, audio or font) in the account's media
library: its id ("asset_...") goes in a script where a URL would (`src`, or
`font_family` for a font)."""

Variables = dict[str, str | int | float | bool]
Metadata = dict[str, Any]
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

        try:
            async with asyncio.timeout(timeout_seconds):
                await client.jobs.wait(job_id, on_event=reporter(ctx))
        except TimeoutError:
            pass  # the job goes on; the agent sees its status and may wait again
        return (await client.jobs.get(job_id)).to_dict()

    async def drawn(preview_id: str, timeout_seconds: float, ctx: Context) -> dict[str, Any]:
        """The preview once drawn (or failed), or as it is after `timeout_seconds`."""
        try:
            async with asyncio.timeout(timeout_seconds):
                await client.previews.wait(preview_id, on_event=reporter(ctx))
        except TimeoutError:
            pass
        return (await client.previews.get(preview_id)).to_dict()

    @server.tool()
    @explained
    async def render_script(
        script: dict[str, Any],
        ctx: Context,
        wait: bool = True,
        timeout_seconds: float = 600,
        metadata: Metadata | None = None,
    ) -> dict[str, Any]:
        """Render a movie script (the body of POST /api/render; see get_script_schema).
        With wait (the default) follow the render, reporting progress, and return the
        job when it ends: status completed with output_uri, or failed with error.
        Without wait, return the submission (job_id, estimated_credits) at once.
        `metadata`: your own JSON object, kept with the job (list_jobs finds it)."""
        submission = await client.renders.create(script, metadata=metadata)
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
        metadata: Metadata | None = None,
    ) -> dict[str, Any]:
        """Render a saved template, its {{placeholders}} replaced by `variables` (see
        get_template for the names). `version` pins a version. Waits as render_script."""
        submission = await client.templates.render(
            template_id, variables, version=version, metadata=metadata
        )
        if not wait:
            return submission.to_dict()
        return await finished(submission.job_id, timeout_seconds, ctx)

    @server.tool()
    @explained
    async def check_template(
        template_id: str, variables: Variables | None = None, version: int | None = None
    ) -> dict[str, Any]:
        """Check a template render without rendering: the variables are substituted and
        the script validated and priced as render_template would; nothing is charged."""
        return (await client.templates.quote(template_id, variables, version=version)).to_dict()

    @server.tool()
    @explained
    async def preview_script(
        script: dict[str, Any],
        ctx: Context,
        wait: bool = True,
        timeout_seconds: float = 300,
        metadata: Metadata | None = None,
    ) -> dict[str, Any]:
        """Preview a movie script for free before paying for it: a storyboard (one JPEG
        per scene and transition, image_uri), then a small watermarked proxy video
        (proxy_uri) and viewer_url, a page a person can open to watch it. Returns the
        preview (with wait, once drawn) and estimated_credits, what render_preview
        would cost. Nothing is charged."""
        preview = await client.previews.create(script, metadata=metadata)
        if not wait:
            return preview.to_dict()
        return await drawn(preview.preview_id, timeout_seconds, ctx)

    @server.tool()
    @explained
    async def preview_template(
        template_id: str,
        ctx: Context,
        variables: Variables | None = None,
        version: int | None = None,
        wait: bool = True,
        timeout_seconds: float = 300,
    ) -> dict[str, Any]:
        """Preview a template filled with `variables`, for free, as preview_script."""
        preview = await client.previews.create_from_template(
            template_id, variables, version=version
        )
        if not wait:
            return preview.to_dict()
        return await drawn(preview.preview_id, timeout_seconds, ctx)

    @server.tool()
    @explained
    async def get_preview(preview_id: str) -> dict[str, Any]:
        """A preview's status, storyboard, proxy_uri, viewer_url and estimated_credits."""
        return (await client.previews.get(preview_id)).to_dict()

    @server.tool()
    @explained
    async def render_preview(
        preview_id: str,
        ctx: Context,
        wait: bool = True,
        timeout_seconds: float = 600,
        metadata: Metadata | None = None,
    ) -> dict[str, Any]:
        """Render a preview's script for real (charged like render_script; works
        whatever the preview's status, until it expires). Waits as render_script."""
        submission = await client.previews.render(preview_id, metadata=metadata)
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
        status: str | None = None,
        page: int = 1,
        limit: int = 20,
        metadata: dict[str, str | int | float | bool] | None = None,
    ) -> dict[str, Any]:
        """The account's jobs, newest first: a page of `limit` (1-100) with the total.
        `status`: queued, processing, completed, failed or cancelled. `metadata`: one
        key and value, e.g. {"order": 42}: only the jobs whose metadata has it."""
        found = await client.jobs.list(page=page, limit=limit, status=status, metadata=metadata)
        return found.to_dict()

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
    async def upload_asset(path: str) -> dict[str, Any]:
        """Upload the file at `path` (on the machine this server runs on) to the media
        library; returns the asset, whose id a script names as `src` (or `font_family`
        for a font). The same content uploaded again is the same asset."""
        try:
            (asset,) = await client.assets.upload(path)
        except OSError as error:
            raise ToolError(f"{path}: {error.strerror or error}") from error
        return asset.to_dict()

    @server.tool()
    @explained
    async def list_assets(
        type: str | None = None, page: int = 1, limit: int = 20
    ) -> dict[str, Any]:
        """The media library, newest first: a page of `limit` (1-100) with the total and
        the storage used. `type`: image, video, audio or font."""
        return (await client.assets.list(page=page, limit=limit, type=type)).to_dict()

    @server.tool()
    @explained
    async def get_asset(asset_id: str) -> dict[str, Any]:
        """An asset: its name, type, size, dimensions or duration, and sha256."""
        return (await client.assets.get(asset_id)).to_dict()

    @server.tool()
    @explained
    async def delete_asset(asset_id: str) -> dict[str, Any]:
        """Delete an asset and its file (refused with ASSET_IN_USE while a queued or
        processing job uses it)."""
        return (await client.assets.delete(asset_id)).to_dict()

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


def reporter(ctx: Context) -> Callable[[Event], Awaitable[None]]:
    """Reports a job's or a preview's events to the agent as MCP progress."""
    last = 0.0

    async def report(event: Event) -> None:
        nonlocal last
        shown = _progress_of(event, last)
        if shown is not None:
            last = shown[0]
            await ctx.report_progress(*shown)

    return report


def _progress_of(event: Event, last: float) -> tuple[float, float, str] | None:
    """(progress, total, message) of an MCP progress notification: percent and stage."""
    if isinstance(event, ErrorEvent):
        return 100.0, 100.0, f"{event.code}: {event.message}"
    if event.final:
        return 100.0, 100.0, "complete"
    if isinstance(event, ProgressEvent):
        return round(event.progress * 100, 1), 100.0, event.stage
    if isinstance(event, StoryboardEvent):
        return last, 100.0, "storyboard_ready"
    return None  # an export's change: not the render's progress


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
