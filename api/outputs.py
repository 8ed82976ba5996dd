"""Serving outputs like a CDN, and deleting them.

`GET`/`HEAD /outputs/{name}` need no key (the name is the job's random UUID) and answer
what a browser's `<video>` and a cache expect: `Content-Length`, `ETag`,
`Last-Modified`, `Accept-Ranges: bytes`, a single `Range` as 206 (several ranges: 416,
as aiohttp's file server answers), `If-None-Match`/`If-Modified-Since` as 304, and 416
for a range past the end.

- Local folder: aiohttp's `FileResponse` (sendfile: the kernel copies the file to the
  socket).
- S3: by default a 302 to a presigned URL of the object (an hour), so the bytes never
  pass through the API; `PHANTOMFLOW_S3_SERVE=proxy` streams them through instead (for
  a store clients cannot reach). docs/operations.md has the measurements behind the
  default.

A name whose job's output was deleted answers 410 Gone; any other missing name 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from phantomflow.adapters.storage import (
    Storage,
    StoredObject,
    content_type_of,
    poster_key,
    render_key,
)
from phantomflow.api.errors import ApiError, not_found
from phantomflow.api.requests import job_id_of, principal_of
from phantomflow.api.services import Services, services_of
from phantomflow.domain.errors import IllegalJobTransition, JobNotFound
from phantomflow.domain.jobs import RenderJob

routes = web.RouteTableDef()

CACHE_CONTROL = "public, max-age=3600"
PRESIGNED_SECONDS = 3600
_OUTPUT_NAME = re.compile(r"([0-9a-f-]{36})\.(?:mp4|jpg)")


@routes.get("/outputs/{name}")
async def download_output(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    served = await serve_object(request, name)
    if served is None:
        raise await _missing(services_of(request), name)
    return served


async def serve_object(
    request: web.Request, key: str, cache_control: str = CACHE_CONTROL
) -> web.StreamResponse | None:
    """The stored object `key` as this module serves outputs (a preview's files and
    assets too, the latter `private`: they are read with a key); None when there is no
    such object."""
    services = services_of(request)
    storage = services.runtime.storage
    path = storage.local_path(key)
    if path is not None:
        return web.FileResponse(
            path, headers={"Content-Type": content_type_of(key), "Cache-Control": cache_control}
        )
    found = await services.call(storage.stat, key)
    if found is None:
        return None
    if request.method == "GET" and services.runtime.settings.s3_serve == "redirect":
        url = await services.call(storage.presigned_url, key, PRESIGNED_SECONDS)
        if url is not None:
            raise web.HTTPFound(url, headers={"Cache-Control": "private, max-age=60"})
    return await _proxy(request, services, storage, found, cache_control)


async def _missing(services: Services, name: str) -> ApiError:
    """410 when the job's output was deleted, else 404."""
    matched = _OUTPUT_NAME.fullmatch(name)
    if matched:
        try:
            job = await services.call(services.runtime.app.get_job, UUID(matched.group(1)))
        except (JobNotFound, ValueError):
            job = None
        if job is not None and job.output_deleted:
            return ApiError.of("OUTPUT_DELETED", "This job's output has been deleted.")
    return not_found("No such output.")


def _headers(found: StoredObject, cache_control: str = CACHE_CONTROL) -> dict[str, str]:
    return {
        "ETag": found.etag,
        "Last-Modified": format_datetime(found.last_modified.astimezone(UTC), usegmt=True),
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control,
    }


def _not_modified(request: web.Request, found: StoredObject) -> bool:
    if request.if_none_match is not None:
        wanted = {tag.value for tag in request.if_none_match}
        return "*" in wanted or found.etag.strip('"').removeprefix("W/") in wanted
    since = request.if_modified_since
    return since is not None and found.last_modified.replace(microsecond=0) <= since


