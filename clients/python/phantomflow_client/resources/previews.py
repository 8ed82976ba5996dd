"""Previews: a free look at a script before paying for it. A storyboard within a
second or so, then a small watermarked proxy of the whole movie, and a page anyone with
its `viewer_url` can watch; then one call renders it for real (docs/api.md, "Previews")."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from phantomflow_client._sse import Resume
from phantomflow_client._streams import drain_async, follow_async, follow_sync
from phantomflow_client._transport import AsyncTransport, Call, SyncTransport
from phantomflow_client.errors import PhantomFlowError
from phantomflow_client.models import (
    PREVIEW_EVENTS,
    DeletedPreview,
    Preview,
    PreviewEvent,
    Quote,
    Submission,
)
from phantomflow_client.resources._base import (
    Resource,
    Transport,
    model,
    sends,
    text_body,
    with_extras,
)
from phantomflow_client.resources.renders import Exports, Metadata, dry_run, submit
from phantomflow_client.resources.templates import Variables, render_body

PreviewRef = str | Preview
OnPreviewEvent = Callable[[PreviewEvent], Any]


def _id(preview: PreviewRef) -> str:
    return preview.preview_id if isinstance(preview, Preview) else str(preview)


def _created(body: dict[str, Any]) -> Call[Preview]:
    # Not retried after a 5xx: a second request would be a second preview (free, but
    # counted against the plan's previews a minute).
    return Call("POST", "/api/previews", model(Preview), json=body, has_body=True)


def create(
    script: Mapping[str, Any],
    *,
    webhook_uri: str | None = None,
    metadata: Metadata | None = None,
    exports: Exports | None = None,
) -> Call[Preview]:
    """Preview `script` (validated exactly as for a render; nothing is charged). The
    preview is queued: follow it with `follow` or `wait`. `webhook_uri`, `metadata` and
    `exports` are what its render will carry."""
    body = with_extras(script, webhook_uri=webhook_uri, metadata=metadata, exports=exports)
    return _created(body)


def create_from_template(
    template_id: str,
    variables: Variables | None = None,
    *,
    version: int | None = None,
    metadata: Metadata | None = None,
) -> Call[Preview]:
    """Preview a template rendered with `variables` (checked as a template render)."""
    return _created(render_body(template_id, variables, version, metadata=metadata))


def get(preview: PreviewRef) -> Call[Preview]:
    """The preview now: its status, storyboard, proxy and viewer link."""
    return Call("GET", f"/api/previews/{_id(preview)}", model(Preview))


def delete(preview: PreviewRef) -> Call[DeletedPreview]:
    """Delete the preview and its files; its page and files answer 404 at once."""
    return Call("DELETE", f"/api/previews/{_id(preview)}", model(DeletedPreview))


def render(
    preview: PreviewRef,
    *,
    webhook_uri: str | None = None,
    metadata: Metadata | None = None,
    exports: Exports | None = None,
    idempotency_key: str | None = None,
) -> Call[Submission]:
    """Render the preview's script for real: charged and answered as `renders.create`.
    `webhook_uri`, `metadata` and `exports`, when given, replace the preview's."""
    body = with_extras({}, webhook_uri=webhook_uri, metadata=metadata, exports=exports)
    return submit(f"/api/previews/{_id(preview)}/render", body, idempotency_key)


def quote(
    preview: PreviewRef,
    *,
    webhook_uri: str | None = None,
    metadata: Metadata | None = None,
    exports: Exports | None = None,
) -> Call[Quote]:
    """A dry run of `render`: what it would cost now, recording nothing."""
    body = with_extras({}, webhook_uri=webhook_uri, metadata=metadata, exports=exports)
    return dry_run(f"/api/previews/{_id(preview)}/render", body)


def page(preview: Preview) -> Call[str]:
    """The viewer page's HTML (served without a key: its URL holds the permission)."""
    return Call("GET", preview.viewer_url, text_body, anonymous=True)


def progress_path(preview: PreviewRef) -> str:
    return f"/api/previews/{_id(preview)}/progress"


def _proxy_of(preview: Preview) -> str:
    if not preview.proxy_uri:
        raise PhantomFlowError(f"preview {preview.preview_id} has no proxy ({preview.status})")
    return preview.proxy_uri


class PreviewCalls(Resource[Transport]):
    """The calls, for both clients."""

    create = sends(create)
    create_from_template = sends(create_from_template)
    get = sends(get)
    delete = sends(delete)
    render = sends(render)
    quote = sends(quote)
    page = sends(page)


class Previews(PreviewCalls[SyncTransport]):
    def follow(
        self, preview: PreviewRef, *, last_event_id: int | None = None, timeout: float | None = None
    ) -> Iterator[PreviewEvent]:
        """The preview's events as they happen (`progress`, `storyboard`, then
        `complete` or `error`), over SSE, resuming after a dropped connection."""
        resume = Resume(last_event_id, kinds=PREVIEW_EVENTS)
        events = follow_sync(
            self._transport, progress_path(preview), resume, True, timeout, _id(preview)
        )
        return events  # type: ignore[return-value]  # the preview table's events only

    def wait(
        self,
        preview: PreviewRef,
        *,
        timeout: float | None = None,
        on_event: OnPreviewEvent | None = None,
    ) -> Preview:
        """Follow the preview until its proxy is drawn (or it failed), and return it."""
        for event in self.follow(preview, timeout=timeout):
            if on_event is not None:
                on_event(event)
        return self.get(preview)

    def download(self, preview: PreviewRef, path: str | Path) -> Path:
        """Save the preview's proxy MP4 at `path`."""
        found = preview if isinstance(preview, Preview) and preview.proxy_uri else self.get(preview)
        return self._transport.download(_proxy_of(found), Path(path))


class AsyncPreviews(PreviewCalls[AsyncTransport]):
    def follow(
        self, preview: PreviewRef, *, last_event_id: int | None = None
    ) -> AsyncIterator[PreviewEvent]:
        """As `Previews.follow`; bound it in time with `asyncio.timeout`."""
        resume = Resume(last_event_id, kinds=PREVIEW_EVENTS)
        events = follow_async(self._transport, progress_path(preview), resume, closes=True)
        return events  # type: ignore[return-value]

    async def wait(
        self,
        preview: PreviewRef,
        *,
        timeout: float | None = None,
        on_event: OnPreviewEvent | None = None,
    ) -> Preview:
        await drain_async(self.follow(preview), on_event, timeout, _id(preview))
        return await self.get(preview)

    async def download(self, preview: PreviewRef, path: str | Path) -> Path:
        found = (
            preview
            if isinstance(preview, Preview) and preview.proxy_uri
            else await self.get(preview)
        )
        return await self._transport.download(_proxy_of(found), Path(path))
