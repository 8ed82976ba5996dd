"""Route handlers for previews: make one, read it, follow it, delete it, render it.

- `POST /api/previews` takes a movie script (the body of `POST /api/render`) or a
  template and its variables (the body of `POST /api/render/template`), validated exactly
  as they are for a render, and answers 201 with the preview, queued. Nothing is
  charged; the plan's previews a minute are counted (`previews_per_minute`), apart from
  its requests a minute.
- `GET /api/previews/{preview_id}` reads the preview from its own events (a handful), so
  its storyboard shows the moment it is recorded.
- `GET /api/previews/{preview_id}/progress` streams it like a job's progress.
- `DELETE /api/previews/{preview_id}` deletes it and its files.
- `POST /api/previews/{preview_id}/render` submits its script as a render: the same
  checks, charge and 202 as `POST /api/render` (and `?dry_run=true`), the job's `origin`
  naming the preview.

Another account's preview, an unknown or malformed id, and a deleted preview all answer
404 NOT_FOUND; sandbox keys see sandbox previews only, live keys live ones only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiohttp import web
from marshmallow import ValidationError, fields

from phantomflow.api.errors import ApiError, not_found, schema_error
from phantomflow.api.event_hub import Item
from phantomflow.api.requests import principal_of, public_base, read_json
from phantomflow.api.schemas import (
    COMPONENT,
    Metadata,
    StrictSchema,
    first_error,
    load_render_request,
)
from phantomflow.api.services import REQUEST_ID, Services, services_of
from phantomflow.api.sse import StreamOf, one_stream
from phantomflow.api.submissions import check_webhook_address, submit
from phantomflow.api.template_schemas import load_body
from phantomflow.api.templates import template_origin, template_script
from phantomflow.domain import pricing
from phantomflow.domain.application import Principal
from phantomflow.domain.previews import EXPIRED, Preview, PreviewNotFound, parse_preview_ref
from phantomflow.domain.script import MovieScript
from phantomflow.projections.timestamps import iso

routes = web.RouteTableDef()


def preview_expired(preview: Preview) -> ApiError:
    return ApiError.of(
        "PREVIEW_EXPIRED",
        f"Preview {preview.ref} expired at {iso(preview.expires_at)}; its files are deleted.",
    )


# --- the preview as clients see it ------------------------------------------------------


def viewer_path(preview: Preview) -> str:
    """The viewer page's path: the preview's id and its token, so the id alone is not
    enough to watch it (api/preview_viewer.py serves it, and the files under it)."""
    return f"/previews/{preview.ref}/{preview.viewer_token}"


def file_url(base: str, preview: Preview, location: str) -> str:
    """Where one of the preview's files is served: under its viewer page."""
    return f"{base}{viewer_path(preview)}/{location.rsplit('/', 1)[-1]}"


def status_of(preview: Preview, now: datetime) -> str:
    return EXPIRED if not preview.is_live(now) else preview.status


def preview_view(preview: Preview, base: str, now: datetime) -> dict[str, Any]:
    """The public shape of a preview. Once it has expired its files are gone: no
    storyboard, no proxy."""
    live = preview.is_live(now)
    script = MovieScript.from_dict(preview.script)
    proxy = preview.proxy if live else None
    return {
        "preview_id": preview.ref,
        "status": status_of(preview, now),
        "progress": preview.progress,
        "stage": preview.stage,
        "storyboard": [
            {
                "scene": frame["scene"],
                "kind": frame["kind"],
                "time": frame["time"],
                "image_uri": file_url(base, preview, frame["location"]),
            }
            for frame in (preview.storyboard if live else [])
        ],
        "proxy_uri": file_url(base, preview, proxy["location"]) if proxy else None,
        "proxy": {key: value for key, value in proxy.items() if key != "location"}
        if proxy
        else None,
        "viewer_url": f"{base}{viewer_path(preview)}",
        "duration_seconds": script.duration,
        "estimated_credits": pricing.estimate(script),
        "error": preview.error,
        "metadata": preview.metadata,
        "sandbox": preview.sandbox,
        "origin": {
            key: value
            for key, value in preview.origin.items()
            if key == "channel" or key.startswith("template")
        },
        "created_at": iso(preview.created_on),
        "expires_at": iso(preview.expires_at),
    }


# --- make, read, delete -------------------------------------------------------------------