def _range(request: web.Request, found: StoredObject) -> tuple[int, int] | None:
    """(first, last) byte of the one range asked for, or None for the whole file.
    Raises 416 for several ranges or one past the end."""
    if "Range" not in request.headers:
        return None
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range != found.etag:
        if_range_date = request.if_range
        if if_range_date is None or found.last_modified.replace(microsecond=0) > if_range_date:
            return None  # the client's copy is stale: send it the whole file
    try:
        asked = request.http_range
    except ValueError:
        raise _unsatisfiable(found) from None
    start, stop = asked.start, asked.stop
    size = found.size
    if start is None and stop is None:
        return None
    if start is not None and start < 0:  # bytes=-n: the last n bytes
        start, stop = max(size + start, 0), size
    start = start or 0
    stop = size if stop is None else min(stop, size)
    if start >= size or start >= stop:
        raise _unsatisfiable(found)
    return start, stop - 1


def _unsatisfiable(found: StoredObject) -> ApiError:
    return ApiError.of(
        "RANGE_NOT_SATISFIABLE",
        f"The file has {found.size} bytes; ask for one range within them.",
        headers={"Content-Range": f"bytes */{found.size}", **_headers(found)},
    )


async def _proxy(
    request: web.Request,
    services: Services,
    storage: Storage,
    found: StoredObject,
    cache_control: str = CACHE_CONTROL,
) -> web.StreamResponse:
    headers = _headers(found, cache_control)
    if _not_modified(request, found):
        return web.Response(status=304, headers=headers)
    wanted = _range(request, found)
    first, last = wanted if wanted is not None else (0, found.size - 1)
    response = web.StreamResponse(status=200 if wanted is None else 206, headers=headers)
    response.content_type = found.content_type
    response.content_length = last - first + 1
    if wanted is not None:
        response.headers["Content-Range"] = f"bytes {first}-{last}/{found.size}"
    await response.prepare(request)
    if request.method == "HEAD" or found.size == 0:
        return response
    chunks = await services.call(storage.read, found.key, first, last)
    # The next chunk is read (in the pool) while this one is written: reading S3 and
    # writing to the client overlap instead of taking turns.
    upcoming: asyncio.Future[bytes] | None = None
    try:
        chunk = await services.call(next, chunks, b"")
        while chunk:
            upcoming = asyncio.ensure_future(services.call(next, chunks, b""))
            await response.write(chunk)
            chunk = await upcoming
            upcoming = None
    finally:
        if upcoming is not None:  # the client went away mid-write: let the read finish
            with contextlib.suppress(Exception):
                await asyncio.shield(upcoming)
        await services.call(chunks.close)  # type: ignore[attr-defined]
    await response.write_eof()
    return response


@routes.delete("/api/jobs/{job_id}/output")
async def delete_output(request: web.Request) -> web.Response:
    """Delete a finished job's MP4 and poster; the job, its ledger and history stay."""
    principal = principal_of(request)
    job_id = str(job_id_of(request))
    services = services_of(request)
    runtime = services.runtime
    doc = await services.call(
        runtime.jobs.current, str(principal.account_id), job_id, principal.is_sandbox
    )
    if doc is None:
        raise not_found(f"No job {job_id}.")
    try:
        job = await services.call(runtime.app.delete_output, UUID(job_id))
    except IllegalJobTransition:
        job = await services.call(runtime.app.get_job, UUID(job_id))
        if not job.output_deleted:  # not completed: nothing to delete
            raise ApiError.of(
                "JOB_NOT_COMPLETED",
                f"Job {job_id} is {job.status}: it has no output to delete.",
            ) from None
    # Recorded first, then removed: a removal that fails is retried by DELETE again.
    for key in (render_key(job.id), poster_key(job.id)):
        await services.call(runtime.storage.delete, key)
    deleted_at = await services.call(_deleted_at, services, job)
    body: dict[str, Any] = {"job_id": job_id, "deleted": True, "output_deleted_at": deleted_at}
    return web.json_response(body)


def _deleted_at(services: Services, job: RenderJob) -> str:
    for event in services.runtime.app.events.get(job.id, desc=True):
        if isinstance(event, RenderJob.OutputDeleted):
            moment: datetime = event.timestamp
            return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raise JobNotFound(f"job {job.id} has no deleted output")
