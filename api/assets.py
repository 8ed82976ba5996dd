"""Route handlers for assets: `POST/GET /api/assets`, `GET/DELETE /api/assets/{id}` and
`GET /api/assets/{id}/content` (the file, with the caller's key).

An upload is streamed: each part of the multipart body (read by
api/multipart_stream.py) is written to a spool file as it arrives, hashed on the way
(adapters/asset_files.py), never held in memory (the app's `client_max_size` applies
only to bodies read whole, which this route never does). Only when every file has
arrived and passed its probe (adapters/asset_probe.py) and the quota is known to hold
them are they stored, then recorded, all in one save (domain/asset_commands.py). A
client that goes away mid-upload, a refused file or a
quota too small leaves nothing stored and nothing recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientPayloadError, web

from phantomflow.adapters.asset_files import (
    SPOOL_IDLE_SECONDS,
    Spool,
    asset_key,
    spool_folder,
    sweep_spools,
)
from phantomflow.adapters.asset_probe import ProbedFile, UnsupportedFile, probe_file
from phantomflow.api.errors import ApiError, invalid_request, not_found
from phantomflow.api.multipart_stream import (
    CutShort,
    MalformedMultipart,
    MultipartStream,
    boundary_of,
)
from phantomflow.api.outputs import serve_object
from phantomflow.api.requests import on_callers, principal_of, public_base, query_choice, query_page
from phantomflow.api.services import SERVICES, Services, services_of
from phantomflow.domain.asset_commands import NewAsset, StorageUse
from phantomflow.domain.assets import TYPES, AssetNotFound, display_name
from phantomflow.projections.assets import public_view, view_of

routes = web.RouteTableDef()

log = logging.getLogger(__name__)

MAX_FILES = 20
FILE_FIELDS = ("file", "files")
# Read from the socket this much at a time, and write to the spool this much at once
# (one thread hop per batch): memory per upload stays around BATCH_BYTES.
READ_BYTES = 256 * 1024
BATCH_BYTES = 1024 * 1024


@dataclass
class Arrived:
    name: str
    spool: Spool
    sha256: str = ""
    probed: ProbedFile | None = None


@routes.post("/api/assets")
async def upload_assets(request: web.Request) -> web.Response:
    principal = principal_of(request)
    services = services_of(request)
    runtime = services.runtime
    if not request.body_exists:
        raise _no_files()
    if request.content_type != "multipart/form-data":
        raise ApiError(
            415,
            "INVALID_REQUEST",
            f"Content-Type must be multipart/form-data, received {request.content_type or 'none'}.",
            path="Content-Type",
        )
    use: StorageUse = await services.call(runtime.app.storage_use, principal.account_id)
    arrived: list[Arrived] = []
    stored: list[str] = []
    try:
        await _receive(request, services, use.max_file_bytes, arrived)
        if not arrived:
            raise _no_files()
        for item in arrived:
            item.probed = await _probe(services, item)
        uploads = [_new_asset(principal.account_id, item) for item in arrived]
        fresh = await _fresh_content(services, principal.account_id, principal.is_sandbox, uploads)
        # StorageLimitExceeded is answered by the error middleware (402).
        await services.call(
            runtime.app.check_storage,
            principal.account_id,
            sum(upload.size for upload in fresh.values()),
        )
        for item in arrived:
            upload = fresh.get(item.sha256)
            if upload is not None and upload.key not in stored:
                await services.call(
                    runtime.storage.put_file, upload.key, item.spool.path, move=True
                )
                stored.append(upload.key)
        # The same content twice in one request is one asset: the first file's.
        uploads = [fresh.get(upload.sha256, upload) for upload in uploads]
        assets, position = await services.call(
            runtime.app.record_assets, principal.account_id, principal.is_sandbox, uploads
        )
        # Recorded: their files are the account's now. A file stored for content that a
        # concurrent upload recorded first is nobody's, and goes.
        stored = [key for key in stored if key not in {asset.key for asset in assets}]
    finally:
        for item in arrived:
            item.spool.discard()
        for key in stored:  # stored but not recorded (refused, failed, or superseded)
            await services.call(runtime.storage.delete, key)
    await services.read_your_writes(services.runtime.assets_runner, position)
    base = public_base(request)
    return web.json_response(
        {"assets": [public_view(view_of(asset), base) for asset in assets]}, status=201
    )


def _no_files() -> ApiError:
    return ApiError.of(
        "NO_FILES",
        f"No file in the request: send one `file` or up to {MAX_FILES} `files` as "
        "multipart/form-data.",
    )


async def _receive(
    request: web.Request, services: Services, max_file_bytes: int, arrived: list[Arrived]
) -> None:
    """Spool every file part of the body, in order, into `arrived` (appended as each
    starts, so the caller discards even a half-written one)."""
    folder = spool_folder(services.runtime.storage)
    try:
        reader = MultipartStream(request.content, boundary_of(request.headers["Content-Type"]))
        while (part := await reader.next_part()) is not None:
            if part.name not in FILE_FIELDS:
                field = str(part.name)[:100]
                raise invalid_request(
                    f"Unknown form field {field!r}: send `file` or `files`.", path=field
                )
            if len(arrived) == MAX_FILES:
                raise ApiError.of(
                    "TOO_MANY_FILES",
                    f"At most {MAX_FILES} files per request.",
                    limit=MAX_FILES,
                )
            name = display_name(part.filename)
            item = Arrived(name, await services.compute(Spool, folder))
            arrived.append(item)
            await _spool(services, reader, item, max_file_bytes)
    except (CutShort, ClientPayloadError, ConnectionError, asyncio.IncompleteReadError) as lost:
        raise invalid_request(f"The upload was cut short: {lost}") from None
    except MalformedMultipart as malformed:
        raise invalid_request(f"The multipart body is malformed: {malformed}") from None


async def _spool(
    services: Services, reader: MultipartStream, item: Arrived, max_file_bytes: int
) -> None:
    """Write the part to its spool in batches: each batch hashed on a CPU thread and
    written on an I/O thread at once (both release the GIL), while the next batch is
    read from the socket."""
    batch: list[bytes | memoryview] = []
    batched = received = 0
    in_flight: asyncio.Future[None] | None = None
    try:
        while pieces := await reader.read_pieces():
            size = sum(len(piece) for piece in pieces)
            received += size
            if received > max_file_bytes:
                raise ApiError.of(
                    "FILE_TOO_LARGE",
                    f"{item.name} is larger than the plan's limit of {max_file_bytes} bytes "
                    "per file.",
                    name=item.name,
                    limit_bytes=max_file_bytes,
                )
            batch.extend(pieces)
            batched += size
            if batched >= BATCH_BYTES:
                if in_flight is not None:
                    await in_flight
                in_flight = _write(services, item.spool, b"".join(batch))
                batch, batched = [], 0
    finally:
        if in_flight is not None:  # never leave a write running on a spool being discarded
            await asyncio.gather(in_flight, return_exceptions=True)
    if in_flight is not None:
        await in_flight
    if batch:
        await _write(services, item.spool, b"".join(batch))
    item.sha256 = await services.compute(item.spool.finish)
    if item.spool.size == 0:
        raise ApiError.of("EMPTY_FILE", f"{item.name} is empty.", name=item.name)


def _write(services: Services, spool: Spool, data: bytes) -> asyncio.Future[None]:
    loop = asyncio.get_running_loop()
    hashed = loop.run_in_executor(services.cpu, spool.hash, data)
    stored = loop.run_in_executor(services.executor, spool.store, data)
    return asyncio.gather(hashed, stored)  # type: ignore[return-value]


async def _probe(services: Services, item: Arrived) -> ProbedFile:
    ffmpeg = services.runtime.ffmpeg_exe
    try:
        return await services.compute(probe_file, ffmpeg, item.spool.path)
    except UnsupportedFile as refused:
        raise ApiError.of(
            "UNSUPPORTED_FILE_TYPE",
            f"{item.name} is not a file we take: {refused.reason}. Upload images (PNG, "
            "JPEG, GIF, WebP, BMP), video, audio or fonts (TTF, OTF, WOFF).",
            name=item.name,
        ) from None


def _new_asset(account_id: Any, item: Arrived) -> NewAsset:
    probed = item.probed
    assert probed is not None
    asset_id = uuid.uuid4()
    return NewAsset(
        asset_id=asset_id,
        name=item.name,
        sha256=item.sha256,
        size=item.spool.size,
        key=asset_key(account_id, item.sha256, asset_id, probed.extension),
        type=probed.type,
        mime_type=probed.mime_type,
        width=probed.width,
        height=probed.height,
        duration_seconds=probed.duration_seconds,
    )


async def _fresh_content(
    services: Services, account_id: Any, sandbox: bool, uploads: list[NewAsset]
) -> dict[str, NewAsset]:
    """The uploads of content the account does not hold yet in this key mode, the first
    of each content, by sha256: what must be stored, and what needs room."""
    fresh: dict[str, NewAsset] = {}
    for upload in uploads:
        if upload.sha256 in fresh:
            continue
        held = await services.call(
            services.runtime.app.stored_asset, account_id, sandbox, upload.sha256
        )
        if held is None:
            fresh[upload.sha256] = upload
    return fresh


@routes.get("/api/assets")
async def list_assets(request: web.Request) -> web.Response:
    principal = principal_of(request)
    page, limit = query_page(request)
    kind = query_choice(request, "type", TYPES)
    services = services_of(request)
    runtime = services.runtime
    found = await services.call(
        runtime.assets.page, str(principal.account_id), principal.is_sandbox, kind, page, limit
    )
    use: StorageUse = await services.call(runtime.app.storage_use, principal.account_id)
    base = public_base(request)
    return web.json_response(
        {
            "assets": [public_view(doc, base) for doc in found.assets],
            "total": found.total,
            "page": page,
            "limit": limit,
            "storage": {"used_bytes": use.used_bytes, "limit_bytes": use.limit_bytes},
        }
    )


async def _caller_asset(request: web.Request) -> Any:
    app = services_of(request).runtime.app
    return await on_callers(request, app.get_asset, "asset_id", AssetNotFound)


@routes.get("/api/assets/{asset_id}")
async def get_asset(request: web.Request) -> web.Response:
    asset = await _caller_asset(request)
    return web.json_response(public_view(view_of(asset), public_base(request)))


@routes.get("/api/assets/{asset_id}/content")
async def asset_content(request: web.Request) -> web.StreamResponse:
    asset = await _caller_asset(request)
    # Read with a key: no shared cache may keep it (api/dashboard.py makes it no-store).
    served = await serve_object(request, asset.key, "private, max-age=3600")
    if served is None:
        raise not_found(f"The file of asset {asset.ref} is missing.")
    return served


@routes.delete("/api/assets/{asset_id}")
async def delete_asset(request: web.Request) -> web.Response:
    """Recorded first, then the file removed (its own: no other asset shares it): a
    removal that fails leaves an orphan file, never a broken asset."""
    services = services_of(request)
    runtime = services.runtime
    asset, position = await on_callers(request, runtime.app.delete_asset, "asset_id", AssetNotFound)
    await services.call(runtime.storage.delete, asset.key)
    await services.read_your_writes(runtime.assets_runner, position)
    return web.json_response({"id": asset.ref, "deleted": True})


async def sweep_abandoned_spools(app: web.Application) -> AsyncIterator[None]:
    """While the app runs: every so often, remove the spools of uploads that an API
    process killed mid-upload left behind (a live upload touches its spool with every
    batch; see SPOOL_IDLE_SECONDS)."""

    async def sweep_forever() -> None:
        folder = spool_folder(app[SERVICES].runtime.storage)
        while True:
            try:
                removed = await asyncio.to_thread(sweep_spools, folder, time.time())
                if removed:
                    log.info("removed %d abandoned upload spool(s) from %s", removed, folder)
            except OSError:
                log.exception("sweeping the upload spools of %s failed", folder)
            await asyncio.sleep(SPOOL_IDLE_SECONDS / 4)

    task = asyncio.create_task(sweep_forever())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