@routes.post("/api/previews")
async def create_preview(request: web.Request) -> web.Response:
    principal = principal_of(request)
    body = await read_json(request)
    if isinstance(body, dict) and "template_id" in body:
        found = await template_script(request, body)
        script, webhook_uri = found.script, found.webhook_uri
        exports, metadata = found.exports, found.metadata
        origin = template_origin(found.template)
    else:
        try:
            script, webhook_uri, exports, metadata = load_render_request(body)
        except ValidationError as error:
            path, message = first_error(error.messages)
            raise schema_error(path, message) from None
        origin = {"channel": "api"}
    check_webhook_address(request, webhook_uri)
    headers = await count_preview(request, principal)
    services = services_of(request)
    preview = await services.call(
        services.runtime.app.create_preview,
        principal.account_id,
        MovieScript.from_dict(script),
        {**origin, "request_id": request[REQUEST_ID], "key_prefix": principal.key_prefix},
        webhook_uri,
        principal.is_sandbox,
        metadata=metadata,
        exports=exports,
    )
    view = preview_view(preview, public_base(request), datetime.now(UTC))
    headers["Location"] = f"/api/previews/{preview.ref}"
    return web.json_response(view, status=201, headers=headers)


async def count_preview(request: web.Request, principal: Principal) -> dict[str, str]:
    """Count one preview against the plan's previews a minute: its rate headers, or 429
    RATE_LIMIT_EXCEEDED (with Retry-After) over the limit."""
    services = services_of(request)
    limits = await services.limits.get(services, principal.account_id)
    decision = await services.rate_limiter.hit(
        f"previews:{principal.account_id}", limits.previews_per_minute
    )
    headers = {
        "X-Preview-RateLimit-Limit": str(decision.limit),
        "X-Preview-RateLimit-Remaining": str(decision.remaining),
        "X-Preview-RateLimit-Reset": str(decision.reset_at),
    }
    if not decision.allowed:
        raise ApiError.of(
            "RATE_LIMIT_EXCEEDED",
            f"Your plan allows {decision.limit} previews a minute; "
            f"retry in {decision.retry_after} s.",
            headers={**headers, "Retry-After": str(decision.retry_after)},
            limit=decision.limit,
        )
    return headers


def preview_id_of(request: web.Request) -> UUID:
    ref = request.match_info["preview_id"]
    preview_id = parse_preview_ref(ref)
    if preview_id is None:
        raise not_found(f"No preview {ref}.")
    return preview_id


def owned_preview(services: Services, principal: Principal, preview_id: UUID) -> Preview:
    """The caller's preview (of its own mode, live or sandbox) that is not deleted."""
    try:
        preview = services.runtime.app.get_preview(preview_id)
    except PreviewNotFound as missing:
        raise not_found(str(missing)) from None
    if (
        preview.account_id != principal.account_id
        or preview.sandbox != principal.is_sandbox
        or preview.deleted
    ):
        raise not_found(f"No preview {preview.ref}.")
    return preview


async def load(request: web.Request) -> Preview:
    services = services_of(request)
    return await services.call(
        owned_preview, services, principal_of(request), preview_id_of(request)
    )


@routes.get("/api/previews/{preview_id}")
async def get_preview(request: web.Request) -> web.Response:
    preview = await load(request)
    return web.json_response(preview_view(preview, public_base(request), datetime.now(UTC)))


@routes.delete("/api/previews/{preview_id}")
async def delete_preview(request: web.Request) -> web.Response:
    """Deleted at once for its owner; its files go now, and (should anything be left)
    again when it would have expired (workers/preview_sweeper.py)."""
    preview = await load(request)
    services = services_of(request)
    runtime = services.runtime
    try:
        deleted = await services.call(runtime.app.delete_preview, preview.id)
    except PreviewNotFound:
        raise not_found(f"No preview {preview.ref}.") from None
    for key in deleted.locations:
        await services.call(runtime.preview_files.delete, key)
    return web.json_response({"preview_id": preview.ref, "deleted": True})


# --- render ---------------------------------------------------------------------------


@routes.post("/api/previews/{preview_id}/render")
async def render_preview(request: web.Request) -> web.Response:
    """The preview's script as a render: `POST /api/render`'s checks, charge and answer.
    The body is optional: `{"webhook_uri": …}` replaces the preview's own."""
    preview = await load(request)
    if not preview.is_live(datetime.now(UTC)):
        raise preview_expired(preview)
    body: Any = {}
    if (await request.read()).strip():
        body = await read_json(request)
    wanted = load_body(PreviewRenderRequestSchema(), body)
    webhook_uri, exports, metadata = render_options(wanted, preview)
    origin = {
        **{key: value for key, value in preview.origin.items() if key.startswith("template")},
        "channel": "preview",
        "preview_id": preview.ref,
    }
    return await submit(request, body, preview.script, webhook_uri, origin, exports, metadata)


