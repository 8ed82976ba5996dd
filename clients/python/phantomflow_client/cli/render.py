"""`render SCRIPT [--out FILE]` and `jobs watch JOB_ID`: a job followed over SSE with a
live progress bar, ending the moment its final event arrives."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from phantomflow_client import AsyncClient, Client
from phantomflow_client._client import settings
from phantomflow_client.cli._common import (
    FAILED,
    UsageError,
    answer,
    client_of,
    console,
    handles_errors,
    load_json_file,
    print_json,
    server_options,
)
from phantomflow_client.cli.extras import add_render_extras, extras_of
from phantomflow_client.cli.progress import ProgressDisplay
from phantomflow_client.errors import PhantomFlowError
from phantomflow_client.models import CompleteEvent, ErrorEvent, JobEvent, Quote, Submission

# A server of one's own for one command: an async context manager giving (url, api_key).
# The server's `phantomflow` passes one that starts the embedded system.
LocalServer = Callable[[], AbstractAsyncContextManager[tuple[str, str]]]


def add_render(commands: argparse._SubParsersAction, local_server: LocalServer | None) -> None:
    where = (
        "the server at --url or $PHANTOMFLOW_URL; without either, an embedded server "
        "started for this one render (files under $PHANTOMFLOW_DATA_DIR)"
        if local_server is not None
        else "the server at --url or $PHANTOMFLOW_URL"
    )
    render = commands.add_parser(
        "render",
        parents=[server_options()],
        help="render a script file to an MP4, with a live progress bar",
        description=f"Submit a movie script, follow the job live (SSE) and save the MP4. "
        f"Runs on {where}.",
    )
    render.add_argument("script", type=Path, help="the movie script, a JSON file")
    render.add_argument(
        "--out",
        type=Path,
        default=Path("out.mp4"),
        help="where to save the video (default: out.mp4)",
    )
    render.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="stop waiting after this many seconds (default 600; the job goes on)",
    )
    render.add_argument(
        "--dry-run",
        action="store_true",
        help="only check the script and say what it would cost; render nothing",
    )
    add_render_extras(render)
    render.set_defaults(run=functools.partial(run_render, local_server=local_server))


@handles_errors
def run_render(args: argparse.Namespace, local_server: LocalServer | None) -> int:
    script = load_json_file(str(args.script))
    if not isinstance(script, dict):
        raise UsageError(f"{args.script} must hold a JSON object (a movie script)")
    return asyncio.run(_render(args, script, local_server))


async def _render(args: argparse.Namespace, script: dict, local_server: LocalServer | None) -> int:
    if local_server is not None and not (args.url or os.environ.get("PHANTOMFLOW_URL")):
        async with local_server() as (url, key):
            return await _render_on(url, key, args, script)
    key, url = settings(args.api_key, args.url)
    if not key:
        raise UsageError("no API key: set PHANTOMFLOW_API_KEY (or pass --api-key)")
    return await _render_on(url, key, args, script)


async def _render_on(url: str, key: str, args: argparse.Namespace, script: dict) -> int:
    out = console()
    extras = extras_of(args)
    async with AsyncClient(key, base_url=url) as client:
        if args.dry_run:
            print_quote(await client.renders.quote(script, **extras), args.json)
            return 0
        submission = await client.renders.create(script, **extras)
        if not args.json:
            out.print(
                f"job {submission.job_id} queued: {credits(submission.estimated_credits)} "
                f"charged, {submission.credits_remaining} left"
            )
        outcome = await _follow(client, submission.job_id, args.timeout)
        if isinstance(outcome, ErrorEvent):
            out.print(f"[red]job {submission.job_id} {_ended(outcome)}:[/] {outcome.message}")
            return FAILED
        saved = await client.jobs.download(outcome, args.out)
        if args.json:
            print_json(await client.jobs.get(submission.job_id))
        else:
            out.print(
                f"rendered {outcome.duration_seconds:.2f} s for "
                f"{credits(outcome.credits_used)} -> {saved.resolve()}"
            )
    return 0


async def _follow(client: AsyncClient, job_id: str, timeout: float) -> CompleteEvent | ErrorEvent:
    """Follow to the final event, showing progress; returns the moment it arrives."""
    with ProgressDisplay(job_id) as display:
        try:
            async with asyncio.timeout(timeout):
                async for event in client.jobs.follow(job_id):
                    display.update(event)
                    if isinstance(event, CompleteEvent | ErrorEvent):
                        return event
        except TimeoutError:
            raise PhantomFlowError(
                f"job {job_id} did not finish within {timeout:g} s; it goes on "
                f"(phantomflow jobs watch {job_id})"
            ) from None
    raise PhantomFlowError(f"the event stream of job {job_id} ended without an outcome")


def print_quote(quote: Quote, as_json: bool) -> None:
    """A dry run's answer: valid, how long, what it would cost and leave."""
    if as_json:
        print_json(quote)
        return
    console().print(
        f"valid: {quote.duration_seconds:g} s of video for "
        f"{credits(quote.estimated_credits)}, {quote.credits_remaining} would be left"
    )


def submitted(args: argparse.Namespace, submission: Submission) -> int:
    """After a submission: with --wait, follow the job with progress; else say it is
    queued (or print it, with --json)."""
    if args.wait:
        args.job_id, args.timeout = submission.job_id, None
        return run_watch(args)
    return answer(
        args,
        submission,
        f"job {submission.job_id} queued: {credits(submission.estimated_credits)} charged",
    )


def add_wait(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--wait", action="store_true", help="follow the job until it ends, with progress"
    )
    command.add_argument(
        "--dry-run",
        action="store_true",
        help="only check and price the render now (nothing is charged or queued)",
    )


def credits(amount: int) -> str:
    return f"{amount} credit" if amount == 1 else f"{amount} credits"


def _ended(event: ErrorEvent) -> str:
    return "was cancelled" if event.code == "CANCELLED" else f"failed ({event.code})"


# --- jobs watch -------------------------------------------------------------------------


@handles_errors
def run_watch(args: argparse.Namespace) -> int:
    with client_of(args) as client:
        if args.json:
            return _watch_as_json(client, args.job_id, args.timeout)
        with ProgressDisplay(args.job_id) as display:
            job = client.jobs.wait(args.job_id, timeout=args.timeout, on_event=display.update)
    out = console()
    if job.status == "completed":
        out.print(f"job {job.job_id} completed: {job.output_uri}")
        return 0
    reason = f"{job.error.code}: {job.error.message}" if job.error else job.status
    out.print(f"[red]job {job.job_id} {job.status}:[/] {reason}")
    return FAILED


def _watch_as_json(client: Client, job_id: str, timeout: float | None) -> int:
    """One JSON line per event (name, id and the event's data), for scripts."""
    last: JobEvent | None = None
    for event in client.jobs.follow(job_id, timeout=timeout):
        print_json_line({"event": event.name, "id": event.id, "data": event.raw})
        last = event
    return 0 if isinstance(last, CompleteEvent) else FAILED


def print_json_line(data: dict) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()
