"""Live progress over Server-Sent Events, fed by the event store and resumable without loss.

`GET /api/jobs/{job_id}/progress` streams one job (the contract's `progress`, `complete`
and `error` events) and closes after the last; `GET /api/events` streams every job
event of the account and stays open. Every event's `id:` is its position in the event
store's application sequence, so a client that reconnects with `Last-Event-ID` gets the
events after that position: exactly the ones it missed, none twice.

Each stream registers with this process's event hub (`api/event_hub.py`) first, then
reads its history from the store, then forwards live events past the last position it
sent.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiohttp import web
from aiohttp.web_log import AccessLogger

from phantomflow.api.errors import invalid_request, not_found
from phantomflow.api.event_hub import EventHub, Item, Watcher
from phantomflow.api.requests import job_id_of, principal_of, public_base
from phantomflow.api.services import REQUEST_ID, Services, services_of
from phantomflow.domain.jobs import CANCELLED, COMPLETED, FAILED, RenderJob
from phantomflow.projections.job_view import attempt_view, changes, metadata_of, output_url
from phantomflow.projections.timestamps import iso

routes = web.RouteTableDef()

# Events that end a job's stream.
FINAL_EVENTS = ("complete", "error")

# What a stream sends for one of its events (name, data), if anything.
ToSse = Callable[[Item], tuple[str, dict[str, Any]] | None]


HUB = web.AppKey("event_hub", EventHub)


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access log without the API keys that `apiKey` query parameters carry."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request is not None and "apiKey" in request.query:
            request = request.clone(rel_url=request.rel_url.update_query(apiKey="REDACTED"))
        super().log(request, response, time)


def install(app: web.Application, services: Services) -> EventHub:
    """Add the SSE routes and one event hub to `app`, started and stopped with it."""
    hub = EventHub(services.runtime.app)
    app[HUB] = hub
    app.add_routes(routes)

    async def start(_: web.Application) -> None:
        hub.start(asyncio.get_running_loop())

    async def end_streams(_: web.Application) -> None:
        hub.close_watchers()

    async def stop(_: web.Application) -> None:
        hub.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(end_streams)
    app.on_cleanup.append(stop)
    return hub


# --- the events as clients see them ---------------------------------------------------


def progress_event(
    event: Any, base: str, metadata: dict[str, Any] | None
) -> tuple[str, dict[str, Any]] | None:
    """A job event as the contract's SSE event (name, data), or None if it has none:
    what the event changes in the job's public document (`projections/job_view.py`),
    or an export's change. `complete` and `error` carry the job's `metadata` too."""
    exported = export_event(event)
    if exported is not None:
        return exported
    change = changes(event)
    if change is None:
        return None
    status = change.get("status")
    if status == COMPLETED:
        return "complete", {
            "outputUri": output_url(base, change["output_location"]),
            "creditsUsed": change["credits_used"],
            "durationSeconds": change["duration_seconds"],
            "fileSizeBytes": change["file_size_bytes"],
            "metadata": metadata or {},
        }
    if status in (FAILED, CANCELLED):
        return "error", {**change["error"], "metadata": metadata or {}}
    # A queued job has no stage yet: the stream names its status instead.
    data = {
        "progress": change["progress"],
        "stage": change["stage"] or status,
        "timestamp": change["updated_at"],
    }
    # The report that ends `downloading` says how many sources the media cache had.
    media_cache = getattr(event, "media_cache", None)
    if media_cache is not None:
        data["mediaCache"] = media_cache
    return "progress", data


def export_event(event: Any) -> tuple[str, dict[str, Any]] | None:
    """An export's change as an `export` event; `index` is its place in the job's
    `exports`."""
    data: dict[str, Any]
    if isinstance(event, RenderJob.ExportStarted):
        data = {"status": "running", "attempt": event.attempt}
    elif isinstance(event, RenderJob.ExportSucceeded):
        data = {
            "status": "succeeded",
            "attempt": event.attempt,
            "location": event.location,
            "bytes": event.bytes,
            "durationMs": event.duration_ms,
        }
    elif isinstance(event, RenderJob.ExportFailed):
        next_at = event.next_attempt_at
        data = {
            "status": "failed" if event.final else "pending",
            "attempt": event.attempt,
            "error": {"code": event.code, "message": event.message},
            "final": event.final,
            "nextAttemptAt": iso(next_at) if next_at else None,
        }
    elif isinstance(event, RenderJob.ExportSkipped):
        data = {"status": "skipped", "error": {"code": event.code, "message": event.message}}
    else:
        return None
    return "export", {"index": event.index, **data, "timestamp": iso(event.timestamp)}


def ends_stream(event: Any, has_exports: bool) -> bool:
    """Whether a job's stream closes after this event: its failure or cancellation, its
    completion, or, for a job with exports, the settling of the last export."""
    if isinstance(event, RenderJob.Failed | RenderJob.Cancelled | RenderJob.ExportsSettled):
        return True
    return isinstance(event, RenderJob.Completed) and not has_exports


def account_event(item: Item, base: str) -> tuple[str, dict[str, Any]] | None:
    """A job event on the account stream: the same events with `jobId` and `timestamp`,
    and `webhook` for each delivery attempt."""
    event = item.event
    job_id = str(event.originator_id)
    if isinstance(event, RenderJob.WebhookAttempted):
        attempt = attempt_view(event)
        return "webhook", {
            "jobId": job_id,
            "attempt": attempt["attempt"],
            "trigger": attempt["trigger"],
            "statusCode": attempt["status_code"],
            "error": attempt["error"],
            "durationMs": attempt["duration_ms"],
            "delivered": attempt["delivered"],
            "timestamp": attempt["attempted_at"],
        }
    mapped = progress_event(event, base, item.metadata)
    if mapped is None:
        return None
    name, data = mapped
    return name, {"jobId": job_id, **data, "timestamp": iso(event.timestamp)}


def frame(position: int, name: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, separators=(",", ":"))
    return f"id: {position}\nevent: {name}\ndata: {payload}\n\n".encode()


HEARTBEAT = b": keep-alive\n\n"


# --- routes -----------------------------------------------------------------------------


# What a Last-Event-ID may be: ASCII digits, few enough for a 64-bit position. Empty is
# no id at all, as in the SSE standard (an EventSource never sends it empty).
LAST_EVENT_ID_PATTERN = re.compile(r"[0-9]{0,18}")


def last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not LAST_EVENT_ID_PATTERN.fullmatch(raw):
        raise invalid_request(
            "Last-Event-ID must be the id of an event this API sent", path="Last-Event-ID"
        )
    return int(raw) if raw else None


async def open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: pass events through as they come
            "X-Request-Id": request[REQUEST_ID],
        }
    )
    await response.prepare(request)
    return response


async def follow(
    response: web.StreamResponse,
    watcher: Watcher,
    last: int,
    heartbeat: float,
    to_sse: ToSse,
    ends: Callable[[Any], bool] | None,
) -> None:
    """Send live events past position `last` until one that `ends` the stream, the
    client leaves (the write fails or the handler is cancelled), or the server stops."""
    while True:
        items = await watcher.next(heartbeat)
        if not items and not watcher.closed and not watcher.overflowed:
            await response.write(HEARTBEAT)
            continue
        for item in items:
            if item.position <= last:
                continue
            last = item.position
            mapped = to_sse(item)
            if mapped is not None:
                await response.write(frame(item.position, *mapped))
            if ends is not None and ends(item.event):
                return
        if watcher.closed or watcher.overflowed:
            return


@dataclass(frozen=True)
class StreamOf:
    """How one job's (or preview's) events are streamed: what each becomes, and which
    one ends the stream."""

    to_sse: ToSse
    ends: Callable[[Any], bool]


@routes.get("/api/jobs/{job_id}/progress")
async def job_progress(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    job_id = job_id_of(request)
    base = public_base(request)

    def stream_of(first: Item) -> StreamOf | None:
        submitted = first.event
        if (
            not isinstance(submitted, RenderJob.Submitted)
            or submitted.account_id != principal.account_id
            or submitted.sandbox != principal.is_sandbox
        ):
            return None
        has_exports = bool(getattr(submitted, "exports", None))
        metadata = metadata_of(submitted)
        return StreamOf(
            lambda item: progress_event(item.event, base, metadata),
            lambda event: ends_stream(event, has_exports),
        )

    return await one_stream(request, job_id, stream_of, f"No job {job_id}.")


async def one_stream(
    request: web.Request,
    aggregate_id: UUID,
    stream_of: Callable[[Item], StreamOf | None],
    missing: str,
) -> web.StreamResponse:
    """The stream of one job (or preview) until the event that ends it: its history so
    far (from `Last-Event-ID`), then its live events. `stream_of(its first event)` says
    how, or is None when it is not the caller's: 404 `missing`."""
    after = last_event_id(request)
    services = services_of(request)
    hub = request.app[HUB]
    watcher = hub.watch_job(aggregate_id)  # before reading the history: see the module doc
    try:
        history = await services.call(hub.job_history, aggregate_id)
        stream = stream_of(history[0]) if history else None
        if stream is None:
            raise not_found(missing)
        sent: list[tuple[int, str, dict[str, Any]]] = []
        ended = False
        for item in history:
            mapped = stream.to_sse(item)
            if mapped is not None:
                sent.append((item.position, *mapped))
            ended = ended or stream.ends(item.event)
        if after is None:
            if ended:
                # It has ended: its outcome (and its exports'), at once.
                sent = [e for e in sent if e[1] in (*FINAL_EVENTS, "export")]
        elif ended and after >= sent[-1][0]:
            # The client has seen the end. 204 tells an EventSource to stop reconnecting.
            return web.Response(status=204)
        else:
            sent = [e for e in sent if e[0] > after]
        last = max(history[-1].position, after or 0)
        response = await open_stream(request)
        try:
            for event in sent:
                await response.write(frame(*event))
            if not ended:
                await follow(response, watcher, last, hub.heartbeat, stream.to_sse, stream.ends)
        except ConnectionResetError:
            pass  # the client left
        return response
    finally:
        hub.unwatch(watcher)


@routes.get("/api/events")
async def account_events(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    after = last_event_id(request)
    services = services_of(request)
    hub = request.app[HUB]
    base = public_base(request)
    account_id = principal.account_id
    watcher = hub.watch_account(account_id, principal.is_sandbox)
    try:
        response = await open_stream(request)
        last = 0
        try:
            if after is not None:
                # Everything of the account's jobs after the client's last event, read
                # from the store in batches, then live events past the store's head.
                head = await services.call(hub.recorder.max_notification_id) or 0
                position = after
                while position < head:
                    items, position = await services.call(
                        hub.account_backlog, account_id, principal.is_sandbox, position, head
                    )
                    for item in items:
                        mapped = account_event(item, base)
                        if mapped is not None:
                            await response.write(frame(item.position, *mapped))
                last = max(after, head)
            else:
                await response.write(HEARTBEAT)  # headers and a first byte, at once
            await follow(
                response,
                watcher,
                last,
                hub.heartbeat,
                lambda item: account_event(item, base),
                None,
            )
        except ConnectionResetError:
            pass
        return response
    finally:
        hub.unwatch(watcher)