class PreviewRenderRequestSchema(StrictSchema):
    """The body of POST /api/previews/{preview_id}/render (optional)."""

    # Both judged by the render schema's own rules for them (SCHEMA_VALIDATION_ERROR).
    webhook_uri = fields.Raw(
        allow_none=True,
        metadata={
            COMPONENT: "WebhookUri",
            "description": "The render's webhook, instead of the one the preview was"
            " made with (null: none).",
        },
    )
    metadata = Metadata(
        metadata={
            "description": "The job's metadata (as in POST /api/render), instead of the"
            " one the preview was made with."
        },
    )
    exports = fields.Raw(
        metadata={
            COMPONENT: "Exports",
            "description": "The job's exports, instead of the ones the preview was made with.",
        },
    )


RENDER_OPTIONS = ("webhook_uri", "exports", "metadata")


def render_options(
    wanted: dict[str, Any], preview: Preview
) -> tuple[str | None, list[dict[str, Any]], dict[str, Any]]:
    """The render's webhook_uri, exports and metadata: the request's own, else the
    preview's."""
    given = {key: wanted[key] for key in RENDER_OPTIONS if key in wanted}
    try:
        _, webhook_uri, exports, metadata = load_render_request(
            {"scenes": [{"duration": 1}], **given}
        )
    except ValidationError as error:
        path, message = first_error(error.messages)
        raise schema_error(path, message) from None
    return (
        webhook_uri if "webhook_uri" in given else preview.webhook_uri,
        exports if "exports" in given else preview.exports,
        metadata if "metadata" in given else preview.metadata,
    )


# --- live progress --------------------------------------------------------------------


@routes.get("/api/previews/{preview_id}/progress")
async def preview_progress(request: web.Request) -> web.StreamResponse:
    """The preview's events as they happen, like a job's: `progress`, `storyboard`
    (the frames, as soon as they are drawn), then `complete` or `error`."""
    preview = await load(request)
    base = public_base(request)

    def stream_of(first: Item) -> StreamOf | None:
        if not isinstance(first.event, Preview.Created):
            return None
        return StreamOf(lambda item: preview_event(item.event, preview, base), ends_preview)

    return await one_stream(request, preview.id, stream_of, f"No preview {preview.ref}.")


def ends_preview(event: Any) -> bool:
    """Whether a preview's stream closes after this event: its proxy, its failure, or
    its end."""
    return isinstance(
        event, Preview.ProxyReady | Preview.Failed | Preview.Deleted | Preview.Expired
    )


def preview_event(event: Any, preview: Preview, base: str) -> tuple[str, dict[str, Any]] | None:
    """A preview event as a stream event (name, data), or None if it has none."""
    at = iso(event.timestamp)
    if isinstance(event, Preview.Created):
        return "progress", {"progress": 0, "stage": "queued", "timestamp": at}
    if isinstance(event, Preview.Started):
        return "progress", {"progress": 0, "stage": "starting", "timestamp": at}
    if isinstance(event, Preview.ProgressReported):
        return "progress", {"progress": event.progress, "stage": event.stage, "timestamp": at}
    if isinstance(event, Preview.StoryboardReady):
        frames = [
            {
                "scene": frame["scene"],
                "kind": frame["kind"],
                "time": frame["time"],
                "imageUri": file_url(base, preview, frame["location"]),
            }
            for frame in event.frames
        ]
        return "storyboard", {"storyboard": frames, "timestamp": at}
    if isinstance(event, Preview.ProxyReady):
        return "complete", {
            "proxyUri": file_url(base, preview, event.location),
            "viewerUrl": f"{base}{viewer_path(preview)}",
            "durationSeconds": event.duration_seconds,
            "width": event.width,
            "height": event.height,
            "fps": event.fps,
            "fileSizeBytes": event.file_size_bytes,
        }
    if isinstance(event, Preview.Failed):
        return "error", {"code": event.code, "message": event.message}
    if isinstance(event, Preview.Deleted):
        return "error", {"code": "PREVIEW_DELETED", "message": "The preview was deleted."}
    if isinstance(event, Preview.Expired):
        return "error", {"code": "PREVIEW_EXPIRED", "message": "The preview has expired."}
    return None
